//! `LayerConfig`: a layer as data, the form it takes in model files.

use serde::{Deserialize, Serialize};

use super::{ActivationLayer, Dense, Layer};
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
