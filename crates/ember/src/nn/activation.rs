//! `Activation`: an activation function as a layer of its own (Keras `layers.Activation`).

use serde::{Deserialize, Serialize};

use super::{Layer, LayerConfig};
use crate::autograd::{Pass, Value};
use crate::error::Result;
use crate::tensor::activation::Activation;
use crate::tensor::random::Rng;

/// `type = "activation"` in a model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivationConfig {
    pub activation: Activation,
}

impl ActivationConfig {
    /// The input shape; no parameters.
    pub fn shape_and_params(&self, input: &[usize]) -> Result<(Vec<usize>, usize)> {
        Ok((input.to_vec(), 0))
    }
}

/// Applies an activation to its input; no parameters.
#[derive(Clone, Debug)]
pub struct ActivationLayer {
    config: ActivationConfig,
}

impl From<ActivationConfig> for ActivationLayer {
    fn from(config: ActivationConfig) -> Self {
        ActivationLayer { config }
    }
}

impl ActivationLayer {
    pub fn new(activation: Activation) -> Self {
        ActivationLayer::from(ActivationConfig { activation })
    }
}

impl Layer for ActivationLayer {
    fn kind(&self) -> &'static str {
        "Activation"
    }

    fn build(&mut self, input_shape: &[usize], _rng: &mut Rng) -> Result<Vec<usize>> {
        Ok(self.config.shape_and_params(input_shape)?.0)
    }

    fn call(&self, pass: &mut Pass, x: Value, _mask: Option<Value>) -> Result<Value<'static>> {
        match pass.activation(self.config.activation) {
            Activation::Linear => Ok(x.into_owned()),
            activation => pass.activation_of(activation, x),
        }
    }

    fn final_activation(&self) -> Activation {
        self.config.activation
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::Activation(self.config.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autograd::gradcheck::check_gradients;

    #[test]
    fn passes_shape_through_and_has_gradients() {
        let mut layer = ActivationLayer::new(Activation::Sigmoid);
        assert_eq!(layer.build(&[7], &mut Rng::seed(0)).unwrap(), vec![7]);
        assert!(layer.weights().is_empty());
        check_gradients(&[&[2, 7]], 4, |tape, v| {
            crate::nn::call_on_tape(&layer, tape, &[], v[0], None, true)
        })
        .unwrap();
    }
}
