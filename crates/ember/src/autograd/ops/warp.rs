//! Affine warps of NHWC images as a recorded op (the augmentation layers); the kernels are in
//! `tensor::warp`.

use crate::autograd::tape::{GradOut, Node, Tape, Var};
use crate::error::Result;
use crate::tensor::warp::{warp, warp_backward, warp_dims};
pub use crate::tensor::warp::{Affine, FillMode};

impl Tape {
    /// Warps each image of `x` (batch, height, width, channels) by its own transform.
    pub fn warp(&mut self, x: Var, transforms: &[Affine], fill: FillMode) -> Result<Var> {
        let shape = self.value(x).shape().to_vec();
        let dims = warp_dims(&shape, transforms.len())?;
        let i = self.push(super::Op::Warp { x, fill }, &shape, self.requires_grad(x));
        let (before, out) = self.split(i);
        out.aux.clear();
        out.aux.extend(transforms.iter().flat_map(|t| t.to_array()));
        warp(
            before[x.0].value.data(),
            dims,
            transforms,
            fill,
            &mut out.value,
        );
        Ok(Var(i))
    }
}

pub(crate) fn backward_warp(x: Var, fill: FillMode, out: &Node, nodes: &mut [Node]) {
    let Some(mut grad) = GradOut::take_zeroed(nodes, x) else {
        return;
    };
    let &[batch, height, width, channels] = out.value.shape() else {
        return;
    };
    let dims = [batch, height, width, channels];
    warp_backward(out.grad.data(), dims, &out.aux, fill, &mut grad.buf);
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
