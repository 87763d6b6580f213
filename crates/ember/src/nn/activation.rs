//! `Activation`: an activation function as a layer of its own (Keras `layers.Activation`).

use super::{Layer, LayerConfig};
use crate::autograd::{Tape, Var};
use crate::error::Result;
use crate::tensor::activation::Activation;
use crate::tensor::forward;
use crate::tensor::random::Rng;
use crate::tensor::Tensor;

/// Applies an activation to its input; no parameters.
#[derive(Clone, Debug)]
pub struct ActivationLayer {
    activation: Activation,
}

impl ActivationLayer {
    pub fn new(activation: Activation) -> Self {
        ActivationLayer { activation }
    }
}

impl Layer for ActivationLayer {
    fn kind(&self) -> &'static str {
        "Activation"
    }

    fn build(&mut self, input_shape: &[usize], _rng: &mut Rng) -> Result<Vec<usize>> {
        Ok(input_shape.to_vec())
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_owned(x.clone())
    }

    fn forward_owned(&self, x: Tensor) -> Result<Tensor> {
        Ok(forward::activation(self.activation, x))
    }

    fn forward_logits(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.clone())
    }

    fn record(&self, tape: &mut Tape, _weights: &[Var], x: Var, _training: bool) -> Result<Var> {
        tape.activation(self.activation, x)
    }

    fn record_logits(
        &self,
        _tape: &mut Tape,
        _weights: &[Var],
        x: Var,
        _training: bool,
    ) -> Result<Var> {
        Ok(x)
    }

    fn final_activation(&self) -> Activation {
        self.activation
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::Activation {
            activation: self.activation,
        }
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
        check_gradients(&[&[2, 7]], 4, |tape, v| layer.record(tape, &[], v[0], true)).unwrap();
    }
}
