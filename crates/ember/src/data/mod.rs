//! Data: file loaders (IDX, images, CSV and Parquet tables), encoders (one-hot), scalers and the MNIST layout.

pub mod dataset;
mod encode;
pub mod idx;
pub mod image;
pub mod image_folder;
pub mod image_survey;
pub mod interactions;
mod mnist;
pub mod parquet;
pub mod preprocess;
pub mod rows;
pub mod scaler;
pub mod side_features;
pub mod split;
pub mod table;
pub mod tfidf;

pub use encode::to_categorical;
pub use idx::read_idx;
pub use mnist::{IdxFiles, Mnist};
pub use scaler::StandardScaler;
