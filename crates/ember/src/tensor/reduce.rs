//! Reductions of all elements to a scalar, and their gradients.

use super::elementwise::store;
use super::Tensor;

/// `factor · Σ x`, accumulated in f64: a long f32 sum loses digits the gradient checker would
/// notice.
pub fn scaled_sum(x: &[f32], factor: f32) -> f32 {
    let total: f64 = x.iter().map(|&v| v as f64).sum();
    (total * factor as f64) as f32
}

/// `Σ x²`, accumulated in f64 (a gradient's squared norm, for clipping).
pub fn sum_of_squares(x: &[f32]) -> f64 {
    x.iter().map(|&v| v as f64 * v as f64).sum()
}

/// The factor of a mean over `len` elements.
pub fn mean_factor(len: usize) -> f32 {
    1.0 / len.max(1) as f32
}

/// The gradient of `factor · Σ x`: every element receives `factor` times the scalar's gradient.
pub fn scaled_sum_backward(grad_y: f32, factor: f32, grad_x: &mut Tensor, accumulate: bool) {
    let g = grad_y * factor;
    store(grad_x.data_mut(), std::iter::repeat(g), accumulate);
}

/// Copies `src` into `dst`, or adds it when accumulating (the gradient of a reshape).
pub fn copy_backward(src: &[f32], dst: &mut Tensor, accumulate: bool) {
    store(dst.data_mut(), src.iter().copied(), accumulate);
}

/// The smallest and largest of `x` (None if it is empty or holds a NaN).
pub fn min_max(x: &[f32]) -> Option<(f32, f32)> {
    let mut values = x.iter().copied();
    let first = values.next()?;
    let (lo, hi) = values.fold((first, first), |(lo, hi), v| (lo.min(v), hi.max(v)));
    match x.iter().any(|v| v.is_nan()) {
        true => None,
        false => Some((lo, hi)),
    }
}
