//! Convolution (fused with bias and activation) and pooling as recorded ops, channels last
//! (NHWC); the kernels are in `tensor::conv2d`.

use super::Op;
use crate::autograd::tape::{GradOut, Node, Tape, Var};
use crate::error::Result;
use crate::tensor::activation::Activation;
use crate::tensor::conv::Window;
pub use crate::tensor::conv::{force_conv_algorithm, ConvAlgorithm, Pooling};
use crate::tensor::conv2d::{
    conv2d, conv2d_backward, conv2d_per_sample_grads, conv2d_window, pool2d, pool2d_backward,
    OutputGrad, PoolInto,
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
        Ok(self
            .conv2d_pooled(x, kernel, bias, (strides, same), activation, None)?
            .0)
    }

    /// [`Tape::conv2d`], and with `pooling` that pooling of its output too, recorded as the
    /// two ops but computed in one pass (each run of samples pooled while it is in cache).
    /// No pooled output when the activation is recorded apart (GELU) or the pooling does not
    /// fit the output: the caller then pools as usual, which reports any error.
    pub fn conv2d_pooled(
        &mut self,
        x: Var,
        kernel: Var,
        bias: Option<Var>,
        (strides, same): ((usize, usize), bool),
        activation: Activation,
        pooling: Option<Pooling>,
    ) -> Result<(Var, Option<Var>)> {
        if activation.needs_input() {
            // Its gradient needs the pre-activation values: record them as their own node.
            let z = self.conv2d(x, kernel, bias, strides, same, Activation::Linear)?;
            return Ok((self.activation(activation, z)?, None));
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
        let op = Op::Conv2d {
            x,
            kernel,
            bias,
            activation,
            window,
        };
        let i = self.push(op, &shape, requires_grad);
        let pool = pooling.and_then(|p| Some((p.window(&shape).ok()?, p.average)));
        // The pooling's node right after the convolution's (what the fused backward needs).
        let pooled = pool.map(|(w, average)| {
            let x = Var(i);
            let op = match average {
                true => Op::AvgPool2d { x, window: w },
                false => Op::MaxPool2d { x, window: w },
            };
            let shape = [w.batch, w.out_height, w.out_width, w.channels];
            Var(self.push(op, &shape, requires_grad))
        });
        let (before, outputs) = self.split_outputs(i);
        let (conv, rest) = outputs.split_at_mut(1);
        let into = pool
            .as_ref()
            .zip(rest.first_mut())
            .map(|((w, average), node)| {
                node.aux
                    .resize(if *average { 0 } else { node.value.len() }, 0.0);
                PoolInto {
                    window: w,
                    average: *average,
                    out: &mut node.value,
                    argmax: (!average).then_some(&mut node.aux[..]),
                }
            });
        conv2d(
            before[x.0].value.data(),
            &window,
            before[kernel.0].value.data(),
            bias.map(|b| before[b.0].value.data()),
            filters,
            activation,
            &mut conv[0].value,
            into,
        );
        Ok((Var(i), pooled))
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
        // Max pooling keeps which tap held each maximum, for its gradient.
        let argmax_len = if average { 0 } else { out.value.len() };
        out.aux.resize(argmax_len, 0.0);
        let argmax = (!average).then_some(&mut out.aux[..]);
        pool2d(
            before[x.0].value.data(),
            &window,
            average,
            &mut out.value,
            argmax,
        );
        Ok(Var(i))
    }
}

/// The gradient of a pooling op. With `fuse`, when the pooled tensor is the output of the
/// convolution recorded just before and nothing else has sent it a gradient, the two
/// backward rules run as one (the convolution's is then skipped, its output's gradient never
/// held whole): the pooling's gradient is routed back inside each run of samples of the
/// convolution's backward pass, in cache, instead of through memory.
pub(crate) fn backward_pool(
    x: Var,
    window: &Window,
    average: bool,
    out: &Node,
    nodes: &mut [Node],
    fuse: bool,
) {
    let pooled = OutputGrad::Pooled {
        window,
        average,
        pooled: out.value.data(),
        grad: out.grad.data(),
        argmax: &out.aux,
    };
    if fuse && x.0 + 1 == nodes.len() && !nodes[x.0].has_grad {
        if let Op::Conv2d {
            x: input,
            kernel,
            bias,
            activation,
            window: conv_window,
        } = nodes[x.0].op
        {
            let (before, conv) = nodes.split_at_mut(x.0);
            let y = conv[0].value.data();
            return backward_conv2d(
                (input, kernel, bias, activation, &conv_window),
                (y, pooled),
                before,
                None,
            );
        }
    }
    let Some(mut grad) = GradOut::take(nodes, x) else {
        return;
    };
    let dx = super::grad_buf(&mut grad);
    pool2d_backward(out.grad.data(), &out.aux, window, average, dx);
    grad.accumulate = true;
    grad.put(nodes);
}

/// The gradients of a convolution `(x, kernel, bias, activation, window)` from its output
/// `y` and the output's gradient.
pub(crate) fn backward_conv2d(
    (x, kernel, bias, activation, window): (Var, Var, Option<Var>, Activation, &Window),
    (y, grad): (&[f32], OutputGrad),
    nodes: &mut [Node],
    per_example: Option<usize>,
) {
    let filters = window_filters(y, window);
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
    // Nothing wanted of the batch's sums (a first convolution whose weights are all kept
    // per example): no pass over the batch for them.
    if kernel_grad.is_some() || bias_grad.is_some() || input_grad.is_some() {
        conv2d_backward(
            nodes[x.0].value.data(),
            window,
            nodes[kernel.0].value.data(),
            filters,
            activation,
            (y, grad),
            kernel_grad.as_mut().map(super::grad_buf),
            bias_grad.as_mut().map(|g| &mut g.buf),
            input_grad.as_mut().map(super::grad_buf),
        );
    }
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
        let accumulate = super::per_example_accumulate([kernel_grad.as_mut(), bias_grad.as_mut()]);
        conv2d_per_sample_grads(
            nodes[x.0].value.data(),
            window,
            (filters, activation),
            (y, &grad.dense(y)),
            (
                kernel_grad.as_mut().map(|g| &mut g.buf),
                bias_grad.as_mut().map(|g| &mut g.buf),
            ),
            accumulate,
        );
        for grad in [kernel_grad, bias_grad].into_iter().flatten() {
            grad.put(nodes);
        }
    }
}

/// A convolution's number of filters, from its output's length and its window.
fn window_filters(y: &[f32], window: &Window) -> usize {
    y.len() / window.positions().max(1)
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
    fn a_convolution_and_the_pooling_after_it_back_propagate_as_one() {
        // `backward` runs a convolution read only by a pooling as one rule; `backward_from`
        // (gradient-checked above and below) runs them apart. Same gradients, to the bit,
        // for every activation, both poolings, padding, strides, ties (relu's zeros) and a
        // batch that splits into uneven runs of samples (9 = 4 + 4 + 1).
        let values = |n: usize, s: f32| (0..n).map(|i| (i as f32 * s).sin()).collect::<Vec<_>>();
        for act in [
            Activation::Relu,
            Activation::Linear,
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::Softmax,
        ] {
            for (average, pool, strides, same) in [
                (false, (2, 2), (2, 2), false),
                (false, (3, 3), (2, 2), true),
                (true, (2, 2), (2, 2), false),
                (true, (3, 2), (1, 2), true),
            ] {
                let run = |fused: bool| {
                    let mut tape = Tape::new();
                    let k = tape.param(Tensor::new(&[3, 3, 2, 3], values(54, 0.91)).unwrap());
                    let b = tape.param(Tensor::new(&[3], vec![0.1, -0.2, 0.3]).unwrap());
                    let x = tape.param(Tensor::new(&[9, 7, 6, 2], values(756, 0.37)).unwrap());
                    let y = tape.conv2d(x, k, Some(b), (1, 1), true, act).unwrap();
                    let p = match average {
                        true => tape.avg_pool2d(y, pool, strides, same),
                        false => tape.max_pool2d(y, pool, strides, same),
                    }
                    .unwrap();
                    let w = tape.constant(
                        &Tensor::new(tape.value(p).shape(), values(tape.value(p).len(), 1.3))
                            .unwrap(),
                    );
                    let weighted = tape.mul(p, w).unwrap();
                    let loss = tape.sum(weighted).unwrap();
                    if fused {
                        tape.backward(loss).unwrap();
                        assert!(
                            tape.grad(y).is_none(),
                            "the convolution's output keeps none"
                        );
                    } else {
                        let seed = Tensor::full(&[], 1.0);
                        tape.backward_from(loss, &seed).unwrap();
                        assert!(tape.grad(y).is_some());
                    }
                    [x, k, b].map(|v| tape.grad(v).unwrap().data().to_vec())
                };
                assert_eq!(run(true), run(false), "{act:?} average {average} {pool:?}");
            }
        }
    }

    #[test]
    fn conv2d_pooled_computes_what_conv2d_then_pooling_computes() {
        use super::Pooling;
        use crate::tensor::forward;
        let values = |n: usize, s: f32| (0..n).map(|i| (i as f32 * s).sin()).collect::<Vec<_>>();
        let (xv, kv, bv) = (
            Tensor::new(&[9, 7, 6, 2], values(756, 0.37)).unwrap(),
            Tensor::new(&[3, 3, 2, 3], values(54, 0.91)).unwrap(),
            Tensor::new(&[3], vec![0.1, -0.2, 0.3]).unwrap(),
        );
        for act in [
            Activation::Relu,
            Activation::Tanh,
            Activation::Gelu,
            Activation::Softmax,
        ] {
            for (average, size, strides, same) in [
                (false, (2, 2), (2, 2), false),
                (false, (3, 3), (2, 2), true),
                (true, (2, 3), (1, 2), true),
            ] {
                let pooling = Pooling {
                    size,
                    strides,
                    same,
                    average,
                };
                let run = |together: bool| {
                    let mut tape = Tape::new();
                    let (k, b, x) = (
                        tape.param(kv.clone()),
                        tape.param(bv.clone()),
                        tape.param(xv.clone()),
                    );
                    let (pooling, window) = (together.then_some(pooling), ((1, 1), true));
                    let (y, p) = tape
                        .conv2d_pooled(x, k, Some(b), window, act, pooling)
                        .unwrap();
                    // GELU's activation is recorded apart: nothing pooled ahead.
                    assert_eq!(p.is_some(), together && act != Activation::Gelu);
                    let p = p.unwrap_or_else(|| match average {
                        true => tape.avg_pool2d(y, size, strides, same).unwrap(),
                        false => tape.max_pool2d(y, size, strides, same).unwrap(),
                    });
                    let loss = tape.sum(p).unwrap();
                    tape.backward(loss).unwrap();
                    let grads = [x, k, b].map(|v| tape.grad(v).unwrap().clone());
                    (tape.value(y).clone(), tape.value(p).clone(), grads)
                };
                let (apart, together) = (run(false), run(true));
                assert_eq!(apart, together, "{act:?} {pooling:?}");
                // The eager kernel too (GELU, applied apart, pools nothing ahead).
                let (y, p) =
                    forward::conv2d_pooled(&xv, &kv, Some(&bv), ((1, 1), true), act, Some(pooling))
                        .unwrap();
                assert_eq!(y, apart.0);
                assert_eq!(p, (act != Activation::Gelu).then(|| apart.1.clone()));
            }
        }
        // A pooling that does not fit the output pools nothing ahead; pooling then says why.
        let mut tape = Tape::new();
        let (k, x) = (tape.constant(&kv), tape.constant(&xv));
        let too_big = Pooling {
            size: (9, 9),
            strides: (9, 9),
            same: false,
            average: false,
        };
        let window = ((1, 1), false);
        let (y, p) = tape
            .conv2d_pooled(x, k, None, window, Activation::Relu, Some(too_big))
            .unwrap();
        assert!(p.is_none());
        assert!(tape.max_pool2d(y, (9, 9), (9, 9), false).is_err());
        let eager = forward::conv2d_pooled(&xv, &kv, None, window, Activation::Relu, Some(too_big));
        assert!(eager.unwrap().1.is_none());
    }

    #[test]
    fn a_convolution_read_by_more_than_its_pooling_is_not_fused() {
        // y feeds the pooling and, recorded after it, a sum: its gradient has two parts.
        let mut tape = Tape::new();
        let k = tape.param(
            Tensor::new(
                &[2, 2, 1, 2],
                vec![0.5, -0.3, 0.2, 0.8, -0.1, 0.4, 0.7, -0.6],
            )
            .unwrap(),
        );
        let x = tape
            .param(Tensor::new(&[1, 4, 4, 1], (0..16).map(|i| i as f32 * 0.1).collect()).unwrap());
        let y = tape
            .conv2d(x, k, None, (1, 1), true, Activation::Relu)
            .unwrap();
        let p = tape.max_pool2d(y, (2, 2), (2, 2), false).unwrap();
        let (sp, sy) = (tape.sum(p).unwrap(), tape.sum(y).unwrap());
        let loss = tape.add(sp, sy).unwrap();
        tape.backward(loss).unwrap();
        let fused = tape.grad(k).unwrap().clone();
        let seed = Tensor::full(&[], 1.0);
        tape.backward_from(loss, &seed).unwrap();
        assert_eq!(&fused, tape.grad(k).unwrap());
        assert!(tape.grad(y).is_some());
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
