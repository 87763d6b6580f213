//! Parameter-update kernels for the optimizers.
//!
//! Adam's update (a square root and a division per weight, every step) is the largest cost
//! after the matrix products, so it is compiled twice: for the baseline x86-64 target and for
//! AVX2, chosen at run time. Both versions round identically (no fused multiply-add), so
//! results do not depend on the machine.

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
pub fn adam(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], step: AdamStep) {
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
            adam(&mut w1, &g, &mut m1, &mut v1, step);
            adam_portable(&mut w2, &g, &mut m2, &mut v2, step);
        }
        assert_eq!((w1, m1, v1), (w2, m2, v2));
    }
}
