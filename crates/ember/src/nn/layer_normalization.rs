//! `LayerNormalization`: normalize each sample's features (the last axis) to zero mean and unit
//! variance, then scale and shift by learned `gamma` and `beta`.

use super::{weight_ref, weight_var, Layer, LayerConfig, WeightRef};
use crate::autograd::{Tape, Var};
use crate::error::{Error, Result};
use crate::tensor::forward;
use crate::tensor::random::Rng;
use crate::tensor::Tensor;

/// Keras `LayerNormalization()` (axis −1, epsilon 1e-3): the same in training and inference.
#[derive(Clone, Debug)]
pub struct LayerNormalization {
    epsilon: f32,
    center: bool,
    scale: bool,
    gamma: Option<Tensor>,
    beta: Option<Tensor>,
}

impl Default for LayerNormalization {
    fn default() -> Self {
        LayerNormalization {
            epsilon: 1e-3,
            center: true,
            scale: true,
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
        self.epsilon = epsilon;
        self
    }

    pub fn center(mut self, center: bool) -> Self {
        self.center = center;
        self
    }

    pub fn scale(mut self, scale: bool) -> Self {
        self.scale = scale;
        self
    }

    fn check_built(&self) -> Result<()> {
        if self.scale && self.gamma.is_none() || self.center && self.beta.is_none() {
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
        let (output, _) = self.config().shape_and_params(input_shape)?;
        let features = *input_shape.last().expect("checked by shape_and_params");
        self.gamma = self.scale.then(|| Tensor::full(&[features], 1.0));
        self.beta = self.center.then(|| Tensor::zeros(&[features]));
        Ok(output)
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.check_built()?;
        forward::layer_norm(x, self.gamma.as_ref(), self.beta.as_ref(), self.epsilon)
    }

    fn record(&self, tape: &mut Tape, weights: &[Var], x: Var, _training: bool) -> Result<Var> {
        self.check_built()?;
        let gamma = match self.scale {
            true => Some(weight_var(weights, 0, "LayerNormalization")?),
            false => None,
        };
        let beta = match self.center {
            true => Some(weight_var(
                weights,
                self.scale as usize,
                "LayerNormalization",
            )?),
            false => None,
        };
        tape.layer_norm(x, gamma, beta, self.epsilon)
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
        LayerConfig::LayerNormalization {
            epsilon: self.epsilon,
            center: self.center,
            scale: self.scale,
        }
    }
}
