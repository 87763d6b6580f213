//! `Flatten`: each sample's axes into one.

use serde::{Deserialize, Serialize};

use super::{Layer, LayerConfig};
use crate::autograd::{Pass, Value};
use crate::error::Result;
use crate::tensor::random::Rng;

/// (batch, …) → (batch, product of the rest).
fn flat(shape: &[usize]) -> [usize; 2] {
    let rows = shape.first().copied().unwrap_or(1);
    [rows, shape.iter().skip(1).product()]
}

/// `type = "flatten"` in a model file: no settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlattenConfig {}

impl FlattenConfig {
    /// Samples of any shape become (their element count); no parameters.
    pub fn shape_and_params(&self, input: &[usize]) -> Result<(Vec<usize>, usize)> {
        Ok((vec![super::config::numel(input)?], 0))
    }
}

impl From<FlattenConfig> for Flatten {
    fn from(_: FlattenConfig) -> Self {
        Flatten
    }
}

/// Keras `Flatten()`: (batch, …) → (batch, product of the rest).
#[derive(Clone, Debug, Default)]
pub struct Flatten;

impl Layer for Flatten {
    fn kind(&self) -> &'static str {
        "Flatten"
    }

    fn build(&mut self, input_shape: &[usize], _rng: &mut Rng) -> Result<Vec<usize>> {
        Ok(FlattenConfig {}.shape_and_params(input_shape)?.0)
    }

    fn call(&self, pass: &mut Pass, x: Value, _mask: Option<Value>) -> Result<Value<'static>> {
        let shape = flat(pass.shape(&x)?);
        pass.reshape(x, &shape)
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::Flatten(FlattenConfig {})
    }
}
