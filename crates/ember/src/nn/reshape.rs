//! `Reshape`: give each sample a new shape with the same number of values.

use super::{Layer, LayerConfig};
use crate::autograd::{Tape, Var};
use crate::error::{Error, Result};
use crate::tensor::random::Rng;
use crate::tensor::Tensor;

/// Keras `Reshape(target_shape)` (the batch axis is kept).
#[derive(Clone, Debug)]
pub struct Reshape {
    pub(crate) target_shape: Vec<usize>,
}

impl Reshape {
    pub fn new(target_shape: &[usize]) -> Self {
        Reshape {
            target_shape: target_shape.to_vec(),
        }
    }

    fn batch_shape(&self, rows: usize) -> Vec<usize> {
        let mut shape = vec![rows];
        shape.extend_from_slice(&self.target_shape);
        shape
    }
}

impl Layer for Reshape {
    fn kind(&self) -> &'static str {
        "Reshape"
    }

    fn build(&mut self, input_shape: &[usize], _rng: &mut Rng) -> Result<Vec<usize>> {
        let (from, to) = (
            crate::tensor::checked_numel(input_shape),
            crate::tensor::checked_numel(&self.target_shape),
        );
        if from.is_none() || from != to || self.target_shape.is_empty() {
            return Err(Error::shape(
                "Reshape",
                format!(
                    "cannot reshape samples of {input_shape:?} into {:?}",
                    self.target_shape
                ),
            ));
        }
        Ok(self.target_shape.clone())
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_owned(x.clone())
    }

    fn forward_owned(&self, x: Tensor) -> Result<Tensor> {
        let shape = self.batch_shape(x.rows());
        x.reshape(&shape)
    }

    fn record(&self, tape: &mut Tape, _weights: &[Var], x: Var, _training: bool) -> Result<Var> {
        let shape = self.batch_shape(tape.value(x).rows());
        tape.reshape(x, &shape)
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::Reshape {
            target_shape: self.target_shape.clone(),
        }
    }
}
