//! `LayerConfig`: a layer as data in a model file, a tagged list of each layer's own config.

use serde::{Deserialize, Serialize};

use super::{
    ActivationConfig, ActivationLayer, Augment, AveragePooling2D, BatchNormalization,
    BatchNormalizationConfig, Conv2D, Conv2DConfig, Dense, DenseConfig, Dropout, DropoutConfig,
    Embedding, EmbeddingConfig, Flatten, FlattenConfig, GlobalAveragePooling2D,
    GlobalAveragePooling2DConfig, Layer, LayerNormalization, LayerNormalizationConfig,
    MaxPooling2D, MultiHeadAttention, MultiHeadAttentionConfig, PoolingConfig, RandomFlipConfig,
    RandomRotationConfig, RandomTranslationConfig, Reshape, ReshapeConfig, TransformerEncoder,
    TransformerEncoderConfig,
};
use crate::error::{Error, Result};

/// One layer of a model file, tagged by `type`; the other keys are the layer's config:
///
/// ```toml
/// [[layers]]
/// type = "dense"
/// units = 64
/// activation = "relu"
/// ```
///
/// Each config rejects keys it does not know.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LayerConfig {
    Dense(DenseConfig),
    Activation(ActivationConfig),
    #[serde(rename = "conv2d")]
    Conv2d(Conv2DConfig),
    #[serde(rename = "max_pooling2d")]
    MaxPooling2d(PoolingConfig),
    #[serde(rename = "average_pooling2d")]
    AveragePooling2d(PoolingConfig),
    #[serde(rename = "global_average_pooling2d")]
    GlobalAveragePooling2d(GlobalAveragePooling2DConfig),
    Flatten(FlattenConfig),
    Reshape(ReshapeConfig),
    Dropout(DropoutConfig),
    RandomFlip(RandomFlipConfig),
    RandomTranslation(RandomTranslationConfig),
    RandomRotation(RandomRotationConfig),
    Embedding(EmbeddingConfig),
    LayerNormalization(LayerNormalizationConfig),
    MultiHeadAttention(MultiHeadAttentionConfig),
    TransformerEncoder(TransformerEncoderConfig),
    BatchNormalization(BatchNormalizationConfig),
}

impl LayerConfig {
    /// Output shape and parameter count for inputs of `input`, computed without building
    /// (so a model file can be checked before any memory is committed to it).
    pub fn shape_and_params(&self, input: &[usize]) -> Result<(Vec<usize>, usize)> {
        match self {
            LayerConfig::Dense(c) => c.shape_and_params(input),
            LayerConfig::Activation(c) => c.shape_and_params(input),
            LayerConfig::Conv2d(c) => c.shape_and_params(input),
            LayerConfig::MaxPooling2d(c) => c.shape_and_params(input),
            LayerConfig::AveragePooling2d(c) => c.shape_and_params(input),
            LayerConfig::GlobalAveragePooling2d(c) => c.shape_and_params(input),
            LayerConfig::Flatten(c) => c.shape_and_params(input),
            LayerConfig::Reshape(c) => c.shape_and_params(input),
            LayerConfig::Dropout(c) => c.shape_and_params(input),
            LayerConfig::RandomFlip(c) => c.shape_and_params(input),
            LayerConfig::RandomTranslation(c) => c.shape_and_params(input),
            LayerConfig::RandomRotation(c) => c.shape_and_params(input),
            LayerConfig::Embedding(c) => c.shape_and_params(input),
            LayerConfig::LayerNormalization(c) => c.shape_and_params(input),
            LayerConfig::MultiHeadAttention(c) => c.shape_and_params(input),
            LayerConfig::TransformerEncoder(c) => c.shape_and_params(input),
            LayerConfig::BatchNormalization(c) => c.shape_and_params(input),
        }
    }

    /// How many of the layer's weights (for inputs of `input`) the optimizer never trains
    /// even when the layer is trainable: batch normalization's moving averages.
    pub fn non_trainable_params(&self, input: &[usize]) -> usize {
        match self {
            LayerConfig::BatchNormalization(c) => c.moving_params(input),
            _ => 0,
        }
    }

    /// The Keras class name of the layer this configures.
    pub fn kind_name(&self) -> &'static str {
        self.to_layer().kind()
    }

    /// A fresh, unbuilt layer.
    pub fn to_layer(&self) -> Box<dyn Layer> {
        match self.clone() {
            LayerConfig::Dense(c) => Box::new(Dense::from(c)),
            LayerConfig::Activation(c) => Box::new(ActivationLayer::from(c)),
            LayerConfig::Conv2d(c) => Box::new(Conv2D::from(c)),
            LayerConfig::MaxPooling2d(c) => Box::new(MaxPooling2D::from(c)),
            LayerConfig::AveragePooling2d(c) => Box::new(AveragePooling2D::from(c)),
            LayerConfig::GlobalAveragePooling2d(c) => Box::new(GlobalAveragePooling2D::from(c)),
            LayerConfig::Flatten(c) => Box::new(Flatten::from(c)),
            LayerConfig::Reshape(c) => Box::new(Reshape::from(c)),
            LayerConfig::Dropout(c) => Box::new(Dropout::from(c)),
            LayerConfig::RandomFlip(c) => Box::new(Augment::from(c)),
            LayerConfig::RandomTranslation(c) => Box::new(Augment::from(c)),
            LayerConfig::RandomRotation(c) => Box::new(Augment::from(c)),
            LayerConfig::Embedding(c) => Box::new(Embedding::from(c)),
            LayerConfig::LayerNormalization(c) => Box::new(LayerNormalization::from(c)),
            LayerConfig::MultiHeadAttention(c) => Box::new(MultiHeadAttention::from(c)),
            LayerConfig::TransformerEncoder(c) => Box::new(TransformerEncoder::from(c)),
            LayerConfig::BatchNormalization(c) => Box::new(BatchNormalization::from(c)),
        }
    }
}

/// The serde default of a setting that is on unless turned off.
pub(super) fn yes() -> bool {
    true
}

/// The element count of a shape from a file, or an error when it overflows.
pub(super) fn numel(shape: &[usize]) -> Result<usize> {
    crate::tensor::checked_numel(shape)
        .ok_or_else(|| Error::invalid(format!("the shape {shape:?} is too large")))
}
