//! Convolution (fused with bias and activation) and max pooling, channels last (NHWC).
//! The convolution is im2col followed by one matrix product; the patches are kept for the
//! backward pass, where the kernel's gradient is another product and the input's is col2im.

use crate::autograd::tape::{GradOut, Node, Scratch, Tape, Var};
use crate::error::{Error, Result};
use crate::tensor::activation::Activation;
use crate::tensor::conv::{
    avg_pool, avg_pool_backward, col2im_add, im2col, max_pool, max_pool_backward, Window,
};
use crate::tensor::matmul::{matmul, MatRef};

/// A pooling kernel: input, window, output.
type PoolKernel = fn(&[f32], &Window, &mut [f32]);

impl Tape {
    /// `activation(conv2d(x, kernel) + bias)`. x: (batch, height, width, channels);
    /// kernel: (kh, kw, channels, filters) as in Keras; bias: (filters).
    pub fn conv2d(
        &mut self,
        x: Var,
        kernel: Var,
        bias: Option<Var>,
        strides: (usize, usize),
        same: bool,
        activation: Activation,
    ) -> Result<Var> {
        let ks = self.value(kernel).shape().to_vec();
        let &[kh, kw, channels, filters] = ks.as_slice() else {
            return Err(Error::shape(
                "conv2d",
                format!("kernel must be (kh, kw, channels, filters), got {ks:?}"),
            ));
        };
        let window = Window::new(self.value(x).shape(), (kh, kw), strides, same)?;
        if window.channels != channels {
            return Err(Error::shape(
                "conv2d",
                format!(
                    "input has {} channels, the kernel expects {channels}",
                    window.channels
                ),
            ));
        }
        if let Some(b) = bias {
            if self.value(b).shape() != [filters] {
                return Err(Error::shape(
                    "conv2d",
                    format!("bias {:?} should be [{filters}]", self.value(b).shape()),
                ));
            }
        }
        let requires_grad = self.requires_grad(x)
            || self.requires_grad(kernel)
            || bias.is_some_and(|b| self.requires_grad(b));
        let shape = [window.batch, window.out_height, window.out_width, filters];
        let op = super::Op::Conv2d {
            x,
            kernel,
            bias,
            activation,
            window,
        };
        let i = self.push(op, &shape, requires_grad);
        let (before, out) = self.split(i);
        let Node { value, aux, .. } = out;
        im2col(before[x.0].value.data(), &window, aux);
        let out = value.data_mut();
        if let Some(b) = bias {
            for row in out.chunks_mut(filters) {
                row.copy_from_slice(before[b.0].value.data());
            }
        }
        matmul(
            out,
            MatRef::new(aux, window.positions(), window.patch_len()),
            MatRef::new(before[kernel.0].value.data(), window.patch_len(), filters),
            bias.is_some(),
        );
        activation.apply(out, filters);
        Ok(Var(i))
    }

    /// Max pooling of (batch, height, width, channels) over `pool`-sized windows.
    pub fn max_pool2d(
        &mut self,
        x: Var,
        pool: (usize, usize),
        strides: (usize, usize),
        same: bool,
    ) -> Result<Var> {
        self.pool2d(
            x,
            Window::new(self.value(x).shape(), pool, strides, same)?,
            false,
        )
    }

    /// Average pooling of (batch, height, width, channels) over `pool`-sized windows.
    pub fn avg_pool2d(
        &mut self,
        x: Var,
        pool: (usize, usize),
        strides: (usize, usize),
        same: bool,
    ) -> Result<Var> {
        self.pool2d(
            x,
            Window::new(self.value(x).shape(), pool, strides, same)?,
            true,
        )
    }

    fn pool2d(&mut self, x: Var, window: Window, average: bool) -> Result<Var> {
        let shape = [
            window.batch,
            window.out_height,
            window.out_width,
            window.channels,
        ];
        let (op, kernel): (_, PoolKernel) = if average {
            (super::Op::AvgPool2d { x, window }, avg_pool)
        } else {
            (super::Op::MaxPool2d { x, window }, max_pool)
        };
        let i = self.push(op, &shape, self.requires_grad(x));
        let (before, out) = self.split(i);
        kernel(before[x.0].value.data(), &window, out.value.data_mut());
        Ok(Var(i))
    }
}

pub(crate) fn backward_avg_pool(x: Var, window: &Window, out: &Node, nodes: &mut [Node]) {
    let Some(mut grad) = GradOut::take_zeroed(nodes, x) else {
        return;
    };
    avg_pool_backward(out.grad.data(), window, grad.buf.data_mut());
    grad.put(nodes);
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn backward_conv2d(
    x: Var,
    kernel: Var,
    bias: Option<Var>,
    activation: Activation,
    window: &Window,
    out: &Node,
    nodes: &mut [Node],
    scratch: &mut Scratch,
) {
    let filters = *out.value.shape().last().expect("conv output is 4-D");
    let (rows, k) = (window.positions(), window.patch_len());
    let Scratch { first, second } = scratch;
    let dz: &[f32] = if activation == Activation::Linear {
        out.grad.data()
    } else {
        first.resize(out.value.len(), 0.0);
        activation.backward(out.value.data(), out.grad.data(), first, filters, false);
        first
    };
    let dz_mat = MatRef::new(dz, rows, filters);
    if let Some(mut grad) = GradOut::take(nodes, kernel) {
        // dK = patchesᵀ · dz
        let acc = grad.accumulate;
        matmul(
            grad.buf.data_mut(),
            MatRef::new(&out.aux, rows, k).t(),
            dz_mat,
            acc,
        );
        grad.put(nodes);
    }
    if let Some(mut grad) = bias.and_then(|b| GradOut::take_zeroed(nodes, b)) {
        let gd = grad.buf.data_mut();
        for row in dz.chunks(filters) {
            gd.iter_mut().zip(row).for_each(|(d, v)| *d += v);
        }
        grad.put(nodes);
    }
    if let Some(mut grad) = GradOut::take_zeroed(nodes, x) {
        // d patches = dz · Kᵀ, then each patch goes back where it came from.
        second.resize(rows * k, 0.0);
        let kv = MatRef::new(nodes[kernel.0].value.data(), k, filters);
        matmul(second, dz_mat, kv.t(), false);
        col2im_add(second, window, grad.buf.data_mut());
        grad.put(nodes);
    }
}

pub(crate) fn backward_max_pool(x: Var, window: &Window, out: &Node, nodes: &mut [Node]) {
    let Some(mut grad) = GradOut::take_zeroed(nodes, x) else {
        return;
    };
    let xv = nodes[x.0].value.data();
    max_pool_backward(
        xv,
        out.value.data(),
        out.grad.data(),
        window,
        grad.buf.data_mut(),
    );
    grad.put(nodes);
}

#[cfg(test)]
mod tests {
    use crate::autograd::gradcheck::check_gradients;
    use crate::tensor::activation::Activation;
    use crate::{Tape, Tensor};

    #[test]
    fn conv2d_gradients_match_finite_differences() {
        for (same, strides, act) in [
            (false, (1, 1), Activation::Linear),
            (true, (1, 1), Activation::Relu),
            (true, (2, 2), Activation::Tanh),
            (false, (2, 1), Activation::Sigmoid),
        ] {
            check_gradients(&[&[2, 5, 4, 3], &[3, 2, 3, 2], &[2]], 19, |tape, v| {
                tape.conv2d(v[0], v[1], Some(v[2]), strides, same, act)
            })
            .unwrap_or_else(|e| panic!("same {same} strides {strides:?} {act:?}: {e}"));
        }
    }

    #[test]
    fn max_pool_gradients_match_finite_differences() {
        // Random inputs have distinct values, so each window has one clear winner.
        check_gradients(&[&[2, 4, 5, 3]], 23, |tape, v| {
            tape.max_pool2d(v[0], (2, 2), (2, 2), false)
        })
        .unwrap();
        check_gradients(&[&[1, 5, 5, 2]], 29, |tape, v| {
            tape.max_pool2d(v[0], (3, 3), (2, 2), true)
        })
        .unwrap();
    }

    #[test]
    fn avg_pool_gradients_match_finite_differences() {
        check_gradients(&[&[2, 4, 5, 3]], 31, |tape, v| {
            tape.avg_pool2d(v[0], (2, 2), (2, 2), false)
        })
        .unwrap();
        check_gradients(&[&[1, 5, 5, 2]], 37, |tape, v| {
            tape.avg_pool2d(v[0], (3, 3), (2, 2), true)
        })
        .unwrap();
    }

    #[test]
    fn convolution_by_hand() {
        // 3x3 image 1..9, one 2x2 kernel [[1, 0], [0, -1]], bias 10: out = x[i][j] - x[i+1][j+1] + 10
        let mut tape = Tape::new();
        let x = tape
            .constant(&Tensor::new(&[1, 3, 3, 1], (1..=9).map(|v| v as f32).collect()).unwrap());
        let k = tape.constant(&Tensor::new(&[2, 2, 1, 1], vec![1., 0., 0., -1.]).unwrap());
        let b = tape.constant(&Tensor::new(&[1], vec![10.]).unwrap());
        let y = tape
            .conv2d(x, k, Some(b), (1, 1), false, Activation::Linear)
            .unwrap();
        assert_eq!(tape.value(y).shape(), &[1, 2, 2, 1]);
        assert_eq!(tape.value(y).data(), &[6., 6., 6., 6.]);
        let wrong = tape.constant(&Tensor::zeros(&[2, 2, 3, 1]));
        assert!(tape
            .conv2d(x, wrong, None, (1, 1), false, Activation::Linear)
            .is_err());
    }
}
