//! Recommendation: ratings and interactions to personalised top-k lists. Explicit-feedback
//! models (biased MF, SVD++, ALS, BPMF) predict ratings; implicit ones (BPR, WARP, a
//! two-tower network of the functional API, and the rating models trained on liked pairs)
//! rank; every one is saved in the same biases-and-factors form and reported beside
//! popularity and bias baselines.
//!
//! ```
//! use std::path::Path;
//! use ember::data::interactions::{InteractionOptions, Interactions};
//! use ember::recommend::{self, ModelKind, RecommendConfig};
//!
//! // Two groups of users with two tastes; user d has seen only one item of their group's.
//! let ratings = "a,x,5\na,y,5\na,z,1\nb,x,5\nb,y,4\nb,w,1\n\
//!                c,z,5\nc,w,5\nc,x,1\nd,z,5\nd,y,1\n";
//! let data = Interactions::parse(ratings.as_bytes(), Path::new("ratings.csv"), &InteractionOptions::default()).unwrap();
//! let config = RecommendConfig { factors: 4, epochs: 300, lr: 0.05, ..RecommendConfig::new(ModelKind::Mf) };
//! let model = recommend::train(&data, None, None, &config).unwrap();
//! let top = model.top("d", 1, false).unwrap();
//! assert_eq!(top.items[0].item, "w"); // what c, who shares d's taste, liked; x and y d would not
//! assert!(top.fallback.is_none());
//! assert!(model.top("stranger", 1, false).unwrap().fallback.is_some());
//! ```

mod baseline;
mod bayesian;
pub mod evaluate;
mod factorization;
mod model;
mod pairwise;
mod positives;
mod store;
mod train;
mod two_tower;

pub use evaluate::{
    evaluate, k_folds, leave_n_out, Coverage, EvaluateOptions, Evaluation, RatingErrors,
};
pub use model::{top_k, Recommendation, Recommender, Scorer, TopList};
pub use train::{train, ModelKind, RecommendConfig};
