//! Reverse-mode automatic differentiation: the op API layers are written against (a pass,
//! eager or recording), the tape, its ops with their gradient rules, and the gradient checker.

pub mod gradcheck;
pub(crate) mod ops;
mod pass;
mod tape;

pub use ops::conv::{force_conv_algorithm, ConvAlgorithm, Pooling};
pub use ops::elementwise::{BinaryOp, UnaryOp};
pub use ops::loss::LossOp;
pub use ops::normalization::NormStats;
pub use ops::warp::{Affine, FillMode};
pub use pass::{Pass, Value};
pub use tape::{Tape, Var};
