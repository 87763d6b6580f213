//! Stochastic gradient descent with optional (Nesterov) momentum, Keras's formulation.

use serde::{Deserialize, Serialize};

use super::Slots;
use crate::autograd::Tape;
use crate::tensor::update;

/// Keras `SGD()`: learning_rate 0.01, momentum 0, nesterov false.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sgd {
    pub learning_rate: f32,
    pub momentum: f32,
    pub nesterov: bool,
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
    pub(crate) velocity: Slots,
    #[serde(skip)]
    pub(crate) iterations: u64,
}

impl Default for Sgd {
    fn default() -> Self {
        Sgd {
            learning_rate: 0.01,
            clipnorm: None,
            global_clipnorm: None,
            clipvalue: None,
            momentum: 0.0,
            nesterov: false,
            velocity: Slots::default(),
            iterations: 0,
        }
    }
}

impl Sgd {
    pub fn new(learning_rate: f32) -> Self {
        Sgd {
            learning_rate,
            ..Self::default()
        }
    }

    pub fn momentum(mut self, momentum: f32, nesterov: bool) -> Self {
        self.momentum = momentum;
        self.nesterov = nesterov;
        self
    }

    pub(crate) fn step(&mut self, tape: &mut Tape) {
        self.iterations += 1;
        let (lr, mu, nesterov) = (self.learning_rate, self.momentum, self.nesterov);
        for (i, (w, g)) in tape.params_and_grads_mut().enumerate() {
            let Some(g) = g else { continue };
            if mu == 0.0 {
                update::sgd(w, g, lr);
                continue;
            }
            let velocity = self.velocity.get(i, w);
            update::sgd_momentum(w, g, velocity, lr, mu, nesterov);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Optimizer, Tensor};

    fn run(opt: Sgd, steps: usize) -> f32 {
        let mut tape = Tape::new();
        let mut value = Tensor::new(&[1], vec![1.0]).unwrap();
        let mut opt = Optimizer::from(opt);
        for _ in 0..steps {
            // Each step moves the weight onto the tape and back, as a model does.
            tape.reset();
            let w = tape.param(value);
            let s = tape.scale(w, 2.0).unwrap(); // g = 2
            let l = tape.sum(s).unwrap();
            tape.backward(l).unwrap();
            opt.step(&mut tape);
            value = tape.take_value(w);
        }
        value.data()[0]
    }

    #[test]
    fn updates_by_hand() {
        // plain: 1 - 2·0.1·2
        assert!((run(Sgd::new(0.1), 2) - 0.6).abs() < 1e-6);
        // momentum 0.9: m1 = -0.2, w = 0.8; m2 = -0.18 - 0.2 = -0.38, w = 0.42
        assert!((run(Sgd::new(0.1).momentum(0.9, false), 2) - 0.42).abs() < 1e-6);
        // nesterov: w1 = 1 + 0.9·(-0.2) - 0.2 = 0.62; w2 = 0.62 + 0.9·(-0.38) - 0.2 = 0.078
        assert!((run(Sgd::new(0.1).momentum(0.9, true), 2) - 0.078).abs() < 1e-6);
    }
}
