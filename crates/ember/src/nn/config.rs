//! `LayerConfig`: a layer as data, the form it takes in model files.

use serde::{Deserialize, Serialize};

use super::{ActivationLayer, Dense, Layer};
use crate::error::{Error, Result};
use crate::tensor::activation::Activation;

/// One layer of a model file, tagged by `type`:
///
/// ```toml
/// [[layers]]
/// type = "dense"
/// units = 64
/// activation = "relu"
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerConfig {
    Dense {
        units: usize,
        #[serde(default)]
        activation: Activation,
        #[serde(default = "yes")]
        use_bias: bool,
    },
    Activation {
        activation: Activation,
    },
}

fn yes() -> bool {
    true
}

impl LayerConfig {
    /// Output shape and parameter count for inputs of `input`, computed without building
    /// (so a model file can be checked before any memory is committed to it).
    pub fn shape_and_params(&self, input: &[usize]) -> Result<(Vec<usize>, usize)> {
        match *self {
            LayerConfig::Dense {
                units, use_bias, ..
            } => {
                let inputs = *input
                    .last()
                    .ok_or_else(|| Error::shape("Dense", "needs inputs with a last axis"))?;
                let params = inputs
                    .checked_mul(units)
                    .and_then(|w| w.checked_add(if use_bias { units } else { 0 }))
                    .ok_or_else(|| {
                        Error::invalid(format!("Dense({units}) on {inputs} inputs is too large"))
                    })?;
                let mut output = input.to_vec();
                *output.last_mut().expect("checked above") = units;
                Ok((output, params))
            }
            LayerConfig::Activation { .. } => Ok((input.to_vec(), 0)),
        }
    }

    /// A fresh, unbuilt layer.
    pub fn to_layer(&self) -> Box<dyn Layer> {
        match *self {
            LayerConfig::Dense {
                units,
                activation,
                use_bias,
            } => Box::new(Dense::new(units).activation(activation).use_bias(use_bias)),
            LayerConfig::Activation { activation } => Box::new(ActivationLayer::new(activation)),
        }
    }
}
