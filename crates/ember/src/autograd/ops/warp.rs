//! Affine warps of NHWC images with bilinear sampling: the op behind the augmentation layers
//! (flips, shifts, rotations). Each sample has its own transform; each output pixel reads the
//! input at `A · (p − centre) + centre + t`, interpolating its four neighbours. The op is
//! linear in the input, so its gradient is the adjoint: each output's gradient is scattered
//! back to the neighbours it read, with the same weights.

use serde::{Deserialize, Serialize};

use crate::autograd::tape::{GradOut, Node, Tape, Var};
use crate::error::{Error, Result};
use crate::tensor::threads::run_jobs;

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

    fn to_array(self) -> [f32; 6] {
        let [[a, b], [c, d]] = self.matrix;
        [a, b, c, d, self.shift[0], self.shift[1]]
    }

    fn from_slice(v: &[f32]) -> Affine {
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

impl Tape {
    /// Warps each image of `x` (batch, height, width, channels) by its own transform.
    pub fn warp(&mut self, x: Var, transforms: &[Affine], fill: FillMode) -> Result<Var> {
        let shape = self.value(x).shape().to_vec();
        let &[batch, height, width, channels] = shape.as_slice() else {
            return Err(Error::shape(
                "warp",
                format!("needs (batch, height, width, channels) images, got {shape:?}"),
            ));
        };
        if transforms.len() != batch {
            return Err(Error::shape(
                "warp",
                format!("{} transforms for {batch} images", transforms.len()),
            ));
        }
        let i = self.push(super::Op::Warp { x, fill }, &shape, self.requires_grad(x));
        let (before, out) = self.split(i);
        out.aux.clear();
        out.aux.extend(transforms.iter().flat_map(|t| t.to_array()));
        let image = height * width * channels;
        let jobs: Vec<_> = before[x.0]
            .value
            .data()
            .chunks(image.max(1))
            .zip(out.value.data_mut().chunks_mut(image.max(1)))
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
        Ok(Var(i))
    }
}

pub(crate) fn backward_warp(x: Var, fill: FillMode, out: &Node, nodes: &mut [Node]) {
    let Some(mut grad) = GradOut::take_zeroed(nodes, x) else {
        return;
    };
    let &[_, height, width, channels] = out.value.shape() else {
        return;
    };
    let image = height * width * channels;
    for ((dx, dy), t) in grad
        .buf
        .data_mut()
        .chunks_mut(image.max(1))
        .zip(out.grad.data().chunks(image.max(1)))
        .zip(out.aux.chunks_exact(6))
    {
        for_each_tap(Affine::from_slice(t), height, width, fill, |o, i, w| {
            let (o, i) = (o * channels, i * channels);
            for (d, g) in dx[i..i + channels].iter_mut().zip(&dy[o..o + channels]) {
                *d += w * g;
            }
        });
    }
    grad.put(nodes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autograd::gradcheck::check_gradients;
    use crate::Tensor;

    fn warp_one(values: &[f32], h: usize, w: usize, t: Affine, fill: FillMode) -> Vec<f32> {
        let mut tape = Tape::new();
        let x = tape.constant(&Tensor::new(&[1, h, w, 1], values.to_vec()).unwrap());
        let y = tape.warp(x, &[t], fill).unwrap();
        tape.value(y).data().to_vec()
    }

    #[test]
    fn flips_shifts_and_fills_by_hand() {
        let row = [1.0, 2.0, 3.0, 4.0];
        let flip = Affine {
            matrix: [[1.0, 0.0], [0.0, -1.0]],
            shift: [0.0, 0.0],
        };
        assert_eq!(
            warp_one(&row, 1, 4, flip, FillMode::Constant),
            [4.0, 3.0, 2.0, 1.0]
        );
        // Output x reads input x + 2: a shift left by two.
        let left = Affine {
            shift: [0.0, 2.0],
            ..Affine::IDENTITY
        };
        assert_eq!(
            warp_one(&row, 1, 4, left, FillMode::Constant),
            [3.0, 4.0, 0.0, 0.0]
        );
        assert_eq!(
            warp_one(&row, 1, 4, left, FillMode::Nearest),
            [3.0, 4.0, 4.0, 4.0]
        );
        assert_eq!(
            warp_one(&row, 1, 4, left, FillMode::Wrap),
            [3.0, 4.0, 1.0, 2.0]
        );
        assert_eq!(
            warp_one(&row, 1, 4, left, FillMode::Reflect),
            [3.0, 4.0, 4.0, 3.0]
        );
        // Half a pixel: the mean of neighbours.
        let half = Affine {
            shift: [0.0, 0.5],
            ..Affine::IDENTITY
        };
        assert_eq!(
            warp_one(&row, 1, 4, half, FillMode::Nearest),
            [1.5, 2.5, 3.5, 4.0]
        );
        // A quarter turn of a 2x2 image maps corners to corners.
        let turn = Affine {
            matrix: [[0.0, -1.0], [1.0, 0.0]],
            shift: [0.0, 0.0],
        };
        let turned = warp_one(&[1.0, 2.0, 3.0, 4.0], 2, 2, turn, FillMode::Constant);
        let mut sorted = turned.clone();
        sorted.sort_by(f32::total_cmp);
        assert_eq!(sorted, [1.0, 2.0, 3.0, 4.0]);
        assert_ne!(turned, [1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let rotate = |angle: f32, shift: [f32; 2]| Affine {
            matrix: [[angle.cos(), -angle.sin()], [angle.sin(), angle.cos()]],
            shift,
        };
        for fill in [
            FillMode::Reflect,
            FillMode::Constant,
            FillMode::Wrap,
            FillMode::Nearest,
        ] {
            // Rotations (taps pixel by pixel) and a shift and a flipped shift (taps by axis).
            let flipped = Affine {
                matrix: [[-1.0, 0.0], [0.0, 1.0]],
                shift: [0.6, -2.2],
            };
            for transforms in [
                [rotate(0.3, [0.4, -1.3]), rotate(-0.2, [-0.7, 0.25])],
                [rotate(0.0, [1.35, -0.4]), flipped],
            ] {
                check_gradients(&[&[2, 4, 5, 2]], 5, |tape, v| {
                    tape.warp(v[0], &transforms, fill)
                })
                .unwrap_or_else(|e| panic!("{fill:?}: {e}"));
            }
        }
    }

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

    #[test]
    fn bad_shapes_are_errors() {
        let mut tape = Tape::new();
        let x = tape.constant(&Tensor::zeros(&[2, 3, 3, 1]));
        assert!(tape
            .warp(x, &[Affine::IDENTITY], FillMode::Constant)
            .is_err());
        let flat = tape.constant(&Tensor::zeros(&[2, 9]));
        assert!(tape
            .warp(flat, &[Affine::IDENTITY; 2], FillMode::Constant)
            .is_err());
    }
}
