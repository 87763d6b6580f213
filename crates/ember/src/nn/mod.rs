//! Layers: each a plain struct with `build` (create parameters for an input shape) and one
//! forward, `call`; one layer per file, with its config, output shape and parameter count.

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

use crate::autograd::{Pass, Tape, Value, Var};
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
/// A layer computes its output once, in [`Layer::call`], through the ops of a
/// [`Pass`]: the same code runs eagerly at inference and records itself on a tape in
/// training. [`Layer::forward`] is the eager call on one tensor.
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

    /// The layer's output for a batch `x` (Keras's `call`): its one forward, written against
    /// `pass`'s ops, which compute at once or record on a tape. Its weights come from
    /// [`Pass::weight`]; [`Pass::training`] says whether dropout and the like act;
    /// [`Pass::activation`] whether to stop before [`Layer::final_activation`]. `mask`, for
    /// layers that [take one](Layer::takes_mask), is a padding mask (batch, sequence) of 1
    /// for tokens and 0 for padding.
    fn call(&self, pass: &mut Pass, x: Value, mask: Option<Value>) -> Result<Value<'static>>;

    /// A training call made on other processes only (data-parallel training: this one has
    /// no samples of the batch). A layer that draws random numbers at each training call
    /// (dropout, augmentation) moves its generator on as the call would have, so that its
    /// later draws stay the other processes'. Nothing to do for the others.
    fn skip_call(&self) {}

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

    /// The 2-D pooling this layer is (max or average), so that a convolution whose output it
    /// alone reads may compute it in the same pass; None for every other layer.
    fn pooling(&self) -> Option<crate::autograd::Pooling> {
        None
    }

    /// Whether the layer takes a padding mask as a second input (Keras's `padding_mask`,
    /// `attention_mask`): see [`takes_mask`].
    fn takes_mask(&self) -> bool {
        takes_mask(self.kind())
    }

    /// The layer at inference on one batch: [`Layer::call`] in an eager pass.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.call(&mut Pass::eager(), Value::from(x), None)?
            .into_tensor()
    }
}

/// Records `layer`'s call on `tape` for an input `x` (and a padding mask), with `weights`
/// its weights already on the tape in the order of [`Layer::weights`]: one layer's
/// training-mode forward outside a model, for gradient checks.
pub fn call_on_tape(
    layer: &dyn Layer,
    tape: &mut Tape,
    weights: &[Var],
    x: Var,
    mask: Option<Var>,
    training: bool,
) -> Result<Var> {
    let weights = [weights.to_vec()];
    let mut pass = Pass::record(tape, &weights, training);
    layer
        .call(&mut pass, Value::Var(x), mask.map(Value::Var))?
        .var()
}

/// The most weights one layer, or one model file, may declare: 2^30 (4 GiB of f32). A
/// larger request (`units = 1e9`, an input of 1e12 values) is an error before anything is
/// allocated, not an aborted process.
pub const MAX_PARAMS: usize = 1 << 30;

/// The most values one sample may have at a layer's output: 2^28 (1 GiB of f32).
pub const MAX_SAMPLE: usize = 1 << 28;

/// Checks a layer's declared size against [`MAX_PARAMS`] and [`MAX_SAMPLE`].
pub fn check_size(kind: &str, params: usize, output: &[usize]) -> Result<()> {
    if params > MAX_PARAMS {
        return Err(Error::invalid(format!(
            "{kind} would have {params} weights, more than Ember's limit of {MAX_PARAMS}"
        )));
    }
    let values = output
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d.max(1)));
    match values {
        Some(n) if n <= MAX_SAMPLE => Ok(()),
        _ => Err(Error::invalid(format!(
            "{kind} would output {} values per sample, more than Ember's limit of {MAX_SAMPLE}",
            shape_text(output)
        ))),
    }
}

/// Builds `layer` for inputs of `input` once its declared size has passed [`check_size`].
pub(crate) fn build_checked(
    layer: &mut dyn Layer,
    input: &[usize],
    rng: &mut Rng,
) -> Result<Vec<usize>> {
    let (output, params) = layer.config().shape_and_params(input)?;
    check_size(layer.kind(), params, &output)?;
    layer.build(input, rng)
}

/// Keras's `None` in a sample shape: a dimension of any size, fixed only by each batch (a
/// sequence's length: `graph.input("token_ids", &[ANY])`).
pub const ANY: usize = 0;

/// Whether layers of `kind` accept a sample shape with [`ANY`] dimensions: those that work
/// position by position on the last axis, or attend over a sequence of any length. Layers
/// that need every size (flatten, reshape, convolutions, pooling, augmentation, batch
/// normalization) do not.
pub fn any_length(kind: &str) -> bool {
    matches!(
        kind,
        "Dense"
            | "Activation"
            | "Dropout"
            | "Embedding"
            | "LayerNormalization"
            | "MultiHeadAttention"
            | "TransformerEncoder"
    )
}

/// Whether layers of `kind` take a padding mask as a second input.
pub fn takes_mask(kind: &str) -> bool {
    matches!(kind, "MultiHeadAttention" | "TransformerEncoder")
}

/// Checks that a layer of `kind` may be called on samples of `shape`, and with a padding
/// mask of samples `mask` if one is given: the mask is the input's shape without its last
/// (features) axis.
pub fn check_call(kind: &'static str, shape: &[usize], mask: Option<&[usize]>) -> Result<()> {
    if shape.contains(&ANY) && !any_length(kind) {
        return Err(Error::shape(
            kind,
            format!(
                "needs samples of fixed sizes, got {} (a dimension of any length)",
                shape_text(shape)
            ),
        ));
    }
    if let Some(mask) = mask {
        if !takes_mask(kind) {
            return Err(no_mask(kind));
        }
        if shape.split_last().map(|(_, seq)| seq) != Some(mask) {
            return Err(Error::shape(
                kind,
                format!(
                    "a padding mask for samples {} has samples {}, got {}",
                    shape_text(shape),
                    shape_text(&shape[..shape.len().saturating_sub(1)]),
                    shape_text(mask)
                ),
            ));
        }
    }
    Ok(())
}

/// A sample shape as Keras prints it, `None` for [`ANY`]: "(None, 384)".
pub fn shape_text(shape: &[usize]) -> String {
    let dims: Vec<String> = shape
        .iter()
        .map(|&d| match d {
            ANY => "None".to_string(),
            d => d.to_string(),
        })
        .collect();
    format!("({})", dims.join(", "))
}

pub(crate) fn no_mask(kind: &str) -> Error {
    Error::invalid(format!(
        "{kind} takes one input, not a padding mask (only MultiHeadAttention and \
         TransformerEncoder take one)"
    ))
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
