//! Activation functions and their derivatives, applied row by row to `(batch, features)` data.

use serde::{Deserialize, Serialize};

/// The activations Keras offers by name (`activation="relu"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// Identity (Keras "linear", the default).
    #[default]
    Linear,
    Relu,
    Sigmoid,
    Tanh,
    /// Softmax over the last axis.
    Softmax,
}

impl Activation {
    /// Keras's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softmax => "softmax",
        }
    }

    /// Applies the activation in place; `row_len` is the size of the last axis (for softmax).
    pub fn apply(self, values: &mut [f32], row_len: usize) {
        match self {
            Activation::Linear => {}
            Activation::Relu => values.iter_mut().for_each(|v| *v = v.max(0.0)),
            Activation::Sigmoid => values.iter_mut().for_each(|v| *v = sigmoid(*v)),
            Activation::Tanh => values.iter_mut().for_each(|v| *v = v.tanh()),
            Activation::Softmax => values.chunks_mut(row_len.max(1)).for_each(softmax_in_place),
        }
    }

    /// Gradient with respect to the activation's input, from its output `y` and the
    /// gradient `grad_y` of its output: writes (or, with `accumulate`, adds) into `grad_x`.
    pub fn backward(
        self,
        y: &[f32],
        grad_y: &[f32],
        grad_x: &mut [f32],
        row_len: usize,
        accumulate: bool,
    ) {
        let write = |dst: &mut f32, v: f32| {
            if accumulate {
                *dst += v
            } else {
                *dst = v
            }
        };
        match self {
            Activation::Linear => zip3(y, grad_y, grad_x, |_, g, d| write(d, g)),
            Activation::Relu => zip3(y, grad_y, grad_x, |y, g, d| {
                write(d, if y > 0.0 { g } else { 0.0 })
            }),
            Activation::Sigmoid => zip3(y, grad_y, grad_x, |y, g, d| write(d, g * y * (1.0 - y))),
            Activation::Tanh => zip3(y, grad_y, grad_x, |y, g, d| write(d, g * (1.0 - y * y))),
            Activation::Softmax => {
                let n = row_len.max(1);
                for ((y, g), d) in y.chunks(n).zip(grad_y.chunks(n)).zip(grad_x.chunks_mut(n)) {
                    // dx_i = y_i * (g_i - sum_j g_j y_j)
                    let dot: f32 = y.iter().zip(g).map(|(a, b)| a * b).sum();
                    zip3(y, g, d, |y, g, d| write(d, y * (g - dot)));
                }
            }
        }
    }
}

fn zip3(a: &[f32], b: &[f32], out: &mut [f32], f: impl Fn(f32, f32, &mut f32)) {
    for ((&a, &b), o) in a.iter().zip(b).zip(out.iter_mut()) {
        f(a, b, o);
    }
}

/// Logistic sigmoid, stable for large |x|.
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Softmax of one row, in place, shifted by the maximum so that `exp` cannot overflow.
pub fn softmax_in_place(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    row.iter_mut().for_each(|v| *v *= inv);
}

/// `log(sum(exp(row)))`, computed stably.
pub fn log_sum_exp(row: &[f32]) -> f32 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = row.iter().map(|v| (v - max).exp()).sum();
    max + sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let mut v = vec![-1.0, 0.0, 2.0];
        Activation::Relu.apply(&mut v, 3);
        assert_eq!(v, vec![0.0, 0.0, 2.0]);
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-7);
        assert!((sigmoid(2.0) - 0.880_797_1).abs() < 1e-6);
        assert!((sigmoid(-2.0) - 0.119_202_92).abs() < 1e-6);
        let mut s = vec![1.0, 2.0, 3.0, 1000.0, 1000.0, 1000.0];
        Activation::Softmax.apply(&mut s, 3);
        // softmax([1, 2, 3]) = [0.09003057, 0.24472847, 0.66524096]
        for (a, b) in s.iter().zip([0.090_030_57, 0.244_728_47, 0.665_240_96]) {
            assert!((a - b).abs() < 1e-6);
        }
        // No overflow for large logits.
        assert!(s[3..].iter().all(|v| (v - 1.0 / 3.0).abs() < 1e-6));
        assert!((log_sum_exp(&[1.0, 2.0, 3.0]) - 3.407_606).abs() < 1e-5);
    }
}
