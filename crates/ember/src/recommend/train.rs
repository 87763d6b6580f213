//! Which recommender to train and with what settings, and `train`, which fits it with its
//! baselines into a [`Recommender`].

use serde::{Deserialize, Serialize};

use super::baseline;
use super::bayesian::train_bpmf;
use super::factorization::{train_als, train_mf, train_svdpp};
use super::model::Recommender;
use super::pairwise::train_pairwise;
use super::two_tower::{train_two_tower, Side};
use crate::data::interactions::Interactions;
use crate::data::side_features::SideFeatures;
use crate::error::{Error, Result};
use crate::tensor::random::Rng;

/// The recommender models.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// Biased matrix factorisation by SGD (Funk SVD): predicts ratings.
    Mf,
    /// SVD++: MF plus implicit factors of the items a user rated; predicts ratings.
    Svdpp,
    /// Biased alternating least squares: predicts ratings.
    Als,
    /// Bayesian probabilistic MF (Gibbs sampling; ALS that samples): predicts ratings.
    Bpmf,
    /// Bayesian personalised ranking on liked items (implicit).
    Bpr,
    /// WARP, a rank-weighted hinge on liked items (implicit).
    Warp,
    /// Two towers of id embeddings and side features, dot product, sampled negatives.
    TwoTower,
}

impl ModelKind {
    pub const NAMES: [&'static str; 7] = ["mf", "svdpp", "als", "bpmf", "bpr", "warp", "two-tower"];

    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Mf => "mf",
            ModelKind::Svdpp => "svdpp",
            ModelKind::Als => "als",
            ModelKind::Bpmf => "bpmf",
            ModelKind::Bpr => "bpr",
            ModelKind::Warp => "warp",
            ModelKind::TwoTower => "two-tower",
        }
    }

    pub fn from_name(name: &str) -> Result<ModelKind> {
        let all = [
            ModelKind::Mf,
            ModelKind::Svdpp,
            ModelKind::Als,
            ModelKind::Bpmf,
            ModelKind::Bpr,
            ModelKind::Warp,
            ModelKind::TwoTower,
        ];
        all.into_iter().find(|m| m.name() == name).ok_or_else(|| {
            Error::invalid(format!(
                "unknown recommender '{name}' (one of: {})",
                Self::NAMES.join(", ")
            ))
        })
    }

    /// Whether the model fits ratings (and needs them).
    pub fn predicts_ratings(self) -> bool {
        matches!(
            self,
            ModelKind::Mf | ModelKind::Svdpp | ModelKind::Als | ModelKind::Bpmf
        )
    }
}

/// A recommender's settings. [`RecommendConfig::new`] gives each model's defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecommendConfig {
    pub model: ModelKind,
    /// Length of the user and item vectors.
    pub factors: usize,
    /// Passes over the training data (ALS: alternations).
    pub epochs: usize,
    /// SGD / Adam learning rate (unused by ALS and BPMF).
    pub lr: f32,
    /// The learning rate is multiplied by this after every epoch (1: constant).
    pub lr_decay: f32,
    /// L2 regularisation (explicit ALS: per rating of the row, as ALS-WR; implicit ALS: λ;
    /// unused by BPMF, whose priors are sampled).
    pub reg: f32,
    /// Standard deviation of the initial factors.
    pub init_std: f32,
    pub seed: u64,
    /// Ratings at least this are "liked": the positives of the implicit models, and the
    /// items `--explain` cites.
    pub positive_min: f32,
    /// Train a rating model (mf, svdpp, als, bpmf) on implicit feedback: the liked pairs
    /// against sampled unliked items (als: weighted over every item), ranking instead of
    /// predicting ratings. Always so for a file without ratings.
    pub implicit: bool,
    /// Implicit ALS: the confidence α of a liked pair (1 + α against 1 for the rest).
    pub confidence: f32,
    /// Sampled unliked items per liked pair (two-tower, and rating models on implicit
    /// feedback), and the two-tower batch size.
    pub negatives: usize,
    pub batch_size: usize,
}

impl RecommendConfig {
    /// The defaults of `model` on explicit feedback. MF's are Surprise's `SVD` (100
    /// factors, 20 epochs, lr 0.005, reg 0.02), SVD++'s Surprise's `SVDpp`; BPMF's are the
    /// paper's with 10 factors and 100 sweeps.
    pub fn new(model: ModelKind) -> RecommendConfig {
        Self::for_feedback(model, false)
    }

    /// The defaults of `model`, with `implicit` set for a rating model trained on liked
    /// pairs (whose SGD models then take larger steps: targets are 0 or 1). Tuned on a
    /// leave-10-out split of MovieLens 100K.
    pub fn for_feedback(model: ModelKind, implicit: bool) -> RecommendConfig {
        let config = Self::explicit_defaults(model);
        match (implicit, model) {
            (false, _) => config,
            (true, ModelKind::Mf | ModelKind::Svdpp) => RecommendConfig {
                implicit,
                factors: 64,
                epochs: 30,
                lr: 0.02,
                reg: 0.02,
                ..config
            },
            (true, ModelKind::Als) => RecommendConfig {
                implicit,
                factors: 50,
                reg: 30.0,
                ..config
            },
            (true, _) => RecommendConfig { implicit, ..config },
        }
    }

    fn explicit_defaults(model: ModelKind) -> RecommendConfig {
        let base = RecommendConfig {
            model,
            factors: 100,
            epochs: 20,
            lr: 0.005,
            lr_decay: 1.0,
            reg: 0.02,
            init_std: 0.1,
            seed: 0,
            positive_min: 4.0,
            implicit: false,
            confidence: 5.0,
            negatives: 4,
            batch_size: 256,
        };
        match model {
            ModelKind::Mf => base,
            ModelKind::Svdpp => RecommendConfig {
                factors: 20,
                lr: 0.007,
                ..base
            },
            ModelKind::Als => RecommendConfig {
                factors: 20,
                epochs: 15,
                reg: 0.1,
                ..base
            },
            ModelKind::Bpmf => RecommendConfig {
                factors: 10,
                epochs: 100,
                ..base
            },
            ModelKind::Bpr => RecommendConfig {
                factors: 64,
                epochs: 30,
                lr: 0.05,
                reg: 0.01,
                ..base
            },
            // WARP's rank weights reach ln(items) ≈ 7: a smaller, decaying step (LightFM
            // gets the same effect from Adagrad).
            ModelKind::Warp => RecommendConfig {
                factors: 64,
                epochs: 40,
                lr: 0.002,
                lr_decay: 0.95,
                reg: 0.01,
                ..base
            },
            ModelKind::TwoTower => RecommendConfig {
                factors: 32,
                epochs: 10,
                lr: 0.001,
                reg: 0.0,
                ..base
            },
        }
    }

    /// Whether a rating model trains on `data`'s liked pairs rather than its ratings.
    pub fn trains_implicitly(&self, data: &Interactions) -> bool {
        self.model.predicts_ratings() && (self.implicit || !data.explicit)
    }

    /// Every setting in its range.
    pub fn check(&self) -> Result<()> {
        let bad = |m: String| Err(Error::invalid(m));
        if !(1..=4096).contains(&self.factors) {
            return bad(format!(
                "--factors must be in 1..=4096, got {}",
                self.factors
            ));
        }
        if !(1..=100_000).contains(&self.epochs) {
            return bad(format!(
                "--epochs must be in 1..=100000, got {}",
                self.epochs
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr <= 10.0) {
            return bad(format!("--lr must be in (0, 10], got {}", self.lr));
        }
        if !(self.lr_decay.is_finite() && self.lr_decay > 0.0 && self.lr_decay <= 1.0) {
            return bad(format!(
                "--lr-decay must be in (0, 1], got {}",
                self.lr_decay
            ));
        }
        if !(self.reg.is_finite() && (0.0..=100.0).contains(&self.reg)) {
            return bad(format!("--reg must be in [0, 100], got {}", self.reg));
        }
        if !(self.init_std.is_finite() && (0.0..=10.0).contains(&self.init_std)) {
            return bad(format!(
                "--init-std must be in [0, 10], got {}",
                self.init_std
            ));
        }
        if !self.positive_min.is_finite() {
            return bad(format!(
                "--positive-min must be a number, got {}",
                self.positive_min
            ));
        }
        if !(1..=1000).contains(&self.negatives) || !(1..=1 << 20).contains(&self.batch_size) {
            return bad(format!(
                "--negatives must be in 1..=1000 and --batch-size in 1..={}, got {} and {}",
                1 << 20,
                self.negatives,
                self.batch_size
            ));
        }
        if !(self.confidence.is_finite() && (0.0..=1e6).contains(&self.confidence)) {
            return bad(format!(
                "--confidence must be in [0, 1e6], got {}",
                self.confidence
            ));
        }
        if self.model == ModelKind::Als && self.reg == 0.0 {
            return bad("ALS needs --reg above 0 (its systems are singular without it)".into());
        }
        Ok(())
    }
}

/// Trains `config.model` on `data`, with the side tables where the model uses them (the
/// two-tower model; every model takes titles from the item table).
pub fn train(
    data: &Interactions,
    user_table: Option<&SideFeatures>,
    item_table: Option<&SideFeatures>,
    config: &RecommendConfig,
) -> Result<Recommender> {
    config.check()?;
    if data.is_empty() {
        return Err(Error::data(&data.path, "has no interactions to train on"));
    }
    let mut rng = Rng::seed(config.seed);
    // The two-tower model also places users and items known only from their tables.
    let mut users = data.users.clone();
    let mut items = data.items.clone();
    if config.model == ModelKind::TwoTower {
        for id in user_table.iter().flat_map(|t| &t.ids) {
            users.intern(id);
        }
        for id in item_table.iter().flat_map(|t| &t.ids) {
            items.intern(id);
        }
    }
    let model = match config.model {
        ModelKind::Mf => train_mf(data, config, &mut rng)?,
        ModelKind::Svdpp => train_svdpp(data, config, &mut rng)?,
        ModelKind::Als => train_als(data, config, &mut rng)?,
        ModelKind::Bpmf => train_bpmf(data, config, &mut rng)?,
        ModelKind::Bpr | ModelKind::Warp => train_pairwise(data, config, &mut rng)?,
        ModelKind::TwoTower => {
            let user_side = Side::new("user", &users, user_table);
            let item_side = Side::new("item", &items, item_table);
            train_two_tower(data, &user_side, &item_side, config, &mut rng)?
        }
    };
    let pad = |mut v: Vec<f32>, n: usize| {
        v.resize(n, 0.0);
        v
    };
    let mut popularity = baseline::popularity(data, config.positive_min);
    popularity.item_bias = pad(popularity.item_bias, items.len());
    popularity.user_bias = pad(popularity.user_bias, users.len());
    let mut biases = baseline::biases(data);
    biases.item_bias = pad(biases.item_bias, items.len());
    biases.user_bias = pad(biases.user_bias, users.len());
    let mut seen = vec![Vec::new(); users.len()];
    for r in 0..data.len() {
        seen[data.user[r] as usize].push((data.item[r], data.rating[r]));
    }
    for s in &mut seen {
        s.sort_by_key(|&(i, _)| i);
    }
    let titles = item_table.and_then(|t| {
        let titles = t.titles.as_ref()?;
        let by_id: std::collections::HashMap<&str, &str> = t
            .ids
            .iter()
            .zip(titles)
            .map(|(id, title)| (id.as_str(), title.as_str()))
            .collect();
        Some(
            items
                .names()
                .iter()
                .map(|id| by_id.get(id.as_str()).unwrap_or(&"").to_string())
                .collect(),
        )
    });
    Ok(Recommender {
        config: config.clone(),
        trained_users: data.users.len(),
        trained_items: data.items.len(),
        users,
        items,
        titles,
        model,
        popularity,
        biases,
        seen,
        rating_bounds: data.rating_bounds(),
        user_features: user_table.map(|t| t.describe()),
        item_features: item_table.map(|t| t.describe()),
    })
}
