//! `Embedding`: a learned vector per token id.

use super::{Layer, LayerConfig};
use crate::autograd::{Tape, Var};
use crate::error::{Error, Result};
use crate::tensor::random::Rng;
use crate::tensor::Tensor;

/// Keras `Embedding(input_dim, output_dim)`: samples of integer ids (stored as f32) become
/// samples of vectors, `(…) → (…, output_dim)`; the table starts uniform in [−0.05, 0.05].
/// An id outside `0..input_dim` is an error naming it.
#[derive(Clone, Debug)]
pub struct Embedding {
    input_dim: usize,
    output_dim: usize,
    table: Option<Var>,
}

impl Embedding {
    pub fn new(input_dim: usize, output_dim: usize) -> Self {
        Embedding {
            input_dim,
            output_dim,
            table: None,
        }
    }
}

impl Layer for Embedding {
    fn kind(&self) -> &'static str {
        "Embedding"
    }

    fn build(
        &mut self,
        tape: &mut Tape,
        input_shape: &[usize],
        rng: &mut Rng,
    ) -> Result<Vec<usize>> {
        let (output, _) = self.config().shape_and_params(input_shape)?;
        let mut table = Tensor::zeros(&[self.input_dim, self.output_dim]);
        for v in table.data_mut() {
            *v = rng.uniform_range(-0.05, 0.05);
        }
        self.table = Some(tape.param(table));
        Ok(output)
    }

    fn forward(&self, tape: &mut Tape, x: Var, _training: bool) -> Result<Var> {
        let table = self
            .table
            .ok_or_else(|| Error::invalid("Embedding layer used before it was built"))?;
        tape.embedding(table, x)
    }

    fn params(&self) -> Vec<(&'static str, Var)> {
        self.table.map(|t| ("embeddings", t)).into_iter().collect()
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::Embedding {
            input_dim: self.input_dim,
            output_dim: self.output_dim,
        }
    }
}
