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
    /// The Gaussian error linear unit in its exact form, `x · Φ(x)` with the normal CDF
    /// through erf (BERT's "gelu"; Keras's `gelu` with `approximate=False`).
    Gelu,
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
            Activation::Gelu => "gelu",
        }
    }

    /// Applies the activation in place; `row_len` is the size of the last axis (for softmax).
    pub fn apply(self, values: &mut [f32], row_len: usize) {
        match self {
            Activation::Linear => {}
            Activation::Relu => values.iter_mut().for_each(|v| *v = v.max(0.0)),
            Activation::Sigmoid => values.iter_mut().for_each(|v| *v = sigmoid(*v)),
            Activation::Tanh => tanh_in_place(values),
            Activation::Softmax => values.chunks_mut(row_len.max(1)).for_each(softmax_in_place),
            Activation::Gelu => gelu_in_place(values),
        }
    }

    /// Applies the activation to a tensor in place, softmax over its last axis.
    pub fn apply_to(self, x: &mut super::Tensor) {
        let row_len = x.row_len_last();
        self.apply(x.data_mut(), row_len);
    }

    /// The gradient of `y = activation(x)` from `x`, `y` and the output's gradient `grad_y`,
    /// written into `grad_x` (shaped like `x`), or added with `accumulate`.
    pub fn gradient(
        self,
        (x, y): (&[f32], &[f32]),
        grad_y: &[f32],
        grad_x: &mut super::Tensor,
        accumulate: bool,
    ) {
        let row_len = grad_x.row_len_last();
        if self.needs_input() {
            self.backward_from_input(x, grad_y, grad_x.data_mut(), accumulate);
        } else {
            self.backward(y, grad_y, grad_x.data_mut(), row_len, accumulate);
        }
    }

    /// Whether the gradient needs the activation's input (GELU) rather than its output.
    pub fn needs_input(self) -> bool {
        self == Activation::Gelu
    }

    /// Gradient with respect to the input `x`, for activations whose derivative is not a
    /// function of their output ([`Activation::needs_input`]); the others defer to
    /// [`Activation::backward`] with `y`.
    pub fn backward_from_input(
        self,
        x: &[f32],
        grad_y: &[f32],
        grad_x: &mut [f32],
        accumulate: bool,
    ) {
        debug_assert!(self.needs_input());
        zip3(x, grad_y, grad_x, |x, g, d| {
            let v = g * gelu_derivative(x);
            if accumulate {
                *d += v
            } else {
                *d = v
            }
        });
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
            Activation::Gelu => {
                unreachable!("GELU's gradient needs its input: backward_from_input")
            }
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

impl Activation {
    /// [`Activation::backward`] in place: `grad` holds the output's gradient on entry and the
    /// input's on return.
    pub fn backward_in_place(self, y: &[f32], grad: &mut [f32], row_len: usize) {
        let each = |grad: &mut [f32], f: fn(f32, f32) -> f32| {
            for (g, &y) in grad.iter_mut().zip(y) {
                *g = f(y, *g);
            }
        };
        match self {
            Activation::Linear => {}
            Activation::Relu => each(grad, |y, g| if y > 0.0 { g } else { 0.0 }),
            Activation::Sigmoid => each(grad, |y, g| g * y * (1.0 - y)),
            Activation::Tanh => each(grad, |y, g| g * (1.0 - y * y)),
            Activation::Softmax => {
                let n = row_len.max(1);
                for (y, g) in y.chunks(n).zip(grad.chunks_mut(n)) {
                    let dot: f32 = y.iter().zip(g.iter()).map(|(a, b)| a * b).sum();
                    g.iter_mut().zip(y).for_each(|(g, &y)| *g = y * (*g - dot));
                }
            }
            Activation::Gelu => {
                unreachable!("GELU's gradient needs its input: backward_from_input")
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

/// [`gelu`] over a slice, with AVX-512 or AVX2 + FMA chosen at run time where the CPU has
/// them (the same fused multiply-adds everywhere, so the results do not depend on it).
pub fn gelu_in_place(values: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return unsafe { gelu_avx512(values) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX2 and FMA, checked just above.
            return unsafe { gelu_avx2(values) };
        }
    }
    values.iter_mut().for_each(|v| *v = gelu(*v));
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn gelu_avx512(values: &mut [f32]) {
    values.iter_mut().for_each(|v| *v = gelu(*v));
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn gelu_avx2(values: &mut [f32]) {
    values.iter_mut().for_each(|v| *v = gelu(*v));
}

/// Exact GELU, `x/2 · (1 + erf(x/√2))` (the erf form, not the tanh approximation).
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// The error function in f32: a rational minimax approximation `x · P(x²) / Q(x²)` on
/// [−4, 4] (beyond which erf is ±1 in f32), the form Eigen and XLA use. Within 4e-7 of the
/// exact value everywhere (tested against f64 `erf`); branch-free, so loops over it
/// vectorise.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    p = p.mul_add(x2, 2.770_681_4e-8);
    p = p.mul_add(x2, -2.101_024e-6);
    p = p.mul_add(x2, -5.692_506_4e-5);
    p = p.mul_add(x2, -7.349_906_3e-4);
    p = p.mul_add(x2, -2.954_600_5e-3);
    p = p.mul_add(x2, -1.609_603_3e-2);
    let mut q = -1.456_607_2e-5_f32;
    q = q.mul_add(x2, -2.133_740_6e-4);
    q = q.mul_add(x2, -1.682_827e-3);
    q = q.mul_add(x2, -7.373_329e-3);
    q = q.mul_add(x2, -1.426_474e-2);
    x * p / q
}

/// d gelu / dx = Φ(x) + x · φ(x).
fn gelu_derivative(x: f32) -> f32 {
    let x = x as f64;
    let cdf = 0.5 * (1.0 + libm::erf(x * std::f64::consts::FRAC_1_SQRT_2));
    let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
    (cdf + x * pdf) as f32
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

/// `exp(x)` in f32 by Cephes's method (x = n·ln 2 + r, |r| ≤ ln 2 / 2, a degree-6 polynomial
/// for e^r, 2^n from the exponent bits), within 2 ulp of the exact value for x up to 88; 0
/// below −87.34, where e^x leaves f32's normal numbers (and for −∞). Branch-free, so loops
/// over it vectorise, and made of fused multiply-adds, so its results do not depend on the
/// instructions chosen.
#[inline(always)]
pub fn exp_poly(x: f32) -> f32 {
    const LOW: f32 = -87.336_55;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let xc = x.clamp(LOW, 88.0);
    let n = xc.mul_add(std::f32::consts::LOG2_E, 0.5).floor();
    let r = n.mul_add(-LN2_LO, n.mul_add(-LN2_HI, xc));
    let mut p = 1.987_569_1e-4_f32;
    p = p.mul_add(r, 1.398_199_9e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 0.5);
    let y = p.mul_add(r * r, r) + 1.0;
    let e = y * f32::from_bits(((n as i32 + 127) as u32) << 23);
    if x < LOW {
        0.0
    } else {
        e
    }
}

/// `tanh(x)` in f32 by Cephes's method: an odd polynomial below |x| = 0.625, and
/// 1 − 2 / (e^{2|x|} + 1) (through [`exp_poly`]) above, with x's sign; within 3 ulp of the
/// exact value; NaN stays NaN. Branch-free, so loops over it vectorise (libm's `tanhf` is a
/// call per value, the largest cost of a small tanh network's step).
#[inline(always)]
pub fn tanh_poly(x: f32) -> f32 {
    let a = x.abs();
    let large = (1.0 - 2.0 / (exp_poly(2.0 * a) + 1.0)).copysign(x);
    let z = x * x;
    let mut p = -5.704_988_7e-3_f32;
    p = p.mul_add(z, 2.063_909e-2);
    p = p.mul_add(z, -5.373_971_6e-2);
    p = p.mul_add(z, 1.333_144_2e-1);
    p = p.mul_add(z, -3.333_328e-1);
    let small = (p * z).mul_add(x, x);
    if a < 0.625 {
        small
    } else {
        large
    }
}

/// [`tanh_poly`] over `values`, with AVX-512 or AVX2 + FMA chosen at run time (its fused
/// multiply-adds are then instructions, not calls; the results are the same).
pub fn tanh_in_place(values: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return unsafe { tanh_avx512(values) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX2 and FMA, checked just above.
            return unsafe { tanh_avx2(values) };
        }
    }
    values.iter_mut().for_each(|v| *v = tanh_poly(*v));
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn tanh_avx512(values: &mut [f32]) {
    values.iter_mut().for_each(|v| *v = tanh_poly(*v));
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn tanh_avx2(values: &mut [f32]) {
    values.iter_mut().for_each(|v| *v = tanh_poly(*v));
}

/// [`softmax_in_place`] with [`exp_poly`] and lane-parallel maximum and sum (16 lanes, the
/// same order on every CPU), with AVX-512 or AVX2 + FMA chosen at run time: attention's
/// softmax, over rows of a sequence's length. Within a few ulp of [`softmax_in_place`].
pub fn softmax_fast(row: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return unsafe { softmax_fast_avx512(row) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX2 and FMA, checked just above.
            return unsafe { softmax_fast_avx2(row) };
        }
    }
    softmax_fast_portable(row)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn softmax_fast_avx512(row: &mut [f32]) {
    softmax_fast_portable(row)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn softmax_fast_avx2(row: &mut [f32]) {
    softmax_fast_portable(row)
}

#[inline(always)]
fn softmax_fast_portable(row: &mut [f32]) {
    const LANES: usize = 16;
    let split = row.len() / LANES * LANES;
    let mut lanes = [f32::NEG_INFINITY; LANES];
    for chunk in row[..split].chunks_exact(LANES) {
        for (m, &v) in lanes.iter_mut().zip(chunk) {
            *m = m.max(v);
        }
    }
    let max = row[split..]
        .iter()
        .chain(&lanes)
        .fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let mut sums = [0.0f32; LANES];
    for chunk in row[..split].chunks_exact_mut(LANES) {
        for (s, v) in sums.iter_mut().zip(chunk) {
            *v = exp_poly(*v - max);
            *s += *v;
        }
    }
    let mut sum = 0.0;
    for v in &mut row[split..] {
        *v = exp_poly(*v - max);
        sum += *v;
    }
    let sum = sums.iter().fold(sum, |a, &b| a + b);
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
    fn the_polynomial_tanh_is_within_three_ulp() {
        let mut worst = 0.0f64;
        let mut x = -12.0f32;
        while x < 12.0 {
            let exact = (x as f64).tanh();
            let got = tanh_poly(x) as f64;
            if exact != 0.0 {
                worst = worst.max(((got - exact) / exact).abs() / f32::EPSILON as f64);
            }
            x += 0.000_731;
        }
        assert!(worst <= 3.0, "tanh_poly is off by {worst} epsilon");
        for tiny in [1e-30f32, -1e-8, 1e-4, 0.624_999, 0.625, -0.625] {
            let exact = (tiny as f64).tanh();
            assert!(((tanh_poly(tiny) as f64 - exact) / exact).abs() < 3.0 * f32::EPSILON as f64);
        }
        assert_eq!(tanh_poly(0.0), 0.0);
        assert_eq!(tanh_poly(f32::INFINITY), 1.0);
        assert_eq!(tanh_poly(f32::NEG_INFINITY), -1.0);
        assert_eq!(tanh_poly(-1e30), -1.0);
        assert!(tanh_poly(f32::NAN).is_nan());
    }

    #[test]
    fn the_polynomial_exp_is_within_two_ulp_and_its_softmax_matches() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let exact = (x as f64).exp();
            let got = exp_poly(x) as f64;
            // Relative error in units of f32's epsilon (one ulp is between ε/2 and ε).
            worst = worst.max(((got - exact) / exact).abs() / f32::EPSILON as f64);
            x += 0.0137;
        }
        assert!(worst <= 2.0, "exp_poly is off by {worst} epsilon");
        assert_eq!(exp_poly(0.0), 1.0);
        assert_eq!(exp_poly(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_poly(-100.0), 0.0);
        for len in [1, 5, 16, 17, 100, 256] {
            let row: Vec<f32> = (0..len)
                .map(|i| ((i * 37 % 11) as f32 - 5.0) * 1.7)
                .collect();
            let (mut fast, mut exact) = (row.clone(), row);
            softmax_fast(&mut fast);
            softmax_in_place(&mut exact);
            for (a, b) in fast.iter().zip(&exact) {
                assert!(
                    (a - b).abs() <= 4.0 * f32::EPSILON * b.max(1e-30),
                    "{a} vs {b}"
                );
            }
        }
        // Masked keys (−∞) get exactly nothing.
        let mut masked = vec![1.0, f32::NEG_INFINITY, 2.0];
        softmax_fast(&mut masked);
        assert_eq!(masked[1], 0.0);
    }

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
        // erf against the f64 reference over [-6, 6].
        let worst = (-60_000..=60_000)
            .map(|i| i as f32 * 1e-4)
            .map(|x| (erf(x) as f64 - libm::erf(x as f64)).abs())
            .fold(0.0, f64::max);
        assert!(worst < 4e-7, "erf is off by {worst}");
        // torch.nn.functional.gelu(torch.tensor([-3., -1., 0., 0.5, 2.])) (exact form)
        let mut g = vec![-3.0, -1.0, 0.0, 0.5, 2.0];
        Activation::Gelu.apply(&mut g, 5);
        for (a, b) in g
            .iter()
            .zip([-0.004_049_7, -0.158_655_3, 0.0, 0.345_731_1, 1.954_5])
        {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }
}
