//! A trained recommender: every model Ember trains scores a (user, item) pair as
//! `μ + b_u + b_i + p_u · q_i`, so one form holds them all (SVD++'s implicit part and a
//! two-tower model's towers are folded into the user and item vectors once training ends).
//! Top-k lists, similar items and "because you liked …" explanations are computed here.

use std::collections::HashSet;

use serde::Serialize;

use super::train::RecommendConfig;
use crate::data::interactions::Ids;
use crate::error::{Error, Result};
use crate::tensor::factorization::{cosine, dot, score_items};

/// Biases and factors: the score of user u and item i is `mean + user_bias[u] +
/// item_bias[i] + user_factors[u] · item_factors[i]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Scorer {
    /// Whether the score is a predicted rating (RMSE and MAE apply) or a ranking score.
    pub predicts_ratings: bool,
    pub mean: f32,
    pub user_bias: Vec<f32>,
    pub item_bias: Vec<f32>,
    /// The length of each factor vector (0 for a baseline).
    pub factors: usize,
    /// users × factors, row-major.
    pub user_factors: Vec<f32>,
    /// items × factors, row-major.
    pub item_factors: Vec<f32>,
}

impl Scorer {
    pub fn user_vector(&self, u: u32) -> &[f32] {
        let k = self.factors;
        &self.user_factors[u as usize * k..(u as usize + 1) * k]
    }

    pub fn item_vector(&self, i: u32) -> &[f32] {
        let k = self.factors;
        &self.item_factors[i as usize * k..(i as usize + 1) * k]
    }

    /// The score of a pair, either of which may be unknown (`None`): an unknown side adds
    /// nothing but the other side's bias.
    pub fn score(&self, user: Option<u32>, item: Option<u32>) -> f32 {
        let bu = user.map_or(0.0, |u| self.user_bias[u as usize]);
        let bi = item.map_or(0.0, |i| self.item_bias[i as usize]);
        let interaction = match (user, item) {
            (Some(u), Some(i)) if self.factors > 0 => dot(self.user_vector(u), self.item_vector(i)),
            _ => 0.0,
        };
        self.mean + bu + bi + interaction
    }

    /// The scores of every item for user `u` (without the user's own bias and the mean,
    /// which do not change a ranking).
    pub fn item_scores(&self, u: u32) -> Vec<f32> {
        let mut out = vec![0.0; self.item_bias.len()];
        if self.factors == 0 {
            out.copy_from_slice(&self.item_bias);
        } else {
            score_items(
                &self.item_factors,
                &self.item_bias,
                self.user_vector(u),
                &mut out,
            );
        }
        out
    }

    /// Every value finite and every length consistent with `users` × `items`.
    pub fn check(&self, users: usize, items: usize) -> std::result::Result<(), String> {
        let k = self.factors;
        let too_large = || format!("{k} factors of {users} users and {items} items is too large");
        let lengths = [
            ("user_bias", self.user_bias.len(), users),
            ("item_bias", self.item_bias.len(), items),
            (
                "user_factors",
                self.user_factors.len(),
                users.checked_mul(k).ok_or_else(too_large)?,
            ),
            (
                "item_factors",
                self.item_factors.len(),
                items.checked_mul(k).ok_or_else(too_large)?,
            ),
        ];
        for (name, got, want) in lengths {
            if got != want {
                return Err(format!("{name} has {got} values, {want} expected"));
            }
        }
        let all = [
            &self.user_bias,
            &self.item_bias,
            &self.user_factors,
            &self.item_factors,
        ];
        if !self.mean.is_finite() || all.iter().any(|v| v.iter().any(|x| !x.is_finite())) {
            return Err("holds a value that is not a finite number".into());
        }
        Ok(())
    }
}

/// One item of a top-k list.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Recommendation {
    pub item: String,
    pub title: Option<String>,
    pub score: f32,
    /// For `--explain`: the user's highly rated items closest to this one, with their
    /// cosine similarity.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub because: Vec<(String, f32)>,
}

/// A top-k list, and how it was made when the model could not personalise it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TopList {
    pub user: String,
    pub items: Vec<Recommendation>,
    /// None when personalised; otherwise why not (an unknown user).
    pub fallback: Option<String>,
}

/// A trained recommender with what it needs to answer: ids, titles, the training
/// interactions (items to exclude and to explain with) and the baselines reported beside it.
#[derive(Clone, Debug)]
pub struct Recommender {
    pub config: RecommendConfig,
    pub users: Ids,
    pub items: Ids,
    pub titles: Option<Vec<String>>,
    pub model: Scorer,
    /// Popularity (positives per item) and the user and item biases (Surprise's
    /// `BaselineOnly`).
    pub popularity: Scorer,
    pub biases: Scorer,
    /// The training interactions of each user: (item, rating), by item.
    pub seen: Vec<Vec<(u32, f32)>>,
    /// The smallest and largest training rating: predictions are clipped to them.
    pub rating_bounds: (f32, f32),
    /// Users and items below these indices had training interactions; the rest were
    /// added from a feature table (cold start, two-tower only).
    pub trained_users: usize,
    pub trained_items: usize,
    /// How the feature tables were used, for the record.
    pub user_features: Option<String>,
    pub item_features: Option<String>,
}

impl Recommender {
    pub fn kind(&self) -> &'static str {
        self.config.model.name()
    }

    /// The items a user interacted with in training.
    pub fn seen_items(&self, u: u32) -> HashSet<u32> {
        self.seen[u as usize].iter().map(|&(i, _)| i).collect()
    }

    /// The k best items for user `u` by `scorer` that are not in `exclude`, best first.
    pub fn rank(
        &self,
        scorer: &Scorer,
        u: Option<u32>,
        exclude: &HashSet<u32>,
        k: usize,
    ) -> Vec<(u32, f32)> {
        let scores = match u {
            Some(u) => scorer.item_scores(u),
            None => scorer.item_bias.clone(),
        };
        top_k(&scores, exclude, k)
    }

    /// The top-k list of `user`, without the items they have seen. An unknown user gets the
    /// most popular items, and the list says so.
    pub fn top(&self, user: &str, k: usize, explain: bool) -> Result<TopList> {
        check_k(k)?;
        let (items, fallback) = match self.users.get(user) {
            Some(u) => {
                let fallback = (u as usize >= self.trained_users).then(|| {
                    format!("user '{user}' has no ratings in the training data: recommended from their features")
                });
                let mut ranked = self.rank(&self.model, Some(u), &self.seen_items(u), k);
                // A rating model's list shows predicted ratings: add back what the
                // ranking left out (mean and the user's bias), clipped to the scale.
                if self.model.predicts_ratings {
                    let (lo, hi) = self.rating_bounds;
                    let offset = self.model.mean + self.model.user_bias[u as usize];
                    for (_, score) in &mut ranked {
                        *score = (*score + offset).clamp(lo, hi);
                    }
                }
                (ranked, fallback)
            }
            None => (
                self.rank(&self.popularity, None, &HashSet::new(), k),
                Some(format!(
                    "user '{user}' is not in the training data: the most popular items"
                )),
            ),
        };
        let liked = match (explain, self.users.get(user)) {
            (true, Some(u)) => self.liked(u),
            _ => Vec::new(),
        };
        let items = items
            .into_iter()
            .map(|(i, score)| Recommendation {
                item: self.items.name(i).to_string(),
                title: self.title(i),
                score,
                because: self.because(i, &liked),
            })
            .collect();
        Ok(TopList {
            user: user.to_string(),
            items,
            fallback,
        })
    }

    /// The items a user rated at least the positive threshold in training (every item, for
    /// implicit feedback).
    fn liked(&self, u: u32) -> Vec<u32> {
        // The bias baseline predicts ratings exactly when the training data had them.
        let threshold = if self.biases.predicts_ratings {
            self.config.positive_min
        } else {
            f32::NEG_INFINITY
        };
        self.seen[u as usize]
            .iter()
            .filter(|&&(_, r)| r >= threshold)
            .map(|&(i, _)| i)
            .collect()
    }

    /// Up to two liked items closest to `item` in the model's item space.
    fn because(&self, item: u32, liked: &[u32]) -> Vec<(String, f32)> {
        if self.model.factors == 0 || liked.is_empty() {
            return Vec::new();
        }
        let target = self.model.item_vector(item);
        let mut near: Vec<(u32, f32)> = liked
            .iter()
            .map(|&j| (j, cosine(target, self.model.item_vector(j))))
            .collect();
        near.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        near.truncate(2);
        near.into_iter()
            .map(|(j, s)| (self.display(j), s))
            .collect()
    }

    /// The k items most similar to `item` (cosine of item vectors).
    pub fn similar(&self, item: &str, k: usize) -> Result<Vec<Recommendation>> {
        check_k(k)?;
        let i = self.items.get(item).ok_or_else(|| {
            Error::invalid(format!(
                "item '{item}' is not in the model's {} items",
                self.items.len()
            ))
        })?;
        if self.model.factors == 0 {
            return Err(Error::invalid("this model has no item vectors to compare"));
        }
        let target = self.model.item_vector(i);
        let scores: Vec<f32> = (0..self.items.len() as u32)
            .map(|j| cosine(target, self.model.item_vector(j)))
            .collect();
        Ok(top_k(&scores, &HashSet::from([i]), k)
            .into_iter()
            .map(|(j, score)| Recommendation {
                item: self.items.name(j).to_string(),
                title: self.title(j),
                score,
                because: Vec::new(),
            })
            .collect())
    }

    pub fn title(&self, i: u32) -> Option<String> {
        self.titles
            .as_ref()
            .map(|t| t[i as usize].clone())
            .filter(|t| !t.is_empty())
    }

    /// The title of an item, or its id.
    pub fn display(&self, i: u32) -> String {
        self.title(i)
            .unwrap_or_else(|| self.items.name(i).to_string())
    }
}

fn check_k(k: usize) -> Result<()> {
    if k == 0 {
        return Err(Error::invalid("k must be at least 1"));
    }
    Ok(())
}

/// The indices of the k largest scores not in `exclude`, best first (ties by index).
pub fn top_k(scores: &[f32], exclude: &HashSet<u32>, k: usize) -> Vec<(u32, f32)> {
    if k == 0 {
        return Vec::new();
    }
    let mut candidates: Vec<(u32, f32)> = scores
        .iter()
        .enumerate()
        .map(|(i, &s)| (i as u32, s))
        .filter(|(i, _)| !exclude.contains(i))
        .collect();
    let by_score = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if candidates.len() > k {
        candidates.select_nth_unstable_by(k - 1, by_score);
        candidates.truncate(k);
    }
    candidates.sort_by(by_score);
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_skips_excluded_items_and_breaks_ties_by_index() {
        let scores = [0.5, 2.0, 2.0, -1.0, 3.0];
        let top = top_k(&scores, &HashSet::from([4]), 3);
        assert_eq!(top, vec![(1, 2.0), (2, 2.0), (0, 0.5)]);
        assert_eq!(top_k(&scores, &HashSet::new(), 10).len(), 5);
    }

    #[test]
    fn a_scorer_adds_mean_biases_and_the_dot_product() {
        let s = Scorer {
            predicts_ratings: true,
            mean: 3.0,
            user_bias: vec![0.5],
            item_bias: vec![-0.25, 0.0],
            factors: 2,
            user_factors: vec![1.0, 2.0],
            item_factors: vec![0.5, 0.25, 1.0, -1.0],
        };
        assert_eq!(s.score(Some(0), Some(0)), 3.0 + 0.5 - 0.25 + 1.0);
        assert_eq!(s.score(None, Some(0)), 2.75);
        assert_eq!(s.score(Some(0), None), 3.5);
        assert_eq!(s.item_scores(0), vec![-0.25 + 1.0, -1.0]);
        assert!(s.check(1, 2).is_ok());
        assert!(s
            .check(2, 2)
            .unwrap_err()
            .contains("user_bias has 1 values, 2 expected"));
    }
}
