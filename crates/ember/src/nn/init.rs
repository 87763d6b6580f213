//! Weight initialisers, with Keras's definitions.

use crate::tensor::random::{uniform_tensor, Rng};
use crate::tensor::Tensor;

/// Glorot (Xavier) uniform: U(-l, l) with l = sqrt(6 / (fan_in + fan_out)); Keras's default kernel.
pub fn glorot_uniform(shape: &[usize], fan_in: usize, fan_out: usize, rng: &mut Rng) -> Tensor {
    let limit = (6.0 / (fan_in + fan_out).max(1) as f32).sqrt();
    uniform_tensor(shape, -limit, limit, rng)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glorot_uniform_has_the_keras_range_and_variance() {
        let t = glorot_uniform(&[784, 64], 784, 64, &mut Rng::seed(1));
        let limit = (6.0f32 / 848.0).sqrt();
        assert!(t.data().iter().all(|v| v.abs() <= limit));
        let n = t.len() as f64;
        let mean = t.data().iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = t
            .data()
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        // U(-l, l) has variance l²/3 = 2 / (fan_in + fan_out).
        assert!(mean.abs() < 1e-3);
        assert!((var / (2.0 / 848.0) - 1.0).abs() < 0.02, "variance {var}");
    }
}
