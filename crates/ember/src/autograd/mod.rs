//! Reverse-mode automatic differentiation: the tape, its ops, and the gradient checker.

pub mod gradcheck;
pub(crate) mod ops;
mod tape;

pub use ops::conv::{force_conv_algorithm, ConvAlgorithm};
pub use ops::elementwise::{BinaryOp, UnaryOp};
pub use ops::loss::LossOp;
pub use ops::normalization::NormStats;
pub use ops::warp::{Affine, FillMode};
pub use tape::{Tape, Var};
