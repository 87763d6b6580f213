//! Shapley values of a prediction among its inputs (Lundberg & Lee's KernelSHAP, 2017): each
//! player's fair share of f(all) − f(none), where a coalition's value is the model's output
//! with the players outside it set to the baseline.

use crate::error::{Error, Result};
use crate::tensor::factorization::{add_outer_f64, ridge_solve};
use crate::tensor::random::Rng;

/// Up to this many players every coalition is evaluated and the values are exact.
pub const EXACT_PLAYERS: usize = 12;

/// Shapley values of `m` players. `value` gives the value of each coalition of a batch (a
/// coalition: which players are in). Up to [`EXACT_PLAYERS`] players, every one of the 2^m
/// coalitions is evaluated and φᵢ = Σ_S |S|! (m − |S| − 1)! / m! · (v(S ∪ i) − v(S)). Beyond,
/// KernelSHAP: `samples` coalitions drawn from the Shapley kernel (a size s with probability
/// ∝ (m − 1) / (s (m − s)), then s players at random), each with its complement, and the
/// values fitted by least squares under the constraint Σ φᵢ = v(all) − v(none). Either way
/// the values add up to v(all) − v(none) exactly.
pub fn shapley_values(
    m: usize,
    samples: usize,
    seed: u64,
    mut value: impl FnMut(&[Vec<bool>]) -> Result<Vec<f64>>,
) -> Result<Vec<f64>> {
    if m == 0 {
        return Ok(Vec::new());
    }
    if m <= EXACT_PLAYERS {
        let coalitions: Vec<Vec<bool>> = (0..1usize << m)
            .map(|bits| (0..m).map(|i| bits >> i & 1 == 1).collect())
            .collect();
        let v = value(&coalitions)?;
        // |S|! (m − |S| − 1)! / m! for each size.
        let factorial = |n: usize| (1..=n).map(|k| k as f64).product::<f64>();
        let weight: Vec<f64> = (0..m)
            .map(|s| factorial(s) * factorial(m - s - 1) / factorial(m))
            .collect();
        let mut phi = vec![0.0; m];
        for bits in 0..1usize << m {
            let size = bits.count_ones() as usize;
            for (i, p) in phi.iter_mut().enumerate() {
                if bits >> i & 1 == 0 {
                    *p += weight[size] * (v[bits | 1 << i] - v[bits]);
                }
            }
        }
        return Ok(phi);
    }
    if !(16..=1_000_000).contains(&samples) {
        return Err(Error::invalid(format!(
            "KernelSHAP takes 16 to 1000000 coalition samples, got {samples}"
        )));
    }
    let mut rng = Rng::seed(seed);
    // Sizes 1..m−1 by the Shapley kernel's mass at each size.
    let mass: Vec<f64> = (1..m)
        .map(|s| (m - 1) as f64 / (s * (m - s)) as f64)
        .collect();
    let total: f64 = mass.iter().sum();
    let mut coalitions = vec![vec![false; m], vec![true; m]];
    while coalitions.len() < samples + 2 {
        let mut u = rng.uniform_f64() * total;
        let mut size = m - 1;
        for (k, w) in mass.iter().enumerate() {
            if u < *w {
                size = k + 1;
                break;
            }
            u -= w;
        }
        let mut players: Vec<usize> = (0..m).collect();
        rng.shuffle(&mut players);
        let mut z = vec![false; m];
        for &p in &players[..size] {
            z[p] = true;
        }
        let complement: Vec<bool> = z.iter().map(|b| !b).collect();
        coalitions.push(z);
        coalitions.push(complement);
    }
    let v = value(&coalitions)?;
    let (empty, full) = (v[0], v[1]);
    let change = full - empty;
    // φₘ = change − Σ_{i<m} φᵢ: regress v(z) − empty − zₘ·change on (zᵢ − zₘ), i < m.
    let d = m - 1;
    let mut gram = vec![0.0; d * d];
    let mut rhs = vec![0.0; d];
    for (z, &vz) in coalitions[2..].iter().zip(&v[2..]) {
        let last = z[d] as u8 as f64;
        let x: Vec<f64> = (0..d).map(|i| z[i] as u8 as f64 - last).collect();
        let y = vz - empty - last * change;
        add_outer_f64(&mut gram, 1.0, &x, &x);
        rhs.iter_mut().zip(&x).for_each(|(r, xi)| *r += xi * y);
    }
    ridge_solve(&gram, 1e-9, &mut rhs)?;
    let rest: f64 = rhs.iter().sum();
    rhs.push(change - rest);
    Ok(rhs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of each coalition of a function of the players' presence (1) or absence (0).
    fn game(f: impl Fn(&[f64]) -> f64) -> impl FnMut(&[Vec<bool>]) -> Result<Vec<f64>> {
        move |coalitions| {
            Ok(coalitions
                .iter()
                .map(|z| f(&z.iter().map(|&b| b as u8 as f64).collect::<Vec<_>>()))
                .collect())
        }
    }

    #[test]
    fn exact_values_match_hand_computed_games() {
        // Additive: each player's own term.
        let phi = shapley_values(3, 0, 0, game(|x| 2.0 * x[0] - x[1] + 0.5 * x[2] + 7.0)).unwrap();
        assert_eq!(phi, vec![2.0, -1.0, 0.5]);
        // A pure interaction is shared equally; a dummy player gets nothing.
        let phi = shapley_values(3, 0, 0, game(|x| x[0] * x[1])).unwrap();
        assert!((phi[0] - 0.5).abs() < 1e-12 && (phi[1] - 0.5).abs() < 1e-12 && phi[2] == 0.0);
        // The glove game {1} vs {2, 3}: (2/3, 1/6, 1/6).
        let phi = shapley_values(3, 0, 0, game(|x| (x[0] * x[1]).max(x[0] * x[2]))).unwrap();
        for (a, b) in phi.iter().zip([2.0 / 3.0, 1.0 / 6.0, 1.0 / 6.0]) {
            assert!((a - b).abs() < 1e-12, "{phi:?}");
        }
    }

    #[test]
    fn sampled_kernel_shap_recovers_an_additive_game_and_is_efficient() {
        let w: Vec<f64> = (0..20).map(|i| (i as f64 - 9.5) / 3.0).collect();
        let additive = |x: &[f64]| x.iter().zip(&w).map(|(x, w)| x * w).sum::<f64>() + 1.0;
        let phi = shapley_values(20, 512, 3, game(additive)).unwrap();
        for (p, w) in phi.iter().zip(&w) {
            assert!((p - w).abs() < 1e-6, "{p} vs {w}");
        }
        // With an interaction: the values still add up to v(all) − v(none), and the same seed
        // gives the same values.
        let f = |x: &[f64]| x[0] * x[1] * 3.0 + x[5] - x[19] * x[7];
        let a = shapley_values(20, 256, 1, game(f)).unwrap();
        let sum: f64 = a.iter().sum();
        assert!((sum - (3.0 + 1.0 - 1.0)).abs() < 1e-9, "{sum}");
        assert_eq!(a, shapley_values(20, 256, 1, game(f)).unwrap());
        assert!(shapley_values(20, 2, 1, game(f)).is_err());
    }
}
