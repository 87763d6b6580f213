//! `Flatten`: each sample's axes into one.

use super::{Layer, LayerConfig};
use crate::autograd::{Tape, Var};
use crate::error::Result;
use crate::tensor::random::Rng;
use crate::tensor::Tensor;

/// (batch, …) → (batch, product of the rest).
fn flat(shape: &[usize]) -> [usize; 2] {
    let rows = shape.first().copied().unwrap_or(1);
    [rows, shape.iter().skip(1).product()]
}

/// Keras `Flatten()`: (batch, …) → (batch, product of the rest).
#[derive(Clone, Debug, Default)]
pub struct Flatten;

impl Layer for Flatten {
    fn kind(&self) -> &'static str {
        "Flatten"
    }

    fn build(&mut self, input_shape: &[usize], _rng: &mut Rng) -> Result<Vec<usize>> {
        let n = crate::tensor::checked_numel(input_shape).ok_or_else(|| {
            crate::Error::invalid(format!("the shape {input_shape:?} is too large"))
        })?;
        Ok(vec![n])
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_owned(x.clone())
    }

    fn forward_owned(&self, x: Tensor) -> Result<Tensor> {
        let shape = flat(x.shape());
        x.reshape(&shape)
    }

    fn record(&self, tape: &mut Tape, _weights: &[Var], x: Var, _training: bool) -> Result<Var> {
        let shape = flat(tape.value(x).shape());
        tape.reshape(x, &shape)
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::Flatten {}
    }
}
