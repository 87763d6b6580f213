//! `Reshape`: give each sample a new shape with the same number of values.

use serde::{Deserialize, Serialize};

use super::config::numel;
use super::{Layer, LayerConfig};
use crate::autograd::{Pass, Value};
use crate::error::{Error, Result};
use crate::tensor::random::Rng;

/// `type = "reshape"` in a model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReshapeConfig {
    /// Each sample's new shape, without the batch axis.
    pub target_shape: Vec<usize>,
}

impl ReshapeConfig {
    /// The target shape, when it holds as many values as `input`; no parameters.
    pub fn shape_and_params(&self, input: &[usize]) -> Result<(Vec<usize>, usize)> {
        let target = &self.target_shape;
        if target.is_empty() || numel(input)? != numel(target)? {
            return Err(Error::shape(
                "Reshape",
                format!("cannot reshape samples of {input:?} into {target:?}"),
            ));
        }
        Ok((target.clone(), 0))
    }
}

/// Keras `Reshape(target_shape)` (the batch axis is kept).
#[derive(Clone, Debug)]
pub struct Reshape {
    config: ReshapeConfig,
}

impl From<ReshapeConfig> for Reshape {
    fn from(config: ReshapeConfig) -> Self {
        Reshape { config }
    }
}

impl Reshape {
    pub fn new(target_shape: &[usize]) -> Self {
        Reshape::from(ReshapeConfig {
            target_shape: target_shape.to_vec(),
        })
    }

    fn batch_shape(&self, rows: usize) -> Vec<usize> {
        let mut shape = vec![rows];
        shape.extend_from_slice(&self.config.target_shape);
        shape
    }
}

impl Layer for Reshape {
    fn kind(&self) -> &'static str {
        "Reshape"
    }

    fn build(&mut self, input_shape: &[usize], _rng: &mut Rng) -> Result<Vec<usize>> {
        Ok(self.config.shape_and_params(input_shape)?.0)
    }

    fn call(&self, pass: &mut Pass, x: Value, _mask: Option<Value>) -> Result<Value<'static>> {
        let rows = pass.shape(&x)?.first().copied().unwrap_or(1);
        let shape = self.batch_shape(rows);
        pass.reshape(x, &shape)
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::Reshape(self.config.clone())
    }
}
