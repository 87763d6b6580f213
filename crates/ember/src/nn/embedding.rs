//! `Embedding`: a learned vector per token id.

use super::{built, weight_var, Layer, LayerConfig, WeightRef};
use crate::autograd::{Tape, Var};
use crate::error::Result;
use crate::tensor::forward;
use crate::tensor::random::Rng;
use crate::tensor::Tensor;

/// Keras `Embedding(input_dim, output_dim)`: samples of integer ids (stored as f32) become
/// samples of vectors, `(…) → (…, output_dim)`; the table starts uniform in [−0.05, 0.05].
/// An id outside `0..input_dim` is an error naming it.
#[derive(Clone, Debug)]
pub struct Embedding {
    input_dim: usize,
    output_dim: usize,
    table: Option<Tensor>,
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

    fn build(&mut self, input_shape: &[usize], rng: &mut Rng) -> Result<Vec<usize>> {
        let (output, _) = self.config().shape_and_params(input_shape)?;
        let mut table = Tensor::zeros(&[self.input_dim, self.output_dim]);
        for v in table.data_mut() {
            *v = rng.uniform_range(-0.05, 0.05);
        }
        self.table = Some(table);
        Ok(output)
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        forward::embedding(built(&self.table, "Embedding")?, x)
    }

    fn record(&self, tape: &mut Tape, weights: &[Var], x: Var, _training: bool) -> Result<Var> {
        tape.embedding(weight_var(weights, 0, "Embedding")?, x)
    }

    fn weights(&self) -> Vec<WeightRef<'_>> {
        let table = self.table.as_ref().map(|value| WeightRef {
            name: "embeddings",
            value,
            trainable: true,
        });
        table.into_iter().collect()
    }

    fn weights_mut(&mut self) -> Vec<&mut Tensor> {
        self.table.iter_mut().collect()
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::Embedding {
            input_dim: self.input_dim,
            output_dim: self.output_dim,
        }
    }
}
