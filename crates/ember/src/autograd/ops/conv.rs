//! Convolution (fused with bias and activation) and pooling as recorded ops, channels last
//! (NHWC); the kernels are in `tensor::conv2d`.

use crate::autograd::tape::{GradOut, Node, Tape, Var};
use crate::error::Result;
use crate::tensor::activation::Activation;
use crate::tensor::conv::Window;
pub use crate::tensor::conv::{force_conv_algorithm, ConvAlgorithm};
use crate::tensor::conv2d::{
    conv2d, conv2d_backward, conv2d_per_sample_grads, conv2d_window, pool2d, pool2d_backward,
};

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
        if activation.needs_input() {
            // Its gradient needs the pre-activation values: record them as their own node.
            let z = self.conv2d(x, kernel, bias, strides, same, Activation::Linear)?;
            return self.activation(activation, z);
        }
        let (window, filters) = conv2d_window(
            self.value(x).shape(),
            self.value(kernel).shape(),
            bias.map(|b| self.value(b).shape()),
            strides,
            same,
        )?;
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
        conv2d(
            before[x.0].value.data(),
            &window,
            before[kernel.0].value.data(),
            bias.map(|b| before[b.0].value.data()),
            filters,
            activation,
            &mut out.value,
        );
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
        let op = if average {
            super::Op::AvgPool2d { x, window }
        } else {
            super::Op::MaxPool2d { x, window }
        };
        let i = self.push(op, &shape, self.requires_grad(x));
        let (before, out) = self.split(i);
        pool2d(before[x.0].value.data(), &window, average, &mut out.value);
        Ok(Var(i))
    }
}

/// The gradient of a pooling op.
pub(crate) fn backward_pool(
    x: Var,
    window: &Window,
    average: bool,
    out: &Node,
    nodes: &mut [Node],
) {
    let Some(mut grad) = GradOut::take(nodes, x) else {
        return;
    };
    let outputs = (out.value.data(), out.grad.data());
    let dx = super::grad_buf(&mut grad);
    pool2d_backward(nodes[x.0].value.data(), outputs, window, average, dx);
    grad.accumulate = true;
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
    per_example: Option<usize>,
) {
    let filters = *out.value.shape().last().expect("conv output is 4-D");
    // Per-example weights (see `Tape::backward_per_example`) keep each sample's terms
    // apart; the input and any other weight take the batch's sums as usual.
    let kernel_batch = super::per_example_weight(nodes, kernel, per_example);
    let bias_batch = bias.and_then(|b| super::per_example_weight(nodes, b, per_example));
    let mut kernel_grad = kernel_batch
        .is_none()
        .then(|| GradOut::take(nodes, kernel))
        .flatten();
    let mut input_grad = GradOut::take(nodes, x);
    let mut bias_grad = bias
        .filter(|_| bias_batch.is_none())
        .and_then(|b| GradOut::take_zeroed(nodes, b));
    conv2d_backward(
        nodes[x.0].value.data(),
        window,
        nodes[kernel.0].value.data(),
        filters,
        activation,
        (out.value.data(), out.grad.data()),
        kernel_grad.as_mut().map(super::grad_buf),
        bias_grad.as_mut().map(|g| &mut g.buf),
        input_grad.as_mut().map(super::grad_buf),
    );
    for mut grad in [kernel_grad, bias_grad, input_grad].into_iter().flatten() {
        grad.accumulate = true;
        grad.put(nodes);
    }
    if let Some(batch) = kernel_batch.or(bias_batch) {
        let mut kernel_grad =
            kernel_batch.and_then(|_| GradOut::take_per_example(nodes, kernel, batch));
        let mut bias_grad = bias
            .filter(|_| bias_batch.is_some())
            .and_then(|b| GradOut::take_per_example(nodes, b, batch));
        conv2d_per_sample_grads(
            nodes[x.0].value.data(),
            window,
            filters,
            activation,
            (out.value.data(), out.grad.data()),
            kernel_grad.as_mut().map(|g| &mut g.buf),
            bias_grad.as_mut().map(|g| &mut g.buf),
        );
        for grad in [kernel_grad, bias_grad].into_iter().flatten() {
            grad.put(nodes);
        }
    }
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
        // Three samples: with two threads the batch splits unevenly (2 + 1).
        check_gradients(&[&[3, 4, 4, 2], &[3, 3, 2, 2], &[2]], 41, |tape, v| {
            tape.conv2d(v[0], v[1], Some(v[2]), (1, 1), true, Activation::Relu)
        })
        .unwrap();
    }

    #[test]
    fn the_direct_algorithm_has_the_same_values_and_gradients() {
        use super::{force_conv_algorithm, ConvAlgorithm};
        let run = |algorithm| {
            force_conv_algorithm(Some(algorithm));
            let mut tape = Tape::new();
            let values = |n: usize, s: f32| (0..n).map(|i| (i as f32 * s).sin()).collect();
            let x = tape.param(Tensor::new(&[5, 6, 5, 3], values(450, 0.37)).unwrap());
            let k = tape.param(Tensor::new(&[3, 2, 3, 4], values(72, 0.91)).unwrap());
            let b = tape.param(Tensor::new(&[4], vec![0.1, -0.2, 0.0, 0.3]).unwrap());
            let y = tape
                .conv2d(x, k, Some(b), (2, 1), true, Activation::Relu)
                .unwrap();
            let loss = tape.sum(y).unwrap();
            tape.backward(loss).unwrap();
            let grads: Vec<Vec<f32>> = [x, k, b]
                .iter()
                .map(|&v| tape.grad(v).unwrap().data().to_vec())
                .collect();
            force_conv_algorithm(None);
            (tape.value(y).data().to_vec(), grads)
        };
        let (y_im2col, g_im2col) = run(ConvAlgorithm::Im2col);
        let (y_direct, g_direct) = run(ConvAlgorithm::Direct);
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(a, b)| (a - b).abs() < 1e-4);
        assert!(close(&y_im2col, &y_direct));
        for (a, b) in g_im2col.iter().zip(&g_direct) {
            assert!(close(a, b), "{a:?}\n{b:?}");
        }
        force_conv_algorithm(Some(ConvAlgorithm::Direct));
        let checked = check_gradients(&[&[2, 5, 4, 3], &[3, 2, 3, 2], &[2]], 23, |tape, v| {
            tape.conv2d(v[0], v[1], Some(v[2]), (1, 2), true, Activation::Tanh)
        });
        force_conv_algorithm(None);
        checked.unwrap();
    }

    #[test]
    fn splitting_the_batch_across_threads_changes_nothing() {
        // The batch as a whole and sample by sample must give the same outputs.
        let mut tape = Tape::new();
        let values: Vec<f32> = (0..5 * 6 * 6 * 2)
            .map(|i| (i as f32 * 0.37).sin())
            .collect();
        let kernel: Vec<f32> = (0..3 * 3 * 2 * 4)
            .map(|i| (i as f32 * 0.11).cos())
            .collect();
        let k = tape.constant(&Tensor::new(&[3, 3, 2, 4], kernel).unwrap());
        let whole = tape.constant(&Tensor::new(&[5, 6, 6, 2], values.clone()).unwrap());
        let y = tape
            .conv2d(whole, k, None, (1, 1), false, Activation::Relu)
            .unwrap();
        let p = tape.max_pool2d(y, (2, 2), (2, 2), false).unwrap();
        let batch = tape.value(p).clone();
        for (n, sample) in values.chunks(6 * 6 * 2).enumerate() {
            let x = tape.constant(&Tensor::new(&[1, 6, 6, 2], sample.to_vec()).unwrap());
            let y = tape
                .conv2d(x, k, None, (1, 1), false, Activation::Relu)
                .unwrap();
            let p = tape.max_pool2d(y, (2, 2), (2, 2), false).unwrap();
            let per = tape.value(p).len();
            assert_eq!(tape.value(p).data(), &batch.data()[n * per..(n + 1) * per]);
        }
    }

    #[test]
    fn max_pool_gradients_match_finite_differences() {
        // Random inputs have distinct values, so each window has one clear winner.
        check_gradients(&[&[2, 4, 5, 3]], 23, |tape, v| {
            tape.max_pool2d(v[0], (2, 2), (2, 2), false)
        })
        .unwrap();
        check_gradients(&[&[3, 5, 5, 2]], 29, |tape, v| {
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
