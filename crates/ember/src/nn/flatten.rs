//! `Flatten`: each sample's axes into one.

use super::{Layer, LayerConfig};
use crate::autograd::{Tape, Var};
use crate::error::Result;
use crate::tensor::random::Rng;

/// Keras `Flatten()`: (batch, …) → (batch, product of the rest).
#[derive(Clone, Debug, Default)]
pub struct Flatten;

impl Layer for Flatten {
    fn kind(&self) -> &'static str {
        "Flatten"
    }

    fn build(
        &mut self,
        _tape: &mut Tape,
        input_shape: &[usize],
        _rng: &mut Rng,
    ) -> Result<Vec<usize>> {
        let n = crate::tensor::checked_numel(input_shape).ok_or_else(|| {
            crate::Error::invalid(format!("the shape {input_shape:?} is too large"))
        })?;
        Ok(vec![n])
    }

    fn forward(&self, tape: &mut Tape, x: Var, _training: bool) -> Result<Var> {
        let shape = tape.value(x).shape();
        let rows = shape.first().copied().unwrap_or(1);
        let rest = shape.iter().skip(1).product();
        tape.reshape(x, &[rows, rest])
    }

    fn params(&self) -> Vec<(&'static str, Var)> {
        Vec::new()
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::Flatten {}
    }
}
