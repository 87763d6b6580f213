//! `LayerNormalization`: normalize each sample's features (the last axis) to zero mean and unit
//! variance, then scale and shift by learned `gamma` and `beta`.

use super::{Layer, LayerConfig};
use crate::autograd::{Tape, Var};
use crate::error::{Error, Result};
use crate::tensor::random::Rng;
use crate::tensor::Tensor;

/// Keras `LayerNormalization()` (axis −1, epsilon 1e-3): the same in training and inference.
#[derive(Clone, Debug)]
pub struct LayerNormalization {
    epsilon: f32,
    center: bool,
    scale: bool,
    gamma: Option<Var>,
    beta: Option<Var>,
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

    /// The learned scale and shift, for loading pretrained weights.
    pub(crate) fn vars(&self) -> (Option<Var>, Option<Var>) {
        (self.gamma, self.beta)
    }
}

impl Layer for LayerNormalization {
    fn kind(&self) -> &'static str {
        "LayerNormalization"
    }

    fn build(
        &mut self,
        tape: &mut Tape,
        input_shape: &[usize],
        _rng: &mut Rng,
    ) -> Result<Vec<usize>> {
        let (output, _) = self.config().shape_and_params(input_shape)?;
        let features = *input_shape.last().expect("checked by shape_and_params");
        self.gamma = self
            .scale
            .then(|| tape.param(Tensor::full(&[features], 1.0)));
        self.beta = self.center.then(|| tape.param(Tensor::zeros(&[features])));
        Ok(output)
    }

    fn forward(&self, tape: &mut Tape, x: Var, _training: bool) -> Result<Var> {
        if self.scale && self.gamma.is_none() {
            return Err(Error::invalid(
                "LayerNormalization layer used before it was built",
            ));
        }
        tape.layer_norm(x, self.gamma, self.beta, self.epsilon)
    }

    fn params(&self) -> Vec<(&'static str, Var)> {
        let gamma = self.gamma.map(|g| ("gamma", g));
        let beta = self.beta.map(|b| ("beta", b));
        gamma.into_iter().chain(beta).collect()
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::LayerNormalization {
            epsilon: self.epsilon,
            center: self.center,
            scale: self.scale,
        }
    }
}
