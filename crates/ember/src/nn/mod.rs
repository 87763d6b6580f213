//! Layers: each a plain struct with `build` (create parameters for an input shape) and
//! `forward`; one layer per file, with its config, output shape and parameter count.

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
mod merge;
mod pooling;
mod reshape;
pub(crate) mod transformer;

pub use activation::{ActivationConfig, ActivationLayer};
pub use augment::{
    Augment, FlipMode, RandomFlipConfig, RandomRotationConfig, RandomTranslationConfig,
};
pub use batch_normalization::{BatchNormalization, BatchNormalizationConfig};
pub use config::LayerConfig;
pub use conv2d::{Conv2D, Conv2DConfig, Padding, Size2};
pub use dense::{Dense, DenseConfig, Regularizer};
pub use dropout::{Dropout, DropoutConfig};
pub use embedding::{Embedding, EmbeddingConfig};
pub use flatten::{Flatten, FlattenConfig};
pub use layer_normalization::{LayerNormalization, LayerNormalizationConfig};
pub use merge::Merge;
pub use pooling::{
    AveragePooling2D, GlobalAveragePooling2D, GlobalAveragePooling2DConfig, MaxPooling2D,
    PoolingConfig,
};
pub use reshape::{Reshape, ReshapeConfig};
pub use transformer::{
    MultiHeadAttention, MultiHeadAttentionConfig, TransformerEncoder, TransformerEncoderConfig,
};

use crate::autograd::{Tape, Var};
use crate::error::{Error, Result};
use crate::tensor::activation::Activation;
use crate::tensor::random::Rng;
use crate::tensor::Tensor;

/// One of a layer's weights: its Keras name ("kernel"), its value, and whether the optimizer
/// trains it (a moving average is a weight it never touches).
#[derive(Clone, Copy, Debug)]
pub struct WeightRef<'a> {
    pub name: &'static str,
    pub value: &'a Tensor,
    pub trainable: bool,
}

/// A network layer: its configuration and, once built, its own weights. Shapes exclude the
/// batch axis.
///
/// A layer runs two ways: [`Layer::forward`] computes its output for a batch directly (no
/// tape, nothing recorded: inference), and [`Layer::record`] records the same computation on
/// a training step's tape, with the layer's weights moved onto it by the caller.
///
/// ```
/// use ember::prelude::*;
/// use ember::nn::Layer;
/// let mut dense = Dense::new(2).activation(Activation::Relu);
/// dense.build(&[3], &mut ember::tensor::random::Rng::seed(0)).unwrap();
/// let y = dense.forward(&Tensor::zeros(&[4, 3])).unwrap();
/// assert_eq!(y.shape(), &[4, 2]);
/// ```
pub trait Layer: Send + Sync {
    /// The Keras class name ("Dense").
    fn kind(&self) -> &'static str;

    /// Creates the layer's weights for inputs of `input_shape`, and returns the output shape.
    fn build(&mut self, input_shape: &[usize], rng: &mut Rng) -> Result<Vec<usize>>;

    /// The layer's output for a batch `x`, at inference (dropout and augmentation do nothing).
    fn forward(&self, x: &Tensor) -> Result<Tensor>;

    /// Like [`Layer::forward`], consuming `x`: layers that only reshape or pass their input on
    /// reuse its buffer instead of copying it.
    fn forward_owned(&self, x: Tensor) -> Result<Tensor> {
        self.forward(&x)
    }

    /// The output before [`Layer::final_activation`], at inference.
    fn forward_logits(&self, x: &Tensor) -> Result<Tensor> {
        self.forward(x)
    }

    /// Records the layer on `tape` for a batch `x`; `weights` are this layer's weights on the
    /// tape, in the order of [`Layer::weights`].
    fn record(&self, tape: &mut Tape, weights: &[Var], x: Var, training: bool) -> Result<Var>;

    /// Like [`Layer::record`], stopping before [`Layer::final_activation`].
    fn record_logits(
        &self,
        tape: &mut Tape,
        weights: &[Var],
        x: Var,
        training: bool,
    ) -> Result<Var> {
        self.record(tape, weights, x, training)
    }

    /// The activation the layer ends with, which a loss may fuse (softmax or sigmoid
    /// with a cross-entropy).
    fn final_activation(&self) -> Activation {
        Activation::Linear
    }

    /// The layer's weights, trainable and not, in a fixed order (empty before `build`).
    fn weights(&self) -> Vec<WeightRef<'_>> {
        Vec::new()
    }

    /// The same weights, mutable, in the same order.
    fn weights_mut(&mut self) -> Vec<&mut Tensor> {
        Vec::new()
    }

    /// Weights whose squares are added to the training loss, as (index in
    /// [`Layer::weights`], factor): Keras's `kernel_regularizer=l2(factor)`, a penalty of
    /// factor · Σ w².
    fn l2_penalties(&self) -> Vec<(usize, f32)> {
        Vec::new()
    }

    /// The configuration that rebuilds this layer (for model files).
    fn config(&self) -> LayerConfig;
}

/// A built weight, or an error naming the layer that was used before `build`.
pub(crate) fn built<'a>(weight: &'a Option<Tensor>, layer: &str) -> Result<&'a Tensor> {
    weight
        .as_ref()
        .ok_or_else(|| Error::invalid(format!("{layer} layer used before it was built")))
}

/// A weight of a layer, when built.
pub(crate) fn weight_ref<'a>(
    name: &'static str,
    value: &'a Option<Tensor>,
    trainable: bool,
) -> Option<WeightRef<'a>> {
    value.as_ref().map(|value| WeightRef {
        name,
        value,
        trainable,
    })
}

/// The tape variable of weight `i`, or an error when the caller passed too few.
pub(crate) fn weight_var(weights: &[Var], i: usize, layer: &str) -> Result<Var> {
    weights.get(i).copied().ok_or_else(|| {
        Error::invalid(format!(
            "{layer} needs weight {i} on the tape, got {} (was it built?)",
            weights.len()
        ))
    })
}
