//! The Tree-structured Parzen Estimator (Bergstra et al. 2011), as Optuna's default sampler
//! runs it: the finished trials are split into the best γ(n) and the rest, each group's
//! values of a parameter become a Parzen density (a Gaussian per trial plus a prior over
//! the whole range), and of 24 candidates drawn from the good density the one with the
//! largest ratio good/bad is tried next. Parameters are modelled one at a time
//! (Optuna's univariate default).

use super::space::{Distribution, Space, Value};
use crate::tensor::random::Rng;

/// Random trials before the estimator takes over (Optuna's `n_startup_trials`).
pub const STARTUP_TRIALS: usize = 10;
/// Candidates drawn from the good density (Optuna's `n_ei_candidates`).
const CANDIDATES: usize = 24;
/// The prior's weight beside the trials' kernels (Optuna's `prior_weight`).
const PRIOR_WEIGHT: f64 = 1.0;

/// How many trials count as good: ⌈0.1 n⌉, at most 25 (Optuna's default gamma).
pub fn good_count(n: usize) -> usize {
    n.div_ceil(10).min(25)
}

/// Trial weights, oldest first: equal for up to 25 trials, beyond that the older ones ramp
/// down linearly (Optuna's default_weights).
fn weights(n: usize) -> Vec<f64> {
    if n < 25 {
        return vec![1.0; n];
    }
    let ramp = n - 25;
    let mut w: Vec<f64> = (0..ramp)
        .map(|i| match ramp {
            1 => 1.0 / n as f64,
            _ => 1.0 / n as f64 + (1.0 - 1.0 / n as f64) * i as f64 / (ramp - 1) as f64,
        })
        .collect();
    w.extend(std::iter::repeat_n(1.0, 25));
    w
}

/// The parameters of the next trial from `history`: (values, loss to minimise), in trial
/// order, finished trials only.
pub fn sample(space: &Space, history: &[(Vec<Value>, f64)], rng: &mut Rng) -> Vec<Value> {
    let mut ranked: Vec<usize> = (0..history.len()).collect();
    ranked.sort_by(|&a, &b| history[a].1.total_cmp(&history[b].1).then(a.cmp(&b)));
    let good = good_count(history.len());
    let mut is_good = vec![false; history.len()];
    for &i in &ranked[..good] {
        is_good[i] = true;
    }
    space
        .params
        .iter()
        .enumerate()
        .map(|(p, param)| {
            // Each group keeps trial order, which the weights depend on; trials in which the
            // parameter played no part (a field of a layer left out) are not observations of
            // it, as Optuna leaves out trials that never suggested it.
            let values = |want: bool| -> Vec<Value> {
                history
                    .iter()
                    .zip(&is_good)
                    .filter(|(h, &g)| g == want && space.active(p, &h.0))
                    .map(|(h, _)| h.0[p])
                    .collect()
            };
            let below = Parzen::fit(&param.distribution, &values(true));
            let above = Parzen::fit(&param.distribution, &values(false));
            let candidates: Vec<Value> = (0..CANDIDATES).map(|_| below.sample(rng)).collect();
            let score = |v: &Value| below.log_density(*v) - above.log_density(*v);
            let mut best = candidates[0];
            for c in &candidates[1..] {
                if score(c) > score(&best) {
                    best = *c;
                }
            }
            best
        })
        .collect()
}

/// One group's density over one parameter.
enum Parzen {
    /// Probabilities of each choice.
    Categorical(Vec<f64>),
    /// A mixture of Gaussians truncated to [low, high] (in log space for log_uniform);
    /// `step` rounds draws to the grid of an `int` entry, whose density is then the mass of
    /// the value's bin.
    Numeric {
        low: f64,
        high: f64,
        log: bool,
        step: Option<f64>,
        mus: Vec<f64>,
        sigmas: Vec<f64>,
        weights: Vec<f64>,
    },
}

impl Parzen {
    fn fit(distribution: &Distribution, values: &[Value]) -> Parzen {
        let w = weights(values.len());
        let choices = match distribution {
            Distribution::Choice(c) => Some(c.len()),
            Distribution::Optional => Some(2),
            _ => None,
        };
        if let Some(n) = choices {
            // One kernel per trial: its choice, plus prior_weight / kernels spread over every
            // choice, each row normalised; the prior kernel is uniform (Optuna's).
            let kernels = values.len() as f64 + 1.0;
            let row_total = 1.0 + PRIOR_WEIGHT * n as f64 / kernels;
            let mut mixture: Vec<f64> = w.clone();
            mixture.push(PRIOR_WEIGHT);
            let total: f64 = mixture.iter().sum();
            // The prior's kernel: uniform.
            let mut p = vec![PRIOR_WEIGHT / total / n as f64; n];
            for (v, weight) in values.iter().zip(&mixture) {
                let share = weight / total;
                for slot in p.iter_mut() {
                    *slot += share * (PRIOR_WEIGHT / kernels) / row_total;
                }
                if let Value::Index(i) = v {
                    if let Some(slot) = p.get_mut(*i) {
                        *slot += share / row_total;
                    }
                }
            }
            let sum: f64 = p.iter().sum();
            return Parzen::Categorical(p.into_iter().map(|x| x / sum).collect());
        }
        let (low, high, log, step) = match *distribution {
            Distribution::Uniform { low, high } => (low, high, false, None),
            Distribution::LogUniform { low, high } => (low.ln(), high.ln(), true, None),
            Distribution::Int { low, high, step } => {
                // Bins of width step centred on the integers of the grid, whose top is the
                // last one at most `high` (Optuna's adjusted high).
                let count = super::space::int_count(low, high, step);
                let top = super::space::int_nth(low, step, count - 1);
                let half = step as f64 / 2.0;
                (
                    low as f64 - half,
                    top as f64 + half,
                    false,
                    Some(step as f64),
                )
            }
            _ => unreachable!("categorical distributions returned above"),
        };
        let xs: Vec<f64> = values
            .iter()
            .map(|v| match (v, log) {
                (Value::Float(x), true) => x.ln(),
                (Value::Float(x), false) => *x,
                (Value::Int(n), _) => *n as f64,
                (Value::Index(i), _) => *i as f64,
            })
            .collect();
        let range = (high - low).max(f64::MIN_POSITIVE);
        // Each kernel's width: the larger gap to its neighbours among the sorted values and
        // the range's ends (the outermost two: the gap to their inner neighbour only),
        // clipped to [range / min(100, kernels + 1), range] ("magic clip"); the prior's kernel
        // spans the range (Optuna's univariate estimator).
        let mut order: Vec<usize> = (0..xs.len()).collect();
        order.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
        let mut with_ends = vec![low];
        with_ends.extend(order.iter().map(|&i| xs[i]));
        with_ends.push(high);
        let n = xs.len();
        let min_sigma = range / (100.0f64).min(n as f64 + 2.0);
        let mut sigmas = vec![range; n + 1];
        for (rank, &i) in order.iter().enumerate() {
            let (left, x, right) = (with_ends[rank], with_ends[rank + 1], with_ends[rank + 2]);
            let gap = match (n >= 2, rank) {
                (true, 0) => right - x,
                (true, r) if r == n - 1 => x - left,
                _ => (x - left).max(right - x),
            };
            sigmas[i] = gap.clamp(min_sigma, range);
        }
        let mut mus = xs;
        mus.push(0.5 * (low + high));
        let mut weights = w;
        weights.push(PRIOR_WEIGHT);
        let total: f64 = weights.iter().sum();
        weights.iter_mut().for_each(|x| *x /= total);
        Parzen::Numeric {
            low,
            high,
            log,
            step,
            mus,
            sigmas,
            weights,
        }
    }

    fn sample(&self, rng: &mut Rng) -> Value {
        match self {
            Parzen::Categorical(p) => Value::Index(pick(p, rng)),
            Parzen::Numeric {
                low,
                high,
                log,
                step,
                mus,
                sigmas,
                weights,
            } => {
                let k = pick(weights, rng);
                let x = truncated_normal(mus[k], sigmas[k], *low, *high, rng);
                match (step, log) {
                    (Some(step), _) => {
                        let first = low + step / 2.0;
                        let last = high - step / 2.0;
                        let n = ((x - first) / step).round();
                        Value::Int((first + n * step).clamp(first, last).round() as i64)
                    }
                    (None, true) => Value::Float(x.exp().clamp(low.exp(), high.exp())),
                    (None, false) => Value::Float(x),
                }
            }
        }
    }

    fn log_density(&self, value: Value) -> f64 {
        match (self, value) {
            (Parzen::Categorical(p), Value::Index(i)) => {
                p.get(i).copied().unwrap_or(0.0).max(f64::MIN_POSITIVE).ln()
            }
            (
                Parzen::Numeric {
                    low,
                    high,
                    log,
                    step,
                    mus,
                    sigmas,
                    weights,
                },
                value,
            ) => {
                let x = match (value, log) {
                    (Value::Float(x), true) => x.ln(),
                    (Value::Float(x), false) => x,
                    (Value::Int(n), _) => n as f64,
                    (Value::Index(i), _) => i as f64,
                };
                let density: f64 = mus
                    .iter()
                    .zip(sigmas)
                    .zip(weights)
                    .map(|((&mu, &sigma), &w)| {
                        let mass = cdf((high - mu) / sigma) - cdf((low - mu) / sigma);
                        let part = match step {
                            // The probability of the value's bin.
                            Some(step) => {
                                let (a, b) =
                                    ((x - step / 2.0).max(*low), (x + step / 2.0).min(*high));
                                cdf((b - mu) / sigma) - cdf((a - mu) / sigma)
                            }
                            None => pdf((x - mu) / sigma) / sigma,
                        };
                        w * part / mass.max(f64::MIN_POSITIVE)
                    })
                    .sum();
                density.max(f64::MIN_POSITIVE).ln()
            }
            (Parzen::Categorical(_), _) => f64::MIN_POSITIVE.ln(),
        }
    }
}

/// An index drawn with probabilities proportional to `weights`.
fn pick(weights: &[f64], rng: &mut Rng) -> usize {
    let total: f64 = weights.iter().sum();
    let mut u = rng.uniform_f64() * total;
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            return i;
        }
        u -= w;
    }
    weights.len() - 1
}

/// A normal draw restricted to [low, high], by rejection: every kernel's centre lies in the
/// range and its width is at most the range, so a third of the draws or more are accepted.
fn truncated_normal(mu: f64, sigma: f64, low: f64, high: f64, rng: &mut Rng) -> f64 {
    for _ in 0..1000 {
        // Box–Muller.
        let u1 = rng.uniform_f64().max(f64::MIN_POSITIVE);
        let u2 = rng.uniform_f64();
        let x = mu + sigma * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        if (low..=high).contains(&x) {
            return x;
        }
    }
    mu.clamp(low, high)
}

fn pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (std::f64::consts::TAU).sqrt()
}

fn cdf(z: f64) -> f64 {
    0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::sampler::{random_point, tpe_point, trial_rng};
    use crate::tune::space::Param;

    fn param(name: &str, distribution: Distribution) -> Param {
        Param {
            name: name.into(),
            distribution,
        }
    }

    /// Runs `trials` trials of a sampler on `loss` and returns the best loss.
    fn best_of(
        space: &Space,
        trials: usize,
        seed: u64,
        tpe: bool,
        loss: impl Fn(&[Value]) -> f64,
    ) -> f64 {
        let mut history: Vec<(Vec<Value>, f64)> = Vec::new();
        for n in 0..trials {
            let point = match tpe {
                true => tpe_point(space, seed, n, &history),
                false => random_point(space, &mut trial_rng(seed, n)),
            };
            let l = loss(&point);
            history.push((point, l));
        }
        history.iter().map(|h| h.1).fold(f64::INFINITY, f64::min)
    }

    fn float(v: Value) -> f64 {
        match v {
            Value::Float(x) => x,
            Value::Int(n) => n as f64,
            Value::Index(i) => i as f64,
        }
    }

    #[test]
    fn weights_and_gamma_follow_optuna() {
        assert_eq!(good_count(10), 1);
        assert_eq!(good_count(11), 2);
        assert_eq!(good_count(1000), 25);
        assert_eq!(weights(3), vec![1.0; 3]);
        let w = weights(30);
        assert_eq!(w.len(), 30);
        assert!((w[0] - 1.0 / 30.0).abs() < 1e-12 && (w[4] - 1.0).abs() < 1e-12);
        assert!(w.windows(2).all(|p| p[0] <= p[1]));
    }

    #[test]
    fn densities_match_optunas_parzen_estimator() {
        // Written by bench/tpe_fixture.py from Optuna's own estimator.
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("tpe_optuna.json")).unwrap();
        for case in fixture["cases"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let numbers = |key: &str| -> Vec<f64> {
                case[key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect()
            };
            let (distribution, value): (Distribution, fn(f64) -> Value) = match name {
                "uniform" => (
                    Distribution::Uniform {
                        low: -2.0,
                        high: 3.0,
                    },
                    Value::Float,
                ),
                "uniform_one" | "many" => (
                    Distribution::Uniform {
                        low: 0.0,
                        high: 1.0,
                    },
                    Value::Float,
                ),
                "log_uniform" => (
                    Distribution::LogUniform {
                        low: 1e-4,
                        high: 1e-2,
                    },
                    Value::Float,
                ),
                "int_step" => (
                    Distribution::Int {
                        low: 16,
                        high: 512,
                        step: 16,
                    },
                    |x| Value::Int(x as i64),
                ),
                "int_uneven" => (
                    Distribution::Int {
                        low: 16,
                        high: 500,
                        step: 16,
                    },
                    |x| Value::Int(x as i64),
                ),
                "categorical" => (
                    Distribution::Choice(vec![32.into(), 64.into(), 128.into()]),
                    |x| Value::Index(x as usize),
                ),
                other => panic!("unknown case {other}"),
            };
            let observations: Vec<Value> = numbers("observations").into_iter().map(value).collect();
            let parzen = Parzen::fit(&distribution, &observations);
            for (x, want) in numbers("points").into_iter().zip(numbers("log_pdf")) {
                let got = parzen.log_density(value(x));
                assert!(
                    (got - want).abs() < 1e-9,
                    "{name} at {x}: {got} vs Optuna's {want}"
                );
            }
        }
    }

    #[test]
    fn densities_integrate_to_one() {
        let d = Distribution::Uniform {
            low: -2.0,
            high: 3.0,
        };
        let values = [Value::Float(0.5), Value::Float(2.9), Value::Float(-1.0)];
        let p = Parzen::fit(&d, &values);
        let n = 20_000;
        let h = 5.0 / n as f64;
        let integral: f64 = (0..n)
            .map(|i| {
                p.log_density(Value::Float(-2.0 + (i as f64 + 0.5) * h))
                    .exp()
                    * h
            })
            .sum();
        assert!((integral - 1.0).abs() < 1e-3, "{integral}");
        let d = Distribution::Int {
            low: 1,
            high: 9,
            step: 2,
        };
        let p = Parzen::fit(&d, &[Value::Int(3), Value::Int(9)]);
        let mass: f64 = [1, 3, 5, 7, 9]
            .iter()
            .map(|&k| p.log_density(Value::Int(k)).exp())
            .sum();
        assert!((mass - 1.0).abs() < 1e-9, "{mass}");
        let mut rng = Rng::seed(1);
        for _ in 0..200 {
            let Value::Int(k) = p.sample(&mut rng) else {
                panic!()
            };
            assert!([1, 3, 5, 7, 9].contains(&k), "{k}");
        }
    }

    #[test]
    fn tpe_finds_the_bottom_of_a_quadratic_bowl_better_than_random() {
        // Bowl at (0.3, 0.002) in (uniform, log-uniform) coordinates.
        let space = Space {
            params: vec![
                param(
                    "x",
                    Distribution::Uniform {
                        low: -1.0,
                        high: 1.0,
                    },
                ),
                param(
                    "lr",
                    Distribution::LogUniform {
                        low: 1e-4,
                        high: 1e-1,
                    },
                ),
            ],
        };
        let bowl = |p: &[Value]| {
            (float(p[0]) - 0.3).powi(2) + (float(p[1]).log10() - 0.002f64.log10()).powi(2) / 9.0
        };
        let (mut tpe_total, mut random_total) = (0.0, 0.0);
        for seed in 0..5 {
            let tpe = best_of(&space, 60, seed, true, bowl);
            assert!(tpe < 0.01, "seed {seed}: {tpe}");
            tpe_total += tpe;
            random_total += best_of(&space, 60, seed, false, bowl);
        }
        assert!(tpe_total < random_total, "{tpe_total} vs {random_total}");
    }

    #[test]
    fn tpe_settles_on_the_one_best_choice() {
        let space = Space {
            params: vec![
                param(
                    "units",
                    Distribution::Choice((0..8).map(toml::Value::Integer).collect()),
                ),
                param(
                    "step",
                    Distribution::Int {
                        low: 0,
                        high: 100,
                        step: 5,
                    },
                ),
            ],
        };
        // Choice 5 is best whatever the integer; the integer is best at 40.
        let loss = |p: &[Value]| {
            let choice = if p[0] == Value::Index(5) { 0.0 } else { 1.0 };
            choice + (float(p[1]) - 40.0).abs() / 100.0
        };
        for seed in 0..5 {
            let mut history: Vec<(Vec<Value>, f64)> = Vec::new();
            for n in 0..40 {
                let point = tpe_point(&space, seed, n, &history);
                history.push((point.clone(), loss(&point)));
            }
            // Random would pick it 2.5 times in 20.
            let late = history[20..]
                .iter()
                .filter(|h| h.0[0] == Value::Index(5))
                .count();
            assert!(late >= 8, "seed {seed}: the best choice {late} times of 20");
            let best = history.iter().map(|h| h.1).fold(f64::INFINITY, f64::min);
            assert!(best <= 0.1, "seed {seed}: {best}");
        }
    }
}
