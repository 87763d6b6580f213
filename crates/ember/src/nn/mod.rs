//! Layers: each a plain struct with `build` (create parameters for an input shape) and
//! `forward`; one layer per file.

mod activation;
mod augment;
mod batch_normalization;
mod config;
#[cfg(test)]
mod conformance;
mod conv2d;
mod dense;
mod dropout;
mod embedding;
mod flatten;
pub mod init;
mod layer_normalization;
mod pooling;
mod reshape;
pub(crate) mod transformer;

pub use activation::ActivationLayer;
pub use augment::{Augment, FlipMode};
pub use batch_normalization::BatchNormalization;
pub use config::{LayerConfig, Regularizer};
pub use conv2d::{Conv2D, Padding, Size2};
pub use dense::Dense;
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use flatten::Flatten;
pub use layer_normalization::LayerNormalization;
pub use pooling::{AveragePooling2D, GlobalAveragePooling2D, MaxPooling2D};
pub use reshape::Reshape;
pub use transformer::{MultiHeadAttention, TransformerEncoder};

use crate::autograd::{Tape, Var};
use crate::error::Result;
use crate::tensor::activation::Activation;
use crate::tensor::random::Rng;

/// A network layer. Shapes passed to `build` exclude the batch axis.
pub trait Layer: Send {
    /// The Keras class name ("Dense").
    fn kind(&self) -> &'static str;

    /// Creates the layer's parameters on `tape` for inputs of `input_shape`, and returns the
    /// output shape.
    fn build(
        &mut self,
        tape: &mut Tape,
        input_shape: &[usize],
        rng: &mut Rng,
    ) -> Result<Vec<usize>>;

    /// Computes the layer's output for a batch `x`.
    fn forward(&self, tape: &mut Tape, x: Var, training: bool) -> Result<Var>;

    /// The activation the layer ends with, which a loss may fuse (softmax or sigmoid
    /// with a cross-entropy).
    fn final_activation(&self) -> Activation {
        Activation::Linear
    }

    /// The output before [`Layer::final_activation`].
    fn forward_logits(&self, tape: &mut Tape, x: Var, training: bool) -> Result<Var> {
        self.forward(tape, x, training)
    }

    /// The layer's trainable parameters with their Keras names ("kernel", "bias").
    fn params(&self) -> Vec<(&'static str, Var)>;

    /// The layer's non-trainable variables ("moving_mean"), saved with the model but
    /// never touched by the optimizer.
    fn state(&self) -> Vec<(&'static str, Var)> {
        Vec::new()
    }

    /// Variables whose squares are added to the training loss, with their factors: Keras's
    /// `kernel_regularizer=l2(factor)`, a penalty of factor · Σ w².
    fn l2_penalties(&self) -> Vec<(Var, f32)> {
        Vec::new()
    }

    /// The configuration that rebuilds this layer (for model files).
    fn config(&self) -> LayerConfig;
}
