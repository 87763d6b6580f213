//! Bayesian probabilistic matrix factorisation (BPMF, Salakhutdinov & Mnih 2008): ALS that
//! samples. Each sweep draws the user and item priors (Gaussian–Wishart) and then every
//! user's and item's vector from its Gaussian posterior; the prediction is the average of
//! `p_u · q_i` over the sweeps after burn-in, which is itself one dot product of the kept
//! draws side by side (each user's scaled by 1/draws), so the result is an ordinary
//! factorisation.

use rayon::prelude::*;

use super::model::Scorer;
use super::positives::{Positives, Triples};
use super::train::RecommendConfig;
use crate::data::interactions::Interactions;
use crate::error::Result;
use crate::tensor::factorization::{
    add_outer_f64, gaussian_from_precision, matvec_f64, wishart_from_inverse_scale,
};
use crate::tensor::random::Rng;

/// Precision of a rating around its prediction on a 1–5 scale (the paper's α = 2); other
/// scales scale it by (4 / range)², so 0/1 targets get 32: the same noise relative to the
/// scale.
const RATING_PRECISION: f64 = 2.0;
/// Sweeps discarded before averaging, and the most draws kept in the saved model.
const BURN_IN: usize = 10;
const MAX_KEPT: usize = 100;

/// A Gaussian prior of the rows of one side: mean and precision matrix.
struct Prior {
    mean: Vec<f64>,
    precision: Vec<f64>,
}

/// Draws (μ, Λ) from the Gaussian–Wishart posterior given the rows of one side, with the
/// paper's hyperprior: μ₀ = 0, β₀ = 2, ν₀ = k, W₀ = I.
fn sample_prior(rows: &[f64], k: usize, rng: &mut Rng) -> Result<Prior> {
    let n = (rows.len() / k) as f64;
    let beta0 = 2.0;
    let mut mean = vec![0.0f64; k];
    for row in rows.chunks_exact(k) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v / n;
        }
    }
    // W*⁻¹ = I + N S + β₀N/(β₀+N) x̄ x̄ᵀ, with N S the scatter about the mean.
    let mut inverse_scale = vec![0.0f64; k * k];
    for row in rows.chunks_exact(k) {
        let centred: Vec<f64> = row.iter().zip(&mean).map(|(r, m)| r - m).collect();
        add_outer_f64(&mut inverse_scale, 1.0, &centred, &centred);
    }
    let shrink = beta0 * n / (beta0 + n);
    for a in 0..k {
        inverse_scale[a * k + a] += 1.0;
    }
    add_outer_f64(&mut inverse_scale, shrink, &mean, &mean);
    let nu = k + n as usize;
    let chi: Vec<f64> = (0..k)
        .map(|i| (0..nu - i).map(|_| (rng.normal(1.0) as f64).powi(2)).sum())
        .collect();
    let normals: Vec<f64> = (0..k * k).map(|_| rng.normal(1.0) as f64).collect();
    let precision = wishart_from_inverse_scale(&inverse_scale, &chi, &normals)?;
    // μ ~ N(μ*, (β* Λ)⁻¹) with μ* = N x̄ / (β₀ + N).
    let beta = beta0 + n;
    let mut scaled: Vec<f64> = precision.iter().map(|p| p * beta).collect();
    let centre: Vec<f64> = mean.iter().map(|m| m * n / beta).collect();
    let mut h = matvec_f64(&scaled, &centre);
    let z: Vec<f64> = (0..k).map(|_| rng.normal(1.0) as f64).collect();
    gaussian_from_precision(&mut scaled, &mut h, &z)?;
    Ok(Prior { mean: h, precision })
}

/// Draws every row of `solve` from its posterior given the other side `fixed` and the
/// row's (other index, centred rating) pairs.
fn sample_side(
    rows: &[Vec<(u32, f32)>],
    noise_precision: f64,
    solve: &mut [f64],
    fixed: &[f64],
    prior: &Prior,
    k: usize,
    rng: &mut Rng,
) -> Result<()> {
    // Each row its own generator, forked in order: the same seed gives the same draws on
    // any number of threads.
    let seeds: Vec<u64> = (0..rows.len()).map(|_| rng.next_u64()).collect();
    let prior_h = matvec_f64(&prior.precision, &prior.mean);
    solve
        .par_chunks_mut(k)
        .zip(rows.par_iter())
        .zip(seeds.par_iter())
        .try_for_each(|((out, ratings), &seed)| {
            let mut precision = prior.precision.clone();
            let mut h = prior_h.clone();
            for &(j, r) in ratings {
                let v = &fixed[j as usize * k..(j as usize + 1) * k];
                for a in 0..k {
                    h[a] += noise_precision * r as f64 * v[a];
                    for b in 0..=a {
                        precision[a * k + b] += noise_precision * v[a] * v[b];
                    }
                }
            }
            for a in 0..k {
                for b in a + 1..k {
                    precision[a * k + b] = precision[b * k + a];
                }
            }
            let mut rng = Rng::seed(seed);
            let z: Vec<f64> = (0..k).map(|_| rng.normal(1.0) as f64).collect();
            gaussian_from_precision(&mut precision, &mut h, &z)?;
            out.copy_from_slice(&h);
            Ok(())
        })
}

/// BPMF by Gibbs sampling: `config.epochs` sweeps, the first [`BURN_IN`] discarded.
pub fn train_bpmf(data: &Interactions, config: &RecommendConfig, rng: &mut Rng) -> Result<Scorer> {
    let k = config.factors;
    // On implicit feedback: liked pairs 1 and sampled unliked items 0, drawn once.
    let triples = if config.trains_implicitly(data) {
        Positives::new(data, config.positive_min, data.users.len())?
            .pointwise(config.negatives, rng)
    } else {
        Triples::of(data)
    };
    let mean =
        (triples.rating.iter().map(|&r| r as f64).sum::<f64>() / triples.len() as f64) as f32;
    let (lo, hi) = triples
        .rating
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &r| {
            (lo.min(r), hi.max(r))
        });
    let range = if hi > lo { (hi - lo) as f64 } else { 4.0 };
    let noise_precision = RATING_PRECISION * (4.0 / range).powi(2);
    let centre = |rows: Vec<Vec<(u32, f32)>>| -> Vec<Vec<(u32, f32)>> {
        rows.into_iter()
            .map(|r| r.into_iter().map(|(j, v)| (j, v - mean)).collect())
            .collect()
    };
    let by_user = centre(triples.by_user(data.users.len()));
    let mut by_item = vec![Vec::new(); data.items.len()];
    for (u, rows) in by_user.iter().enumerate() {
        for &(i, r) in rows {
            by_item[i as usize].push((u as u32, r));
        }
    }
    let init = |n: usize, rng: &mut Rng| -> Vec<f64> {
        (0..n * k)
            .map(|_| rng.normal(config.init_std) as f64)
            .collect()
    };
    let mut users = init(data.users.len(), rng);
    let mut items = init(data.items.len(), rng);
    let sweeps_kept = config.epochs.saturating_sub(BURN_IN).max(1);
    let every = sweeps_kept.div_ceil(MAX_KEPT);
    let mut kept_users: Vec<Vec<f64>> = Vec::new();
    let mut kept_items: Vec<Vec<f64>> = Vec::new();
    let progress =
        crate::progress::Progress::new("Training", config.epochs.max(BURN_IN + 1), "epochs");
    for sweep in 0..config.epochs.max(BURN_IN + 1) {
        progress.advance(1);
        let prior = sample_prior(&items, k, rng)?;
        sample_side(
            &by_item,
            noise_precision,
            &mut items,
            &users,
            &prior,
            k,
            rng,
        )?;
        let prior = sample_prior(&users, k, rng)?;
        sample_side(
            &by_user,
            noise_precision,
            &mut users,
            &items,
            &prior,
            k,
            rng,
        )?;
        if sweep >= BURN_IN && (sweep - BURN_IN).is_multiple_of(every) {
            kept_users.push(users.clone());
            kept_items.push(items.clone());
        }
    }
    // Draws side by side: [p¹ … pˢ] / s · [q¹ … qˢ] = mean of pˢ · qˢ.
    let s = kept_users.len();
    let width = k * s;
    let side_by_side = |kept: &[Vec<f64>], n: usize, scale: f64| -> Vec<f32> {
        let mut out = vec![0.0f32; n * width];
        for (d, draw) in kept.iter().enumerate() {
            for r in 0..n {
                for f in 0..k {
                    out[r * width + d * k + f] = (draw[r * k + f] * scale) as f32;
                }
            }
        }
        out
    };
    Ok(Scorer {
        predicts_ratings: !config.trains_implicitly(data),
        mean,
        user_bias: vec![0.0; data.users.len()],
        item_bias: vec![0.0; data.items.len()],
        factors: width,
        user_factors: side_by_side(&kept_users, data.users.len(), 1.0 / s as f64),
        item_factors: side_by_side(&kept_items, data.items.len(), 1.0),
    })
}
