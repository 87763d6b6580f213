//! `Embedding`: a learned vector per token id.

use serde::{Deserialize, Serialize};

use super::{Layer, LayerConfig, WeightRef};
use crate::autograd::{Pass, Value};
use crate::error::{Error, Result};
use crate::tensor::random::{uniform_tensor, Rng};
use crate::tensor::Tensor;

/// Keras `Embedding(input_dim, output_dim)`: samples of integer ids (stored as f32) become
/// samples of vectors, `(…) → (…, output_dim)`; the table starts uniform in [−0.05, 0.05].
/// An id outside `0..input_dim` is an error naming it.
#[derive(Clone, Debug)]
pub struct Embedding {
    config: EmbeddingConfig,
    table: Option<Tensor>,
}

/// `type = "embedding"` in a model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingConfig {
    /// The vocabulary size: ids run over `0..input_dim`.
    pub input_dim: usize,
    /// The length of each id's vector.
    pub output_dim: usize,
}

impl EmbeddingConfig {
    /// `(…) → (…, output_dim)` and the table's size, without building.
    pub fn shape_and_params(&self, input: &[usize]) -> Result<(Vec<usize>, usize)> {
        let EmbeddingConfig {
            input_dim,
            output_dim,
        } = *self;
        if input_dim == 0 || output_dim == 0 {
            return Err(Error::invalid(format!(
                "Embedding needs positive input_dim and output_dim, got {input_dim} and {output_dim}"
            )));
        }
        let params = input_dim.checked_mul(output_dim).ok_or_else(|| {
            Error::invalid(format!("Embedding({input_dim}, {output_dim}) is too large"))
        })?;
        let mut output = input.to_vec();
        output.push(output_dim);
        super::config::numel(&output)?;
        Ok((output, params))
    }
}

impl From<EmbeddingConfig> for Embedding {
    fn from(config: EmbeddingConfig) -> Self {
        Embedding {
            config,
            table: None,
        }
    }
}

impl Embedding {
    pub fn new(input_dim: usize, output_dim: usize) -> Self {
        Embedding::from(EmbeddingConfig {
            input_dim,
            output_dim,
        })
    }
}

impl Layer for Embedding {
    fn kind(&self) -> &'static str {
        "Embedding"
    }

    fn build(&mut self, input_shape: &[usize], rng: &mut Rng) -> Result<Vec<usize>> {
        let (output, _) = self.config.shape_and_params(input_shape)?;
        let shape = [self.config.input_dim, self.config.output_dim];
        self.table = Some(uniform_tensor(&shape, -0.05, 0.05, rng));
        Ok(output)
    }

    fn call(&self, pass: &mut Pass, x: Value, _mask: Option<Value>) -> Result<Value<'static>> {
        let table = pass.weight(0, self.table.as_ref(), "Embedding")?;
        pass.embedding(&table, &x)
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
        LayerConfig::Embedding(self.config.clone())
    }
}
