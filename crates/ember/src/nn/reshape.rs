//! `Reshape`: give each sample a new shape with the same number of values.

use super::{Layer, LayerConfig};
use crate::autograd::{Tape, Var};
use crate::error::{Error, Result};
use crate::tensor::random::Rng;

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
}

impl Layer for Reshape {
    fn kind(&self) -> &'static str {
        "Reshape"
    }

    fn build(
        &mut self,
        _tape: &mut Tape,
        input_shape: &[usize],
        _rng: &mut Rng,
    ) -> Result<Vec<usize>> {
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

    fn forward(&self, tape: &mut Tape, x: Var, _training: bool) -> Result<Var> {
        let mut shape = vec![tape.value(x).rows()];
        shape.extend_from_slice(&self.target_shape);
        tape.reshape(x, &shape)
    }

    fn params(&self) -> Vec<(&'static str, Var)> {
        Vec::new()
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::Reshape {
            target_shape: self.target_shape.clone(),
        }
    }
}
