//! `LayerConfig`: a layer as data, the form it takes in model files.

use serde::{Deserialize, Serialize};

use super::augment::FlipMode;
use super::{
    ActivationLayer, Augment, AveragePooling2D, BatchNormalization, Conv2D, Dense, Dropout,
    Embedding, Flatten, GlobalAveragePooling2D, Layer, LayerNormalization, MaxPooling2D,
    MultiHeadAttention, Padding, Reshape, Size2, TransformerEncoder,
};
use crate::autograd::FillMode;
use crate::error::{Error, Result};
use crate::tensor::activation::Activation;

/// A weight penalty, as Keras's `regularizers.L2(l2)`: l2 · Σ w² added to the loss.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Regularizer {
    pub l2: f32,
}

/// One layer of a model file, tagged by `type`:
///
/// ```toml
/// [[layers]]
/// type = "dense"
/// units = 64
/// activation = "relu"
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerConfig {
    Dense {
        units: usize,
        #[serde(default)]
        activation: Activation,
        #[serde(default = "yes")]
        use_bias: bool,
        /// `kernel_regularizer = { l2 = 0.0001 }`: factor · Σ kernel² added to the loss.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kernel_regularizer: Option<Regularizer>,
    },
    Activation {
        activation: Activation,
    },
    #[serde(rename = "conv2d")]
    Conv2d {
        filters: usize,
        kernel_size: Size2,
        #[serde(default = "one_by_one")]
        strides: Size2,
        #[serde(default)]
        padding: Padding,
        #[serde(default)]
        activation: Activation,
        #[serde(default = "yes")]
        use_bias: bool,
    },
    #[serde(rename = "max_pooling2d")]
    MaxPooling2d {
        #[serde(default = "two_by_two")]
        pool_size: Size2,
        /// Default: the pool size.
        #[serde(default)]
        strides: Option<Size2>,
        #[serde(default)]
        padding: Padding,
    },
    #[serde(rename = "average_pooling2d")]
    AveragePooling2d {
        #[serde(default = "two_by_two")]
        pool_size: Size2,
        /// Default: the pool size.
        #[serde(default)]
        strides: Option<Size2>,
        #[serde(default)]
        padding: Padding,
    },
    #[serde(rename = "global_average_pooling2d")]
    GlobalAveragePooling2d {},
    Flatten {},
    Reshape {
        target_shape: Vec<usize>,
    },
    Dropout {
        rate: f32,
    },
    RandomFlip {
        #[serde(default)]
        mode: FlipMode,
    },
    RandomTranslation {
        height_factor: f32,
        width_factor: f32,
        #[serde(default)]
        fill_mode: FillMode,
    },
    RandomRotation {
        factor: f32,
        #[serde(default)]
        fill_mode: FillMode,
    },
    Embedding {
        input_dim: usize,
        output_dim: usize,
    },
    LayerNormalization {
        #[serde(default = "batch_norm_epsilon")]
        epsilon: f32,
        #[serde(default = "yes")]
        center: bool,
        #[serde(default = "yes")]
        scale: bool,
    },
    MultiHeadAttention {
        num_heads: usize,
        key_dim: usize,
    },
    TransformerEncoder {
        num_heads: usize,
        intermediate_dim: usize,
        #[serde(default = "bert_epsilon")]
        epsilon: f32,
        #[serde(default = "bert_dropout")]
        dropout: f32,
    },
    BatchNormalization {
        #[serde(default = "batch_norm_momentum")]
        momentum: f32,
        #[serde(default = "batch_norm_epsilon")]
        epsilon: f32,
        #[serde(default = "yes")]
        center: bool,
        #[serde(default = "yes")]
        scale: bool,
    },
}

/// Checks an augmentation layer: (height, width, channels) images and factors in [0, 1].
fn image_layer(
    kind: &str,
    input: &[usize],
    factors: &[(&str, f32)],
) -> Result<(Vec<usize>, usize)> {
    for &(name, value) in factors {
        if !(0.0..=1.0).contains(&value) {
            return Err(Error::invalid(format!(
                "{kind} {name} must be in [0, 1], got {value}"
            )));
        }
    }
    match input {
        [h, w, c] if *h > 0 && *w > 0 && *c > 0 => Ok((input.to_vec(), 0)),
        _ => Err(Error::invalid(format!(
            "{kind} needs (height, width, channels) images, got samples of {input:?}"
        ))),
    }
}

fn bert_epsilon() -> f32 {
    1e-12
}

fn bert_dropout() -> f32 {
    0.1
}

/// Checks a layer on (sequence, features) samples and returns the features.
fn sequence_features(kind: &str, input: &[usize]) -> Result<usize> {
    match input {
        [s, f] if *s > 0 && *f > 0 => Ok(*f),
        _ => Err(Error::shape(
            "layer",
            format!("{kind} needs (sequence, features) samples, got {input:?}"),
        )),
    }
}

fn batch_norm_momentum() -> f32 {
    0.99
}

fn batch_norm_epsilon() -> f32 {
    1e-3
}

/// The element count of a shape from a file, or an error when it overflows.
fn checked(shape: &[usize]) -> Result<usize> {
    crate::tensor::checked_numel(shape)
        .ok_or_else(|| Error::invalid(format!("the shape {shape:?} is too large")))
}

fn one_by_one() -> Size2 {
    Size2::Square(1)
}

fn two_by_two() -> Size2 {
    Size2::Square(2)
}

fn yes() -> bool {
    true
}

impl LayerConfig {
    /// Output shape and parameter count for inputs of `input`, computed without building
    /// (so a model file can be checked before any memory is committed to it).
    pub fn shape_and_params(&self, input: &[usize]) -> Result<(Vec<usize>, usize)> {
        match *self {
            LayerConfig::Dense {
                units, use_bias, ..
            } => {
                let inputs = *input
                    .last()
                    .ok_or_else(|| Error::shape("Dense", "needs inputs with a last axis"))?;
                let params = inputs
                    .checked_mul(units)
                    .and_then(|w| w.checked_add(if use_bias { units } else { 0 }))
                    .ok_or_else(|| {
                        Error::invalid(format!("Dense({units}) on {inputs} inputs is too large"))
                    })?;
                let mut output = input.to_vec();
                *output.last_mut().expect("checked above") = units;
                Ok((output, params))
            }
            LayerConfig::Activation { .. } => Ok((input.to_vec(), 0)),
            LayerConfig::Dropout { rate } => {
                if !(0.0..1.0).contains(&rate) {
                    return Err(Error::invalid(format!(
                        "Dropout rate must be in [0, 1), got {rate}"
                    )));
                }
                Ok((input.to_vec(), 0))
            }
            LayerConfig::Conv2d { .. } => {
                self.conv().expect("a conv config").shape_and_params(input)
            }
            LayerConfig::MaxPooling2d { .. } => {
                Ok((self.pool().expect("a pool config").output_shape(input)?, 0))
            }
            LayerConfig::AveragePooling2d {
                pool_size,
                strides,
                padding,
            } => {
                let pool = LayerConfig::MaxPooling2d {
                    pool_size,
                    strides,
                    padding,
                };
                pool.shape_and_params(input)
            }
            LayerConfig::GlobalAveragePooling2d {} => match input {
                [_, _, c] => Ok((vec![*c], 0)),
                _ => Err(Error::shape(
                    "GlobalAveragePooling2D",
                    format!("needs (height, width, channels) samples, got {input:?}"),
                )),
            },
            LayerConfig::RandomFlip { .. } => image_layer(self.kind_name(), input, &[]),
            LayerConfig::RandomTranslation {
                height_factor,
                width_factor,
                ..
            } => image_layer(
                self.kind_name(),
                input,
                &[
                    ("height_factor", height_factor),
                    ("width_factor", width_factor),
                ],
            ),
            LayerConfig::RandomRotation { factor, .. } => {
                image_layer(self.kind_name(), input, &[("factor", factor)])
            }
            LayerConfig::Embedding {
                input_dim,
                output_dim,
            } => {
                if input_dim == 0 || output_dim == 0 {
                    return Err(Error::invalid(format!(
                        "Embedding needs positive input_dim and output_dim, got {input_dim} and {output_dim}"
                    )));
                }
                let params = input_dim.checked_mul(output_dim).ok_or_else(|| {
                    Error::invalid(format!("Embedding({input_dim}, {output_dim}) is too large"))
                })?;
                let mut output = input.to_vec();
                output.push(output_dim);
                checked(&output)?;
                Ok((output, params))
            }
            LayerConfig::LayerNormalization {
                epsilon,
                center,
                scale,
            } => {
                if !(epsilon.is_finite() && epsilon > 0.0) {
                    return Err(Error::invalid(format!(
                        "LayerNormalization epsilon must be a positive number, got {epsilon}"
                    )));
                }
                let Some(&features) = input.last().filter(|&&c| c > 0) else {
                    return Err(Error::shape(
                        "LayerNormalization",
                        format!("needs inputs with a non-empty last axis, got {input:?}"),
                    ));
                };
                let vectors = usize::from(center) + usize::from(scale);
                Ok((input.to_vec(), vectors * features))
            }
            LayerConfig::MultiHeadAttention { num_heads, key_dim } => {
                let features = sequence_features("MultiHeadAttention", input)?;
                if num_heads == 0 || key_dim == 0 {
                    return Err(Error::invalid(
                        "MultiHeadAttention needs positive num_heads and key_dim",
                    ));
                }
                let inner = num_heads
                    .checked_mul(key_dim)
                    .ok_or_else(|| Error::invalid("MultiHeadAttention is too large"))?;
                // Three projections in (kernel + bias), one out.
                let params = (|| {
                    let inward = features.checked_mul(inner)?.checked_add(inner)?;
                    let outward = inner.checked_mul(features)?.checked_add(features)?;
                    inward.checked_mul(3)?.checked_add(outward)
                })()
                .ok_or_else(|| Error::invalid("MultiHeadAttention is too large"))?;
                Ok((input.to_vec(), params))
            }
            LayerConfig::TransformerEncoder {
                num_heads,
                intermediate_dim,
                epsilon,
                dropout,
            } => {
                let features = sequence_features("TransformerEncoder", input)?;
                if num_heads == 0 || features % num_heads != 0 {
                    return Err(Error::invalid(format!(
                        "TransformerEncoder: {features} features do not split into {num_heads} heads"
                    )));
                }
                if intermediate_dim == 0 || !(epsilon.is_finite() && epsilon > 0.0) {
                    return Err(Error::invalid(
                        "TransformerEncoder needs a positive intermediate_dim and epsilon",
                    ));
                }
                if !(0.0..1.0).contains(&dropout) {
                    return Err(Error::invalid(format!(
                        "TransformerEncoder dropout must be in [0, 1), got {dropout}"
                    )));
                }
                let attention = LayerConfig::MultiHeadAttention {
                    num_heads,
                    key_dim: features / num_heads,
                }
                .shape_and_params(input)?
                .1;
                let params = (|| {
                    let ffn = features
                        .checked_mul(intermediate_dim)?
                        .checked_add(intermediate_dim)?
                        .checked_add(intermediate_dim.checked_mul(features)?)?
                        .checked_add(features)?;
                    attention.checked_add(ffn)?.checked_add(4 * features)
                })()
                .ok_or_else(|| Error::invalid("TransformerEncoder is too large"))?;
                Ok((input.to_vec(), params))
            }
            LayerConfig::BatchNormalization {
                momentum,
                epsilon,
                center,
                scale,
            } => {
                if !(0.0..=1.0).contains(&momentum) {
                    return Err(Error::invalid(format!(
                        "BatchNormalization momentum must be in [0, 1], got {momentum}"
                    )));
                }
                if !(epsilon.is_finite() && epsilon > 0.0) {
                    return Err(Error::invalid(format!(
                        "BatchNormalization epsilon must be a positive number, got {epsilon}"
                    )));
                }
                let Some(&channels) = input.last().filter(|&&c| c > 0) else {
                    return Err(Error::shape(
                        "BatchNormalization",
                        format!("needs inputs with a non-empty last axis, got {input:?}"),
                    ));
                };
                // gamma and beta (when learned), moving mean and moving variance.
                let vectors = 2 + usize::from(center) + usize::from(scale);
                Ok((input.to_vec(), vectors * channels))
            }
            LayerConfig::Flatten {} => Ok((vec![checked(input)?], 0)),
            LayerConfig::Reshape { ref target_shape } => {
                if target_shape.is_empty() || checked(input)? != checked(target_shape)? {
                    return Err(Error::shape(
                        "Reshape",
                        format!("cannot reshape samples of {input:?} into {target_shape:?}"),
                    ));
                }
                Ok((target_shape.clone(), 0))
            }
        }
    }

    /// The Keras class name of the layer this configures.
    pub fn kind_name(&self) -> &'static str {
        match self {
            LayerConfig::RandomFlip { .. } => "RandomFlip",
            LayerConfig::RandomTranslation { .. } => "RandomTranslation",
            LayerConfig::RandomRotation { .. } => "RandomRotation",
            other => other.to_layer().kind(),
        }
    }

    /// A fresh, unbuilt layer.
    pub fn to_layer(&self) -> Box<dyn Layer> {
        match *self {
            LayerConfig::Dense {
                units,
                activation,
                use_bias,
                kernel_regularizer,
            } => {
                let dense = Dense::new(units).activation(activation).use_bias(use_bias);
                Box::new(match kernel_regularizer {
                    Some(Regularizer { l2 }) => dense.kernel_l2(l2),
                    None => dense,
                })
            }
            LayerConfig::Activation { activation } => Box::new(ActivationLayer::new(activation)),
            LayerConfig::Conv2d { .. } => Box::new(self.conv().expect("a conv config")),
            LayerConfig::MaxPooling2d { .. } => Box::new(self.pool().expect("a pool config")),
            LayerConfig::AveragePooling2d {
                pool_size,
                strides,
                padding,
            } => Box::new(
                AveragePooling2D::new(pool_size.dims())
                    .strides(strides.unwrap_or(pool_size).dims())
                    .padding(padding),
            ),
            LayerConfig::GlobalAveragePooling2d {} => Box::new(GlobalAveragePooling2D),
            LayerConfig::Flatten {} => Box::new(Flatten),
            LayerConfig::Reshape { ref target_shape } => Box::new(Reshape::new(target_shape)),
            LayerConfig::Dropout { rate } => Box::new(Dropout::new(rate)),
            LayerConfig::RandomFlip { mode } => Box::new(Augment::flip(mode)),
            LayerConfig::RandomTranslation {
                height_factor,
                width_factor,
                fill_mode,
            } => Box::new(Augment::translation(height_factor, width_factor).fill_mode(fill_mode)),
            LayerConfig::RandomRotation { factor, fill_mode } => {
                Box::new(Augment::rotation(factor).fill_mode(fill_mode))
            }
            LayerConfig::Embedding {
                input_dim,
                output_dim,
            } => Box::new(Embedding::new(input_dim, output_dim)),
            LayerConfig::LayerNormalization {
                epsilon,
                center,
                scale,
            } => Box::new(
                LayerNormalization::new()
                    .epsilon(epsilon)
                    .center(center)
                    .scale(scale),
            ),
            LayerConfig::MultiHeadAttention { num_heads, key_dim } => {
                Box::new(MultiHeadAttention::new(num_heads, key_dim))
            }
            LayerConfig::TransformerEncoder {
                num_heads,
                intermediate_dim,
                epsilon,
                dropout,
            } => Box::new(
                TransformerEncoder::new(num_heads, intermediate_dim)
                    .epsilon(epsilon)
                    .dropout(dropout),
            ),
            LayerConfig::BatchNormalization {
                momentum,
                epsilon,
                center,
                scale,
            } => Box::new(
                BatchNormalization::new()
                    .momentum(momentum)
                    .epsilon(epsilon)
                    .center(center)
                    .scale(scale),
            ),
        }
    }

    fn conv(&self) -> Option<Conv2D> {
        match *self {
            LayerConfig::Conv2d {
                filters,
                kernel_size,
                strides,
                padding,
                activation,
                use_bias,
            } => Some(
                Conv2D::new(filters, kernel_size.dims())
                    .strides(strides.dims())
                    .padding(padding)
                    .activation(activation)
                    .use_bias(use_bias),
            ),
            _ => None,
        }
    }

    fn pool(&self) -> Option<MaxPooling2D> {
        match *self {
            LayerConfig::MaxPooling2d {
                pool_size,
                strides,
                padding,
            } => Some(
                MaxPooling2D::new(pool_size.dims())
                    .strides(strides.unwrap_or(pool_size).dims())
                    .padding(padding),
            ),
            _ => None,
        }
    }
}
