//! Held-out evaluation of a recommender, and the splits it is evaluated on: rating error
//! (RMSE, MAE) and top-k ranking (precision, recall, NDCG, MAP, hit rate at k, AUC), random
//! k folds over ratings (Surprise's protocol) and n ratings held out per user (as
//! MovieLens's `ua.base` / `ua.test` were made).
//!
//! Ranking protocol: a user's relevant items are their test rows rated at least
//! `relevant_min` (every test row, for implicit feedback); users without any are skipped;
//! the items a user has in the training data are not ranked; every other item the model
//! knows is a candidate.

use std::collections::{HashMap, HashSet};

use super::model::{Recommender, Scorer};
use crate::data::interactions::Interactions;
use crate::error::{Error, Result};
use crate::metrics::ranking::user_auc;
use crate::metrics::{ranking_at_k, MeanRanking, RankingMeans};
use crate::tensor::random::Rng;

/// What to measure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EvaluateOptions {
    /// The cut-off of the ranking metrics.
    pub k: usize,
    /// Test ratings at least this are relevant.
    pub relevant_min: f32,
}

impl Default for EvaluateOptions {
    fn default() -> Self {
        EvaluateOptions {
            k: 10,
            relevant_min: 4.0,
        }
    }
}

/// Rating errors on the test rows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RatingErrors {
    pub rmse: f64,
    pub mae: f64,
    pub count: usize,
}

/// One scorer's held-out figures.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    pub name: String,
    /// None for a scorer that does not predict ratings.
    pub ratings: Option<RatingErrors>,
    pub ranking: MeanRanking,
}

/// What the test set held that the model could not use.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Coverage {
    pub test_rows: usize,
    /// Test rows whose user or item the model has never seen (rated from the biases it has).
    pub unknown_rows: usize,
    /// Test rows whose (user, item) pair is in the training data: a test set that overlaps
    /// training (its figures are optimistic, and those items are not ranked).
    pub seen_rows: usize,
    /// Test users with relevant items but unknown to the model: not ranked.
    pub unknown_users: usize,
    /// Test users without any relevant item: not ranked.
    pub users_without_relevant: usize,
}

/// Evaluates the model and its baselines (popularity, biases) on `test`: the model first.
pub fn evaluate(
    model: &Recommender,
    test: &Interactions,
    options: &EvaluateOptions,
) -> Result<(Vec<Evaluation>, Coverage)> {
    let mut coverage = Coverage {
        test_rows: test.len(),
        ..Default::default()
    };
    // Test rows as model indices.
    let rows: Vec<(Option<u32>, Option<u32>, f32)> = (0..test.len())
        .map(|r| {
            (
                model.users.get(test.users.name(test.user[r])),
                model.items.get(test.items.name(test.item[r])),
                test.rating[r],
            )
        })
        .collect();
    coverage.seen_rows = rows
        .iter()
        .filter(|(u, i, _)| match (u, i) {
            (Some(u), Some(i)) => model.seen[*u as usize]
                .binary_search_by_key(i, |&(j, _)| j)
                .is_ok(),
            _ => false,
        })
        .count();
    coverage.unknown_rows = rows
        .iter()
        .filter(|(u, i, _)| u.is_none() || i.is_none())
        .count();
    // Relevant items per test user; unknown items stay relevant (and can never be hit).
    let mut relevant: HashMap<String, HashSet<u32>> = HashMap::new();
    let mut unknown_items: HashMap<String, u32> = HashMap::new();
    for (r, &(_, known_item, rating)) in rows.iter().enumerate() {
        let user = test.users.name(test.user[r]);
        let entry = relevant.entry(user.to_string()).or_default();
        if !test.explicit || rating >= options.relevant_min {
            let item = known_item.unwrap_or_else(|| {
                // A stand-in index beyond the model's items, distinct per unknown item.
                let next = model.items.len() as u32 + unknown_items.len() as u32;
                *unknown_items
                    .entry(test.items.name(test.item[r]).to_string())
                    .or_insert(next)
            });
            entry.insert(item);
        }
    }
    let mut users: Vec<(u32, HashSet<u32>)> = Vec::new();
    let mut names: Vec<&String> = relevant.keys().collect();
    names.sort();
    for name in names {
        let items = &relevant[name];
        match (items.is_empty(), model.users.get(name)) {
            (true, _) => coverage.users_without_relevant += 1,
            (false, None) => coverage.unknown_users += 1,
            (false, Some(u)) => users.push((u, items.clone())),
        }
    }
    // Figures over nothing would read as a model that gets everything wrong.
    if coverage.unknown_rows == coverage.test_rows {
        return Err(Error::data(
            &test.path,
            format!(
                "none of its {} rows has a user and an item the model knows: is it a test set of the data the model was trained on?",
                coverage.test_rows
            ),
        ));
    }
    if users.is_empty() {
        return Err(Error::data(
            &test.path,
            format!(
                "no user can be ranked: {} of its users are unknown to the model and {} have no relevant item (rating >= {})",
                coverage.unknown_users, coverage.users_without_relevant, options.relevant_min
            ),
        ));
    }
    let scorers: [(&str, &Scorer); 3] = [
        (model.kind(), &model.model),
        ("popularity", &model.popularity),
        ("biases", &model.biases),
    ];
    let evaluations = scorers
        .iter()
        .filter(|(name, _)| *name != "biases" || test.explicit)
        .map(|(name, scorer)| Evaluation {
            name: name.to_string(),
            ratings: (scorer.predicts_ratings && test.explicit)
                .then(|| rating_errors(model, scorer, &rows)),
            ranking: ranking(model, scorer, &users, options.k),
        })
        .collect();
    Ok((evaluations, coverage))
}

fn rating_errors(
    model: &Recommender,
    scorer: &Scorer,
    rows: &[(Option<u32>, Option<u32>, f32)],
) -> RatingErrors {
    let (lo, hi) = model.rating_bounds;
    let (mut squared, mut absolute) = (0.0f64, 0.0f64);
    for &(u, i, r) in rows {
        let err = (scorer.score(u, i).clamp(lo, hi) - r) as f64;
        squared += err * err;
        absolute += err.abs();
    }
    let n = rows.len().max(1) as f64;
    RatingErrors {
        rmse: (squared / n).sqrt(),
        mae: absolute / n,
        count: rows.len(),
    }
}

fn ranking(
    model: &Recommender,
    scorer: &Scorer,
    users: &[(u32, HashSet<u32>)],
    k: usize,
) -> MeanRanking {
    let mut means = RankingMeans::default();
    for (u, relevant) in users {
        let seen = model.seen_items(*u);
        let scores = scorer.item_scores(*u);
        let ranked: Vec<u32> = super::model::top_k(&scores, &seen, k)
            .into_iter()
            .map(|(i, _)| i)
            .collect();
        means.add(
            ranking_at_k(&ranked, relevant, k),
            user_auc(&scores, &seen, relevant),
        );
    }
    means.mean()
}

/// Surprise's `KFold(shuffle=True)`: the rows in a seeded random order, cut into `folds`
/// nearly equal parts; returns each fold's (train rows, test rows).
pub fn k_folds(n: usize, folds: usize, seed: u64) -> Vec<(Vec<usize>, Vec<usize>)> {
    let mut order: Vec<usize> = (0..n).collect();
    Rng::seed(seed).shuffle(&mut order);
    (0..folds)
        .map(|f| {
            let (start, end) = (f * n / folds, (f + 1) * n / folds);
            let test = order[start..end].to_vec();
            let train = order[..start]
                .iter()
                .chain(&order[end..])
                .copied()
                .collect();
            (train, test)
        })
        .collect()
}

/// `per_user` random rows of every user with more than that many held out for testing
/// (seeded); returns (train rows, test rows, users left whole because they had too few).
pub fn leave_n_out(
    data: &Interactions,
    per_user: usize,
    seed: u64,
) -> (Vec<usize>, Vec<usize>, usize) {
    let mut rng = Rng::seed(seed);
    let mut by_user: Vec<Vec<usize>> = vec![Vec::new(); data.users.len()];
    for r in 0..data.len() {
        by_user[data.user[r] as usize].push(r);
    }
    let (mut train, mut test, mut whole) = (Vec::new(), Vec::new(), 0);
    for rows in &mut by_user {
        if rows.len() <= per_user {
            whole += 1;
            train.extend_from_slice(rows);
            continue;
        }
        rng.shuffle(rows);
        test.extend_from_slice(&rows[..per_user]);
        train.extend_from_slice(&rows[per_user..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    (train, test, whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_partition_the_rows() {
        let folds = k_folds(10, 3, 7);
        let mut all: Vec<usize> = folds.iter().flat_map(|(_, t)| t.clone()).collect();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        for (train, test) in &folds {
            assert_eq!(train.len() + test.len(), 10);
            assert!(test.iter().all(|r| !train.contains(r)));
        }
        assert_eq!(k_folds(10, 3, 7), folds, "seeded");
    }
}
