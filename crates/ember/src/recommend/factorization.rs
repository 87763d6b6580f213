//! Explicit-feedback factorisations of the rating matrix: biased MF trained by SGD (Funk
//! SVD, as Surprise's `SVD`), SVD++ (implicit factors of the items a user rated, Koren
//! 2008) and alternating least squares with biases (ALS-WR, Zhou et al. 2008).

use rayon::prelude::*;

use super::model::Scorer;
use super::positives::{Positives, Triples};
use super::train::RecommendConfig;
use crate::data::interactions::Interactions;
use crate::error::{Error, Result};
use crate::tensor::factorization::{
    als_row, gram_matrix, implicit_als_row, mf_epoch, svdpp_user_step, svdpp_user_vector, MfTables,
    SvdppUser,
};
use crate::tensor::random::Rng;

/// `n` values drawn from N(0, std²).
pub(super) fn normal_init(rng: &mut Rng, n: usize, std: f32) -> Vec<f32> {
    (0..n).map(|_| rng.normal(std)).collect()
}

fn mean_rating(data: &Interactions) -> f32 {
    (data.rating.iter().map(|&r| r as f64).sum::<f64>() / data.len().max(1) as f64) as f32
}

fn check_finite(scorer: &Scorer, what: &str) -> Result<()> {
    scorer
        .check(scorer.user_bias.len(), scorer.item_bias.len())
        .map_err(|_| {
            Error::NonFinite(format!(
                "{what} diverged (a factor is not a finite number): lower --lr or raise --reg"
            ))
        })
}

/// The liked pairs when `config` trains a rating model on implicit feedback.
fn implicit_positives(data: &Interactions, config: &RecommendConfig) -> Result<Option<Positives>> {
    if config.trains_implicitly(data) {
        Positives::new(data, config.positive_min, data.users.len()).map(Some)
    } else {
        Ok(None)
    }
}

/// Where MF and SVD++ start: the liked pairs on implicit feedback, the mean rating (0 on
/// implicit feedback), zero biases and N(0, init_std²) factors, users' drawn first.
struct Start {
    positives: Option<Positives>,
    mean: f32,
    user_bias: Vec<f32>,
    item_bias: Vec<f32>,
    user: Vec<f32>,
    item: Vec<f32>,
}

fn start(data: &Interactions, config: &RecommendConfig, rng: &mut Rng) -> Result<Start> {
    let k = config.factors;
    let positives = implicit_positives(data, config)?;
    let mean = if positives.is_some() {
        0.0
    } else {
        mean_rating(data)
    };
    Ok(Start {
        positives,
        mean,
        user_bias: vec![0.0; data.users.len()],
        item_bias: vec![0.0; data.items.len()],
        user: normal_init(rng, data.users.len() * k, config.init_std),
        item: normal_init(rng, data.items.len() * k, config.init_std),
    })
}

/// Biased MF by SGD over the ratings in a fresh seeded order every epoch. On implicit
/// feedback the targets are 1 for liked pairs and 0 for unliked items sampled afresh every
/// epoch (`config.negatives` per liked pair), and the mean is 0.
pub fn train_mf(data: &Interactions, config: &RecommendConfig, rng: &mut Rng) -> Result<Scorer> {
    let k = config.factors;
    let Start {
        positives,
        mean,
        mut user_bias,
        mut item_bias,
        mut user,
        mut item,
    } = start(data, config, rng)?;
    let explicit = Triples::of(data);
    let mut order: Vec<u32> = Vec::new();
    let mut rows: Vec<(u32, u32, f32)> = Vec::new();
    let mut lr = config.lr;
    let progress = crate::progress::Progress::new("Training", config.epochs, "epochs");
    for _ in 0..config.epochs {
        progress.advance(1);
        let fresh;
        let triples = match &positives {
            Some(p) => {
                fresh = p.pointwise(config.negatives, rng);
                &fresh
            }
            None => &explicit,
        };
        if order.len() != triples.len() {
            order = (0..triples.len() as u32).collect();
        }
        rng.shuffle(&mut order);
        rows.clear();
        rows.extend(order.iter().map(|&r| {
            let r = r as usize;
            (triples.user[r], triples.item[r], triples.rating[r])
        }));
        let tables = MfTables {
            user_bias: &mut user_bias,
            item_bias: &mut item_bias,
            user: &mut user,
            item: &mut item,
            k,
        };
        mf_epoch(&rows, mean, tables, lr, config.reg);
        lr *= config.lr_decay;
    }
    let scorer = Scorer {
        predicts_ratings: positives.is_none(),
        mean,
        user_bias,
        item_bias,
        factors: k,
        user_factors: user,
        item_factors: item,
    };
    check_finite(&scorer, "MF")?;
    Ok(scorer)
}

/// SVD++, one user at a time (see [`svdpp_user_step`]); the user vectors of the result
/// include the implicit part. On implicit feedback the implicit items are the liked ones
/// and the targets are those of [`train_mf`].
pub fn train_svdpp(data: &Interactions, config: &RecommendConfig, rng: &mut Rng) -> Result<Scorer> {
    let k = config.factors;
    let Start {
        positives,
        mean,
        mut user_bias,
        mut item_bias,
        user: mut p,
        item: mut q,
    } = start(data, config, rng)?;
    let mut y = normal_init(rng, data.items.len() * k, config.init_std);
    let mut ratings = Triples::of(data).by_user(data.users.len());
    let implicit: Vec<Vec<u32>> = match &positives {
        Some(positives) => positives.sorted_liked(),
        None => ratings
            .iter()
            .map(|rs| rs.iter().map(|&(i, _)| i).collect())
            .collect(),
    };
    let mut users: Vec<usize> = (0..ratings.len()).collect();
    let mut scratch = vec![0.0f32; 2 * k];
    let mut lr = config.lr;
    let progress = crate::progress::Progress::new("Training", config.epochs, "epochs");
    for _ in 0..config.epochs {
        progress.advance(1);
        if let Some(positives) = &positives {
            ratings = positives
                .pointwise(config.negatives, rng)
                .by_user(data.users.len());
        }
        rng.shuffle(&mut users);
        for &u in &users {
            rng.shuffle(&mut ratings[u]);
            let user = SvdppUser {
                ratings: &ratings[u],
                implicit: &implicit[u],
            };
            svdpp_user_step(
                user,
                mean,
                &mut user_bias[u],
                &mut item_bias,
                &mut p[u * k..(u + 1) * k],
                &mut q,
                &mut y,
                lr,
                config.reg,
                &mut scratch,
            );
        }
        lr *= config.lr_decay;
    }
    let mut user_factors = vec![0.0f32; p.len()];
    for (u, out) in user_factors.chunks_exact_mut(k).enumerate() {
        svdpp_user_vector(&p[u * k..(u + 1) * k], &y, &implicit[u], out);
    }
    let scorer = Scorer {
        predicts_ratings: positives.is_none(),
        mean,
        user_bias,
        item_bias,
        factors: k,
        user_factors,
        item_factors: q,
    };
    check_finite(&scorer, "SVD++")?;
    Ok(scorer)
}

/// One half-step of ALS: every row of `solve` (factors, then its bias, k + 1 wide) is the
/// ridge solution against the fixed side `fixed` (same layout) over that row's ratings,
/// with the regularisation scaled by the row's rating count (ALS-WR).
fn als_half_step(
    rows: &[Vec<(u32, f32)>],
    solve: &mut [f32],
    fixed: &[f32],
    mean: f32,
    k: usize,
    reg: f32,
) -> Result<()> {
    let width = k + 1;
    solve
        .par_chunks_mut(width)
        .zip(rows.par_iter())
        .try_for_each(|(out, ratings)| {
            if ratings.is_empty() {
                return Ok(());
            }
            // The other side's row with its bias replaced by 1: x · [f, 1] = p·q + b.
            let features: Vec<Vec<f32>> = ratings
                .iter()
                .map(|&(j, _)| {
                    let row = &fixed[j as usize * width..(j as usize + 1) * width];
                    let mut f = row[..k].to_vec();
                    f.push(1.0);
                    f
                })
                .collect();
            let targets: Vec<f32> = ratings
                .iter()
                .map(|&(j, r)| r - mean - fixed[j as usize * width + k])
                .collect();
            let refs: Vec<&[f32]> = features.iter().map(|f| f.as_slice()).collect();
            als_row(&refs, &targets, reg * ratings.len() as f32, out)
        })
}

/// Biased ALS: alternately solves every user's (factors, bias) and every item's exactly.
/// On implicit feedback, the weighted ALS of Hu, Koren and Volinsky instead.
pub fn train_als(data: &Interactions, config: &RecommendConfig, rng: &mut Rng) -> Result<Scorer> {
    if let Some(positives) = implicit_positives(data, config)? {
        return train_implicit_als(data, &positives, config, rng);
    }
    let k = config.factors;
    let width = k + 1;
    let mean = mean_rating(data);
    let by_user = Triples::of(data).by_user(data.users.len());
    let mut by_item = vec![Vec::new(); data.items.len()];
    for r in 0..data.len() {
        by_item[data.item[r] as usize].push((data.user[r], data.rating[r]));
    }
    // (factors, bias) rows; the biases start at 0.
    let mut users = vec![0.0f32; data.users.len() * width];
    let mut items = normal_init(rng, data.items.len() * width, config.init_std);
    for row in items.chunks_exact_mut(width) {
        row[k] = 0.0;
    }
    let progress = crate::progress::Progress::new("Training", config.epochs, "epochs");
    for _ in 0..config.epochs {
        progress.advance(1);
        als_half_step(&by_user, &mut users, &items, mean, k, config.reg)?;
        als_half_step(&by_item, &mut items, &users, mean, k, config.reg)?;
    }
    let split = |rows: &[f32]| -> (Vec<f32>, Vec<f32>) {
        let factors = rows
            .chunks_exact(width)
            .flat_map(|r| r[..k].to_vec())
            .collect();
        let bias = rows.chunks_exact(width).map(|r| r[k]).collect();
        (factors, bias)
    };
    let (user_factors, user_bias) = split(&users);
    let (item_factors, item_bias) = split(&items);
    let scorer = Scorer {
        predicts_ratings: true,
        mean,
        user_bias,
        item_bias,
        factors: k,
        user_factors,
        item_factors,
    };
    check_finite(&scorer, "ALS")?;
    Ok(scorer)
}

/// One half-step of implicit ALS: every row of `solve` minimises
/// `Σ_j c_j (p_j − x · y_j)² + λ ‖x‖²` over all items j of the other side, with preference
/// p = 1 and confidence c = 1 + α on the row's liked items and p = 0, c = 1 elsewhere.
fn implicit_half_step(
    liked: &[Vec<u32>],
    solve: &mut [f32],
    fixed: &[f32],
    k: usize,
    alpha: f32,
    reg: f32,
) -> Result<()> {
    // Yᵀ Y over every row of the other side, shared by all rows of this one.
    let gram = gram_matrix(fixed, k);
    solve
        .par_chunks_mut(k)
        .zip(liked.par_iter())
        .try_for_each(|(out, items)| {
            let rows: Vec<&[f32]> = items
                .iter()
                .map(|&j| &fixed[j as usize * k..(j as usize + 1) * k])
                .collect();
            implicit_als_row(&gram, &rows, alpha, reg, out)
        })
}

/// Weighted ALS for implicit feedback (Hu, Koren & Volinsky 2008): scores `p_u · q_i`.
fn train_implicit_als(
    data: &Interactions,
    positives: &Positives,
    config: &RecommendConfig,
    rng: &mut Rng,
) -> Result<Scorer> {
    let k = config.factors;
    let by_user = positives.sorted_liked();
    let mut by_item = vec![Vec::new(); data.items.len()];
    for (u, items) in by_user.iter().enumerate() {
        for &i in items {
            by_item[i as usize].push(u as u32);
        }
    }
    let mut users = vec![0.0f32; data.users.len() * k];
    let mut items = normal_init(rng, data.items.len() * k, config.init_std);
    let progress = crate::progress::Progress::new("Training", config.epochs, "epochs");
    for _ in 0..config.epochs {
        progress.advance(1);
        implicit_half_step(
            &by_user,
            &mut users,
            &items,
            k,
            config.confidence,
            config.reg,
        )?;
        implicit_half_step(
            &by_item,
            &mut items,
            &users,
            k,
            config.confidence,
            config.reg,
        )?;
    }
    let scorer = Scorer {
        predicts_ratings: false,
        mean: 0.0,
        user_bias: vec![0.0; data.users.len()],
        item_bias: vec![0.0; data.items.len()],
        factors: k,
        user_factors: users,
        item_factors: items,
    };
    check_finite(&scorer, "ALS")?;
    Ok(scorer)
}
