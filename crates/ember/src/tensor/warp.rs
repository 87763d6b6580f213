//! Affine warps of NHWC images with bilinear sampling: the kernels behind the augmentation
//! layers (flips, shifts, rotations). Each sample has its own transform; each output pixel reads
//! the input at `A · (p − centre) + centre + t`, interpolating its four neighbours. The warp is
//! linear in the input, so its gradient is the adjoint: each output's gradient is scattered
//! back to the neighbours it read, with the same weights.

use serde::{Deserialize, Serialize};

use super::threads::run_jobs;
use super::Tensor;
use crate::error::{Error, Result};

/// How points outside the image are filled (Keras's `fill_mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FillMode {
    /// Mirror about the edge: `d c b a | a b c d | d c b a` (Keras's default).
    #[default]
    Reflect,
    /// Repeat the image: `a b c d | a b c d | a b c d`.
    Wrap,
    /// Repeat the edge pixel: `a a a a | a b c d | d d d d`.
    Nearest,
    /// Zeros outside.
    Constant,
}

impl FillMode {
    /// The pixel index that coordinate `i` reads along an axis of `n` pixels (None: a zero).
    #[inline]
    fn index(self, i: i64, n: usize) -> Option<usize> {
        let n = n as i64;
        if (0..n).contains(&i) {
            return Some(i as usize);
        }
        match self {
            FillMode::Constant => None,
            FillMode::Nearest => Some(i.clamp(0, n - 1) as usize),
            FillMode::Wrap => Some(i.rem_euclid(n) as usize),
            FillMode::Reflect => {
                let period = 2 * n;
                let m = i.rem_euclid(period);
                Some(if m < n { m } else { period - 1 - m } as usize)
            }
        }
    }
}

/// One sample's transform: source = `matrix · (y − cy, x − cx) + (cy, cx) + shift`, in pixels
/// (rows first).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Affine {
    pub matrix: [[f32; 2]; 2],
    pub shift: [f32; 2],
}

impl Affine {
    pub const IDENTITY: Affine = Affine {
        matrix: [[1.0, 0.0], [0.0, 1.0]],
        shift: [0.0, 0.0],
    };

    /// The transform as six numbers (matrix row by row, then the shift).
    pub fn to_array(self) -> [f32; 6] {
        let [[a, b], [c, d]] = self.matrix;
        [a, b, c, d, self.shift[0], self.shift[1]]
    }

    /// The transform from [`Affine::to_array`]'s six numbers.
    pub fn from_slice(v: &[f32]) -> Affine {
        Affine {
            matrix: [[v[0], v[1]], [v[2], v[3]]],
            shift: [v[4], v[5]],
        }
    }
}

/// Calls `f(output pixel, input pixel, weight)` for every bilinear tap of one sample, output
/// pixels in order and, within one, its taps row by row.
fn for_each_tap(
    t: Affine,
    height: usize,
    width: usize,
    fill: FillMode,
    f: impl FnMut(usize, usize, f32),
) {
    let [[_, b], [c, _]] = t.matrix;
    if b == 0.0 && c == 0.0 {
        for_each_tap_separable(t, height, width, fill, f)
    } else {
        for_each_tap_general(t, height, width, fill, f)
    }
}

/// The bilinear taps along one axis: the input coordinate `scale · (i − center) + center +
/// shift` of each output coordinate `i`, as up to two (input index, weight) pairs (`None` where
/// the tap has no weight or falls on a zero fill).
type AxisTaps = Vec<[Option<(usize, f32)>; 2]>;

fn axis_taps(scale: f32, shift: f32, n: usize, fill: FillMode) -> AxisTaps {
    let center = (n as f32 - 1.0) / 2.0;
    (0..n)
        .map(|i| {
            let source = scale * (i as f32 - center) + center + shift;
            let low = source.floor();
            let frac = source - low;
            let low = low as i64;
            let tap = |index: i64, weight: f32| {
                (weight != 0.0)
                    .then(|| fill.index(index, n).map(|i| (i, weight)))
                    .flatten()
            };
            [tap(low, 1.0 - frac), tap(low + 1, frac)]
        })
        .collect()
}

/// Flips and shifts: the source row depends on the output row alone, and the column on the
/// column, so each axis's taps are worked out once per image rather than once per pixel. The
/// taps and their order are exactly those of [`for_each_tap_general`].
fn for_each_tap_separable(
    t: Affine,
    height: usize,
    width: usize,
    fill: FillMode,
    mut f: impl FnMut(usize, usize, f32),
) {
    let rows = axis_taps(t.matrix[0][0], t.shift[0], height, fill);
    let cols = axis_taps(t.matrix[1][1], t.shift[1], width, fill);
    for (y, row_taps) in rows.iter().enumerate() {
        for (x, col_taps) in cols.iter().enumerate() {
            let out = y * width + x;
            for &(row, weight_y) in row_taps.iter().flatten() {
                for &(col, weight_x) in col_taps.iter().flatten() {
                    f(out, row * width + col, weight_y * weight_x);
                }
            }
        }
    }
}

/// Any affine transform, pixel by pixel.
fn for_each_tap_general(
    t: Affine,
    height: usize,
    width: usize,
    fill: FillMode,
    mut f: impl FnMut(usize, usize, f32),
) {
    let (cy, cx) = ((height as f32 - 1.0) / 2.0, (width as f32 - 1.0) / 2.0);
    let [[a, b], [c, d]] = t.matrix;
    for y in 0..height {
        for x in 0..width {
            let (dy, dx) = (y as f32 - cy, x as f32 - cx);
            let sy = a * dy + b * dx + cy + t.shift[0];
            let sx = c * dy + d * dx + cx + t.shift[1];
            let (y0, x0) = (sy.floor(), sx.floor());
            let (wy, wx) = (sy - y0, sx - x0);
            let (y0, x0) = (y0 as i64, x0 as i64);
            let out = y * width + x;
            for (iy, weight_y) in [(y0, 1.0 - wy), (y0 + 1, wy)] {
                if weight_y == 0.0 {
                    continue;
                }
                let Some(row) = fill.index(iy, height) else {
                    continue;
                };
                for (ix, weight_x) in [(x0, 1.0 - wx), (x0 + 1, wx)] {
                    if weight_x == 0.0 {
                        continue;
                    }
                    if let Some(col) = fill.index(ix, width) {
                        f(out, row * width + col, weight_y * weight_x);
                    }
                }
            }
        }
    }
}

/// Checks a warp's operands, images (batch, height, width, channels) and one transform per
/// image: returns the image shape.
pub fn warp_dims(x: &[usize], transforms: usize) -> Result<[usize; 4]> {
    let &[batch, height, width, channels] = x else {
        return Err(Error::shape(
            "warp",
            format!("needs (batch, height, width, channels) images, got {x:?}"),
        ));
    };
    if transforms != batch {
        return Err(Error::shape(
            "warp",
            format!("{transforms} transforms for {batch} images"),
        ));
    }
    Ok([batch, height, width, channels])
}

/// Warps each image of `x` by its own transform into `out`.
pub fn warp(
    x: &[f32],
    [_, height, width, channels]: [usize; 4],
    transforms: &[Affine],
    fill: FillMode,
    out: &mut Tensor,
) {
    let image = height * width * channels;
    let jobs: Vec<_> = x
        .chunks(image.max(1))
        .zip(out.data_mut().chunks_mut(image.max(1)))
        .zip(transforms)
        .collect();
    run_jobs(jobs, |((src, dst), &t)| {
        dst.fill(0.0);
        for_each_tap(t, height, width, fill, |o, i, w| {
            let (o, i) = (o * channels, i * channels);
            for (d, s) in dst[o..o + channels].iter_mut().zip(&src[i..i + channels]) {
                *d += w * s;
            }
        });
    });
}

/// The gradient of [`warp`], added into `dx`; `transforms` as [`Affine::to_array`] gives them,
/// one after another.
pub fn warp_backward(
    dy: &[f32],
    [_, height, width, channels]: [usize; 4],
    transforms: &[f32],
    fill: FillMode,
    dx: &mut Tensor,
) {
    let image = height * width * channels;
    for ((dx, dy), t) in dx
        .data_mut()
        .chunks_mut(image.max(1))
        .zip(dy.chunks(image.max(1)))
        .zip(transforms.chunks_exact(6))
    {
        for_each_tap(Affine::from_slice(t), height, width, fill, |o, i, w| {
            let (o, i) = (o * channels, i * channels);
            for (d, g) in dx[i..i + channels].iter_mut().zip(&dy[o..o + channels]) {
                *d += w * g;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_and_shifts_take_exactly_the_general_taps() {
        let mut rng = crate::tensor::random::Rng::seed(7);
        for fill in [
            FillMode::Reflect,
            FillMode::Constant,
            FillMode::Wrap,
            FillMode::Nearest,
        ] {
            for _ in 0..50 {
                let sign = |rng: &mut crate::tensor::random::Rng| {
                    if rng.below(2) == 0 {
                        1.0
                    } else {
                        -1.0
                    }
                };
                let t = Affine {
                    matrix: [[sign(&mut rng), 0.0], [0.0, sign(&mut rng)]],
                    // Whole and half pixels too, where one of the two taps has no weight.
                    shift: [
                        (rng.uniform_range(-6.0, 6.0) * 2.0).round() / 2.0,
                        rng.uniform_range(-6.0, 6.0),
                    ],
                };
                let (mut fast, mut general) = (Vec::new(), Vec::new());
                for_each_tap_separable(t, 5, 7, fill, |o, i, w| fast.push((o, i, w)));
                for_each_tap_general(t, 5, 7, fill, |o, i, w| general.push((o, i, w)));
                assert_eq!(fast, general, "{t:?} {fill:?}");
            }
        }
    }
}
