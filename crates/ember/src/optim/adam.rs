//! Adam (Kingma & Ba), as Keras computes it: bias correction folded into the step size,
//! epsilon added after the square root.

use serde::{Deserialize, Serialize};

use super::Slots;
use crate::autograd::Tape;
use crate::tensor::update;

/// Keras `Adam()`: learning_rate 0.001, beta_1 0.9, beta_2 0.999, epsilon 1e-7.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Adam {
    pub learning_rate: f32,
    pub beta_1: f32,
    pub beta_2: f32,
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
    pub(crate) iterations: u64,
    #[serde(skip)]
    pub(crate) m: Slots,
    #[serde(skip)]
    pub(crate) v: Slots,
}

impl Default for Adam {
    fn default() -> Self {
        Adam {
            learning_rate: 0.001,
            clipnorm: None,
            global_clipnorm: None,
            clipvalue: None,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            iterations: 0,
            m: Slots::default(),
            v: Slots::default(),
        }
    }
}

impl Adam {
    pub fn new(learning_rate: f32) -> Self {
        Adam {
            learning_rate,
            ..Self::default()
        }
    }

    pub(crate) fn step(&mut self, tape: &mut Tape) {
        self.iterations += 1;
        let t = self.iterations as i32;
        let (b1, b2, eps) = (self.beta_1, self.beta_2, self.epsilon);
        let alpha = self.learning_rate * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
        for (i, (w, g)) in tape.params_and_grads_mut().enumerate() {
            let Some(g) = g else { continue };
            let m = self.m.get(i, w);
            let v = self.v.get(i, w);
            update::adam(
                w,
                g,
                m,
                v,
                update::AdamStep {
                    alpha,
                    beta_1: b1,
                    beta_2: b2,
                    epsilon: eps,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Optimizer, Tensor};

    #[test]
    fn two_steps_by_hand() {
        let mut tape = Tape::new();
        let mut value = Tensor::new(&[1], vec![1.0]).unwrap();
        let mut adam = Optimizer::from(Adam::new(0.1));
        // loss = 3w → g = 3 on both steps.
        for _ in 0..2 {
            tape.reset();
            let w = tape.param(value);
            let s = tape.scale(w, 3.0).unwrap();
            let l = tape.sum(s).unwrap();
            tape.backward(l).unwrap();
            adam.step(&mut tape);
            value = tape.take_value(w);
        }
        // Step 1: m = 0.3, v = 0.009, alpha = 0.1·sqrt(0.001)/0.1 → w -= 0.1·0.3/(0.0948683+1e-7)·sqrt(.001)/.1·... computed in f64:
        let mut w_ref = 1.0f64;
        let (mut m, mut v) = (0.0f64, 0.0f64);
        for t in 1..=2 {
            m += (3.0 - m) * 0.1;
            v += (9.0 - v) * 0.001;
            let alpha = 0.1 * (1.0 - 0.999f64.powi(t)).sqrt() / (1.0 - 0.9f64.powi(t));
            w_ref -= alpha * m / (v.sqrt() + 1e-7);
        }
        // With a constant gradient, Adam moves by about lr per step: 1 - 0.2.
        assert!((w_ref - 0.8).abs() < 1e-3);
        assert!((value.data()[0] as f64 - w_ref).abs() < 1e-6);
    }
}
