//! Recommendation: ratings and interactions to personalised top-k lists. Explicit-feedback
//! models (biased MF, SVD++, ALS) predict ratings; implicit ones (BPR, WARP, a two-tower
//! network of the functional API) rank; every one is saved in the same biases-and-factors
//! form and reported beside popularity and bias baselines.

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
