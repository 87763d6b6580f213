//! Implicit-feedback ranking by pairs: a user's liked item against a sampled item they did
//! not like, with BPR's log-sigmoid loss (Rendle et al. 2009) or WARP's rank-weighted hinge
//! (Weston et al. 2011, as LightFM trains it). Scores are `b_i + p_u · q_i`.

use super::factorization::normal_init;
use super::model::Scorer;
use super::positives::Positives;
use super::train::{ModelKind, RecommendConfig};
use crate::data::interactions::Interactions;
use crate::error::{Error, Result};
use crate::tensor::activation::sigmoid;
use crate::tensor::factorization::{dot, pair_step, PairParams};
use crate::tensor::random::Rng;

/// How many negatives WARP draws looking for one that violates the margin (LightFM's
/// `max_sampled` is 10; more finds violators late in training, when they are rare).
const WARP_MAX_SAMPLED: usize = 50;

/// Trains BPR or WARP on the positives of `data` (ratings ≥ `positive_min`, or every
/// interaction of implicit feedback).
pub fn train_pairwise(
    data: &Interactions,
    config: &RecommendConfig,
    rng: &mut Rng,
) -> Result<Scorer> {
    let k = config.factors;
    let n_items = data.items.len();
    let positives = Positives::new(data, config.positive_min, data.users.len())?;
    let mut user = normal_init(rng, data.users.len() * k, config.init_std);
    let mut item = normal_init(rng, n_items * k, config.init_std);
    let mut bias = vec![0.0f32; n_items];
    let mut lr = config.lr;
    let progress = crate::progress::Progress::new("Training", config.epochs, "epochs");
    for _ in 0..config.epochs {
        progress.advance(1);
        for _ in 0..positives.pairs.len() {
            let (u, i) = positives.pairs[rng.below(positives.pairs.len())];
            let Some(first) = positives.negative(u, rng) else {
                continue;
            };
            let (u, i) = (u as usize, i as usize);
            let pu = &user[u * k..(u + 1) * k];
            let (j, g) = match config.model {
                ModelKind::Warp => {
                    let x_ui = bias[i] + dot(pu, &item[i * k..(i + 1) * k]);
                    let mut found = None;
                    for trial in 1..=WARP_MAX_SAMPLED {
                        let j = if trial == 1 {
                            first as usize
                        } else {
                            positives.negative(u as u32, rng).unwrap_or(first) as usize
                        };
                        let x_uj = bias[j] + dot(pu, &item[j * k..(j + 1) * k]);
                        if x_uj > x_ui - 1.0 {
                            // The rank estimate ⌊(n − 1) / trials⌋, weighted by its log.
                            let rank = ((n_items - 1) / trial).max(1) as f32;
                            found = Some((j, rank.ln()));
                            break;
                        }
                    }
                    match found {
                        Some(found) => found,
                        None => continue,
                    }
                }
                _ => {
                    let j = first as usize;
                    let x = bias[i] - bias[j] + dot(pu, &item[i * k..(i + 1) * k])
                        - dot(pu, &item[j * k..(j + 1) * k]);
                    (j, sigmoid(-x))
                }
            };
            if i == j {
                continue;
            }
            // Disjoint mutable rows of one table: split around the larger index.
            let (lo, hi) = (i.min(j), i.max(j));
            let (head, tail) = item.split_at_mut(hi * k);
            let (row_lo, row_hi) = (&mut head[lo * k..(lo + 1) * k], &mut tail[..k]);
            let (positive, negative) = if i < j {
                (row_lo, row_hi)
            } else {
                (row_hi, row_lo)
            };
            let (bias_lo, bias_hi) = bias.split_at_mut(hi);
            let (b_lo, b_hi) = (&mut bias_lo[lo], &mut bias_hi[0]);
            let (positive_bias, negative_bias) = if i < j { (b_lo, b_hi) } else { (b_hi, b_lo) };
            let params = PairParams {
                user: &mut user[u * k..(u + 1) * k],
                positive,
                negative,
                positive_bias,
                negative_bias,
            };
            pair_step(params, g, lr, config.reg);
        }
        lr *= config.lr_decay;
    }
    let scorer = Scorer {
        predicts_ratings: false,
        mean: 0.0,
        user_bias: vec![0.0; data.users.len()],
        item_bias: bias,
        factors: k,
        user_factors: user,
        item_factors: item,
    };
    scorer.check(data.users.len(), n_items).map_err(|_| {
        Error::NonFinite(format!(
            "{} diverged (a factor is not a finite number): lower --lr or raise --reg",
            config.model.name()
        ))
    })?;
    Ok(scorer)
}
