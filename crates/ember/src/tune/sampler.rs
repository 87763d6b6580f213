//! Where the next trial looks: uniformly at random, through a grid in a seeded order, or by
//! TPE from the trials done so far. Every choice comes from a generator seeded by the
//! study's seed and the trial's number, so a trial's parameters never depend on timing.

use super::space::{Distribution, Space, Value};
use super::tpe;
use crate::tensor::random::Rng;

/// How trials choose their parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// Independent uniform draws (log-uniform for log_uniform entries).
    Random,
    /// Every combination of the choices (and of the integers of `int` entries), in a seeded
    /// random order, until max_trials.
    Grid,
    /// Optuna's default sampler: the Tree-structured Parzen Estimator, after 10 random trials.
    Tpe,
    /// Random configurations, trained in brackets of successive halving with epochs as the
    /// budget: the weaker part of each rung stops early (Li et al. 2018).
    Hyperband,
}

/// The generator of trial `number` in a study seeded with `seed`.
pub fn trial_rng(seed: u64, number: usize) -> Rng {
    // SplitMix-style mixing: neighbouring numbers give unrelated streams.
    let mut z = seed
        ^ (number as u64)
            .wrapping_add(1)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    Rng::seed(z ^ (z >> 31))
}

/// A uniform draw from one distribution.
pub fn random_value(distribution: &Distribution, rng: &mut Rng) -> Value {
    match distribution {
        Distribution::Choice(c) => Value::Index(rng.below(c.len())),
        Distribution::Optional => Value::Index(rng.below(2)),
        Distribution::Uniform { low, high } => {
            Value::Float((low + (high - low) * rng.uniform_f64()).min(*high))
        }
        Distribution::LogUniform { low, high } => {
            let (a, b) = (low.ln(), high.ln());
            Value::Float((a + (b - a) * rng.uniform_f64()).exp().clamp(*low, *high))
        }
        Distribution::Int { low, high, step } => {
            // At most 2^54 + 1 values (bounds within ±2^53): a usize on 64-bit targets.
            let count = super::space::int_count(*low, *high, *step);
            let i = rng.below(usize::try_from(count).unwrap_or(usize::MAX));
            Value::Int(super::space::int_nth(*low, *step, i as u64))
        }
    }
}

/// A uniform draw of every parameter.
pub fn random_point(space: &Space, rng: &mut Rng) -> Vec<Value> {
    space
        .params
        .iter()
        .map(|p| random_value(&p.distribution, rng))
        .collect()
}

/// The number of points of the grid, or the first entry that has no grid (a continuous one).
pub fn grid_size(space: &Space) -> std::result::Result<u64, String> {
    space.params.iter().try_fold(1u64, |size, p| {
        let count = p.distribution.count().ok_or_else(|| p.name.clone())?;
        Ok(size.saturating_mul(count))
    })
}

/// Grid point `index` (mixed radix over the parameters).
pub fn grid_point(space: &Space, mut index: u64) -> Vec<Value> {
    space
        .params
        .iter()
        .map(|p| {
            let count = p.distribution.count().unwrap_or(1);
            let value = p.distribution.nth(index % count);
            index /= count;
            value
        })
        .collect()
}

/// The grid points the study visits, as indices for [`grid_point`], in order: a seeded
/// permutation of the whole grid, so a budget smaller than the grid still spreads over it.
/// Grids are kept small enough to list (a million points).
pub fn grid_order(space: &Space, seed: u64, trials: usize) -> Vec<u64> {
    let size = grid_size(space).unwrap_or(0);
    let mut order: Vec<u64> = (0..size).collect();
    trial_rng(seed, usize::MAX).shuffle(&mut order);
    order.truncate(trials);
    order
}

/// The parameters of trial `number` for a history-guided sampler: TPE once `history` holds
/// enough finished trials, random before. `history` is (values, loss to minimise).
pub fn tpe_point(
    space: &Space,
    seed: u64,
    number: usize,
    history: &[(Vec<Value>, f64)],
) -> Vec<Value> {
    let mut rng = trial_rng(seed, number);
    if history.len() < tpe::STARTUP_TRIALS {
        return random_point(space, &mut rng);
    }
    tpe::sample(space, history, &mut rng)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::space::Param;

    fn param(name: &str, distribution: Distribution) -> Param {
        Param {
            name: name.into(),
            distribution,
        }
    }

    #[test]
    fn random_draws_stay_in_range_and_repeat_with_the_seed() {
        let space = Space {
            params: vec![
                param(
                    "a",
                    Distribution::LogUniform {
                        low: 1e-4,
                        high: 1e-2,
                    },
                ),
                param(
                    "b",
                    Distribution::Int {
                        low: 16,
                        high: 64,
                        step: 16,
                    },
                ),
                param(
                    "c",
                    Distribution::Uniform {
                        low: -1.0,
                        high: 1.0,
                    },
                ),
            ],
        };
        let mut logs = Vec::new();
        for n in 0..500 {
            let p = random_point(&space, &mut trial_rng(7, n));
            assert_eq!(p, random_point(&space, &mut trial_rng(7, n)));
            let (Value::Float(a), Value::Int(b), Value::Float(c)) = (p[0], p[1], p[2]) else {
                panic!("{p:?}")
            };
            assert!((1e-4..=1e-2).contains(&a) && [16, 32, 48, 64].contains(&b));
            assert!((-1.0..=1.0).contains(&c));
            logs.push(a.log10());
        }
        // Log-uniform: as many draws in each decade.
        let low = logs.iter().filter(|&&l| l < -3.0).count();
        assert!((200..300).contains(&low), "{low}");
    }

    #[test]
    fn the_grid_visits_every_point_once() {
        let space = Space {
            params: vec![
                param(
                    "a",
                    Distribution::Choice(vec![1.into(), 2.into(), 3.into()]),
                ),
                param(
                    "b",
                    Distribution::Int {
                        low: 0,
                        high: 4,
                        step: 2,
                    },
                ),
                param("c", Distribution::Optional),
            ],
        };
        assert_eq!(grid_size(&space), Ok(18));
        let order = grid_order(&space, 3, 100);
        assert_ne!(
            order,
            grid_order(&space, 4, 100),
            "the order depends on the seed"
        );
        assert_eq!(
            grid_order(&space, 3, 5),
            order[..5],
            "a smaller budget is a prefix"
        );
        let mut points: Vec<Vec<Value>> = order.iter().map(|&i| grid_point(&space, i)).collect();
        assert_eq!(points.len(), 18);
        points.sort_by(|x, y| format!("{x:?}").cmp(&format!("{y:?}")));
        points.dedup();
        assert_eq!(points.len(), 18);
        let continuous = Space {
            params: vec![param(
                "lr",
                Distribution::Uniform {
                    low: 0.0,
                    high: 1.0,
                },
            )],
        };
        assert_eq!(grid_size(&continuous), Err("lr".to_string()));
    }
}
