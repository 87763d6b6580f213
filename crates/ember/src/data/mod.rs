//! Data: file loaders (IDX), encoders (one-hot) and the MNIST layout.

mod encode;
pub mod idx;
mod mnist;

pub use encode::to_categorical;
pub use idx::read_idx;
pub use mnist::Mnist;
