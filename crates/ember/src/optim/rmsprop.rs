//! RMSprop, Keras's formulation (epsilon inside the square root, optional momentum).

use serde::{Deserialize, Serialize};

use super::Slots;
use crate::autograd::Tape;
use crate::tensor::update::{self, RmsPropStep};

/// Keras `RMSprop()`: learning_rate 0.001, rho 0.9, momentum 0, epsilon 1e-7.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RmsProp {
    pub learning_rate: f32,
    pub rho: f32,
    pub momentum: f32,
    pub epsilon: f32,
    /// Keras's gradient clipping, applied before the update (default none; at most one):
    /// every gradient within its own norm `clipnorm`, all of them within `global_clipnorm`
    /// together, every element within ±`clipvalue`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clipnorm: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_clipnorm: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clipvalue: Option<f32>,
    #[serde(skip)]
    pub(crate) mean_square: Slots,
    #[serde(skip)]
    pub(crate) velocity: Slots,
    #[serde(skip)]
    pub(crate) iterations: u64,
}

impl Default for RmsProp {
    fn default() -> Self {
        RmsProp {
            learning_rate: 0.001,
            clipnorm: None,
            global_clipnorm: None,
            clipvalue: None,
            rho: 0.9,
            momentum: 0.0,
            epsilon: 1e-7,
            mean_square: Slots::default(),
            velocity: Slots::default(),
            iterations: 0,
        }
    }
}

impl RmsProp {
    pub fn new(learning_rate: f32) -> Self {
        RmsProp {
            learning_rate,
            ..Self::default()
        }
    }

    pub(crate) fn step(&mut self, tape: &mut Tape) {
        self.iterations += 1;
        let step = RmsPropStep {
            lr: self.learning_rate,
            rho: self.rho,
            epsilon: self.epsilon,
        };
        let mu = self.momentum;
        for (i, (w, g)) in tape.params_and_grads_mut().enumerate() {
            let Some(g) = g else { continue };
            let ms = self.mean_square.get(i, w);
            if mu == 0.0 {
                update::rmsprop(w, g, ms, step);
            } else {
                let velocity = self.velocity.get(i, w);
                update::rmsprop_momentum(w, g, ms, velocity, mu, step);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Optimizer, Tensor};

    #[test]
    fn one_step_by_hand() {
        let mut tape = Tape::new();
        let w = tape.param(Tensor::new(&[1], vec![1.0]).unwrap());
        let s = tape.scale(w, 2.0).unwrap(); // g = 2
        let l = tape.sum(s).unwrap();
        tape.backward(l).unwrap();
        Optimizer::from(RmsProp::new(0.01)).step(&mut tape);
        // s = 0.1·4 = 0.4; w = 1 - 0.01·2/sqrt(0.4 + 1e-7)
        let expected = 1.0 - 0.02 / (0.4f64 + 1e-7).sqrt();
        assert!((tape.value(w).data()[0] as f64 - expected).abs() < 1e-6);
    }
}
