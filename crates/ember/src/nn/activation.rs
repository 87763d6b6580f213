//! `Activation`: an activation function as a layer of its own (Keras `layers.Activation`).

use super::{Layer, LayerConfig};
use crate::autograd::{Tape, Var};
use crate::error::Result;
use crate::tensor::activation::Activation;
use crate::tensor::random::Rng;

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

    fn build(
        &mut self,
        _tape: &mut Tape,
        input_shape: &[usize],
        _rng: &mut Rng,
    ) -> Result<Vec<usize>> {
        Ok(input_shape.to_vec())
    }

    fn forward(&self, tape: &mut Tape, x: Var, _training: bool) -> Result<Var> {
        tape.activation(self.activation, x)
    }

    fn final_activation(&self) -> Activation {
        self.activation
    }

    fn forward_logits(&self, _tape: &mut Tape, x: Var, _training: bool) -> Result<Var> {
        Ok(x)
    }

    fn params(&self) -> Vec<(&'static str, Var)> {
        Vec::new()
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
        let mut tape = Tape::new();
        assert_eq!(
            layer.build(&mut tape, &[7], &mut Rng::seed(0)).unwrap(),
            vec![7]
        );
        assert!(layer.params().is_empty());
        check_gradients(&[&[2, 7]], 4, |tape, v| layer.forward(tape, v[0], true)).unwrap();
    }
}
