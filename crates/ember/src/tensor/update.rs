//! Parameter-update kernels for the optimizers: SGD (with momentum, Nesterov), RMSprop, Adam.
//!
//! Adam's update (a square root and a division per weight, every step) is the largest cost
//! after the matrix products, so it is compiled twice: for the baseline x86-64 target and for
//! AVX2, chosen at run time. Both versions round identically (no fused multiply-add), so
//! results do not depend on the machine.

use super::Tensor;

/// Plain SGD: `w -= lr · g`.
pub fn sgd(w: &mut Tensor, g: &Tensor, lr: f32) {
    for (w, &g) in w.data_mut().iter_mut().zip(g.data()) {
        *w -= lr * g;
    }
}

/// SGD with momentum `mu`, Keras's formulation: `m = mu · m − lr · g`, then `w += m` (or,
/// Nesterov, `w += mu · m − lr · g`).
pub fn sgd_momentum(
    w: &mut Tensor,
    g: &Tensor,
    velocity: &mut Tensor,
    lr: f32,
    mu: f32,
    nesterov: bool,
) {
    let velocity = velocity.data_mut();
    for ((w, &g), m) in w.data_mut().iter_mut().zip(g.data()).zip(velocity) {
        *m = mu * *m - lr * g;
        *w += if nesterov { mu * *m - lr * g } else { *m };
    }
}

/// RMSprop's coefficients for one step.
#[derive(Clone, Copy, Debug)]
pub struct RmsPropStep {
    pub lr: f32,
    pub rho: f32,
    pub epsilon: f32,
}

/// One RMSprop step, Keras's formulation (epsilon inside the square root): the mean square
/// `s` updated in place, then `w -= lr · g / sqrt(s + epsilon)`.
pub fn rmsprop(w: &mut Tensor, g: &Tensor, mean_square: &mut Tensor, step: RmsPropStep) {
    let RmsPropStep { lr, rho, epsilon } = step;
    let mean_square = mean_square.data_mut();
    for ((w, &g), s) in w.data_mut().iter_mut().zip(g.data()).zip(mean_square) {
        *s = rho * *s + (1.0 - rho) * g * g;
        *w -= lr * g / (*s + epsilon).sqrt();
    }
}

/// RMSprop with momentum `mu`: `m = mu · m + lr · g / sqrt(s + epsilon)`, then `w -= m`.
pub fn rmsprop_momentum(
    w: &mut Tensor,
    g: &Tensor,
    mean_square: &mut Tensor,
    velocity: &mut Tensor,
    mu: f32,
    step: RmsPropStep,
) {
    let RmsPropStep { lr, rho, epsilon } = step;
    let (mean_square, velocity) = (mean_square.data_mut(), velocity.data_mut());
    let w = w.data_mut().iter_mut();
    for (((w, &g), s), m) in w.zip(g.data()).zip(mean_square).zip(velocity) {
        *s = rho * *s + (1.0 - rho) * g * g;
        *m = mu * *m + lr * g / (*s + epsilon).sqrt();
        *w -= *m;
    }
}

/// Adam's coefficients for one step.
#[derive(Clone, Copy, Debug)]
pub struct AdamStep {
    /// Step size with bias correction folded in: lr · sqrt(1 - β₂ᵗ) / (1 - β₁ᵗ).
    pub alpha: f32,
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
}

/// One Adam step over a parameter: moments `m`, `v` updated in place, then
/// `w -= alpha · m / (sqrt(v) + epsilon)`.
pub fn adam(w: &mut Tensor, g: &Tensor, m: &mut Tensor, v: &mut Tensor, step: AdamStep) {
    adam_dispatch(w.data_mut(), g.data(), m.data_mut(), v.data_mut(), step);
}

/// [`adam`] over slices: the AVX2 build where the CPU has it.
fn adam_dispatch(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], step: AdamStep) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { adam_avx2(w, g, m, v, step) };
    }
    adam_portable(w, g, m, v, step)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn adam_avx2(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], step: AdamStep) {
    adam_portable(w, g, m, v, step)
}

#[inline(always)]
fn adam_portable(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], step: AdamStep) {
    let (a1, a2) = (1.0 - step.beta_1, 1.0 - step.beta_2);
    let (alpha, eps) = (step.alpha, step.epsilon);
    for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        *m += (g - *m) * a1;
        *v += (g * g - *v) * a2;
        *w -= alpha * *m / (v.sqrt() + eps);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatched_and_portable_versions_agree_bit_for_bit() {
        let n = 37; // not a multiple of the vector width
        let g: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.7).sin() * 1e-3).collect();
        let step = AdamStep {
            alpha: 1e-3,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
        };
        let (mut w1, mut m1, mut v1) = (vec![0.5f32; n], vec![1e-4f32; n], vec![1e-8f32; n]);
        let (mut w2, mut m2, mut v2) = (w1.clone(), m1.clone(), v1.clone());
        for _ in 0..5 {
            adam_dispatch(&mut w1, &g, &mut m1, &mut v1, step);
            adam_portable(&mut w2, &g, &mut m2, &mut v2, step);
        }
        assert_eq!((w1, m1, v1), (w2, m2, v2));
    }
}
