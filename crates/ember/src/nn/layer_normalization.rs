//! `LayerNormalization`: normalize each sample's features (the last axis) to zero mean and unit
//! variance, then scale and shift by learned `gamma` and `beta`.

use serde::{Deserialize, Serialize};

use super::{weight_ref, Layer, LayerConfig, WeightRef};
use crate::autograd::{Pass, Value};
use crate::error::{Error, Result};
use crate::tensor::random::Rng;
use crate::tensor::Tensor;

/// `type = "layer_normalization"` in a model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LayerNormalizationConfig {
    /// Added to the variance before the square root. Default: 1e-3 (Keras).
    pub epsilon: f32,
    /// Whether to learn the shift `beta`. Default: true.
    pub center: bool,
    /// Whether to learn the scale `gamma`. Default: true.
    pub scale: bool,
}

impl Default for LayerNormalizationConfig {
    fn default() -> Self {
        LayerNormalizationConfig {
            epsilon: 1e-3,
            center: true,
            scale: true,
        }
    }
}

impl LayerNormalizationConfig {
    /// The input shape, and `gamma` and `beta` (when learned) over the last axis.
    pub fn shape_and_params(&self, input: &[usize]) -> Result<(Vec<usize>, usize)> {
        let epsilon = self.epsilon;
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
        let vectors = usize::from(self.center) + usize::from(self.scale);
        Ok((input.to_vec(), vectors * features))
    }
}

/// Keras `LayerNormalization()` (axis −1, epsilon 1e-3): the same in training and inference.
#[derive(Clone, Debug, Default)]
pub struct LayerNormalization {
    config: LayerNormalizationConfig,
    gamma: Option<Tensor>,
    beta: Option<Tensor>,
}

impl From<LayerNormalizationConfig> for LayerNormalization {
    fn from(config: LayerNormalizationConfig) -> Self {
        LayerNormalization {
            config,
            gamma: None,
            beta: None,
        }
    }
}

impl LayerNormalization {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn epsilon(mut self, epsilon: f32) -> Self {
        self.config.epsilon = epsilon;
        self
    }

    pub fn center(mut self, center: bool) -> Self {
        self.config.center = center;
        self
    }

    pub fn scale(mut self, scale: bool) -> Self {
        self.config.scale = scale;
        self
    }

    fn check_built(&self) -> Result<()> {
        let c = &self.config;
        if c.scale && self.gamma.is_none() || c.center && self.beta.is_none() {
            return Err(Error::invalid(
                "LayerNormalization layer used before it was built",
            ));
        }
        Ok(())
    }
}

impl Layer for LayerNormalization {
    fn kind(&self) -> &'static str {
        "LayerNormalization"
    }

    fn build(&mut self, input_shape: &[usize], _rng: &mut Rng) -> Result<Vec<usize>> {
        let (output, _) = self.config.shape_and_params(input_shape)?;
        let features = *input_shape.last().expect("checked by shape_and_params");
        self.gamma = self.config.scale.then(|| Tensor::full(&[features], 1.0));
        self.beta = self.config.center.then(|| Tensor::zeros(&[features]));
        Ok(output)
    }

    fn call(&self, pass: &mut Pass, x: Value, _mask: Option<Value>) -> Result<Value<'static>> {
        self.check_built()?;
        const LAYER: &str = "LayerNormalization";
        let gamma = match &self.gamma {
            Some(gamma) => Some(pass.weight(0, Some(gamma), LAYER)?),
            None => None,
        };
        let beta = match &self.beta {
            Some(beta) => Some(pass.weight(gamma.is_some() as usize, Some(beta), LAYER)?),
            None => None,
        };
        pass.layer_norm(&x, gamma.as_ref(), beta.as_ref(), self.config.epsilon)
    }

    fn weights(&self) -> Vec<WeightRef<'_>> {
        [
            weight_ref("gamma", &self.gamma, true),
            weight_ref("beta", &self.beta, true),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    fn weights_mut(&mut self) -> Vec<&mut Tensor> {
        [&mut self.gamma, &mut self.beta]
            .into_iter()
            .flatten()
            .collect()
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::LayerNormalization(self.config.clone())
    }
}
