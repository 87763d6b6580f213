//! Convolution (fused with bias and activation) and max pooling, channels last (NHWC).
//! The convolution is im2col followed by one matrix product; the backward pass recomputes the
//! patches, the kernel's gradient is another product and the input's is col2im. A direct
//! convolution (window by window, no patches) computes the same; `ember bench conv` times
//! both, and im2col is the faster on the shapes measured.

use crate::autograd::tape::{GradOut, Node, Tape, Var};
use crate::error::{Error, Result};
use crate::tensor::activation::Activation;
use crate::tensor::conv::{
    avg_pool, avg_pool_backward, col2im_add, direct_conv, direct_conv_input_grad,
    direct_conv_kernel_grad, im2col, max_pool, max_pool_backward, Window,
};
use crate::tensor::matmul::{matmul_serial, short_k_outer_sum, short_k_product, MatRef, SHORT_K};
use crate::tensor::threads::run_jobs;

/// Samples per job: the batch is cut into runs this long, spread over the threads. Small
/// enough that a run's patches stay in cache between im2col and the product; fixed, so
/// results do not depend on the thread count.
const SAMPLES_PER_JOB: usize = 4;

thread_local! {
    /// Each thread's two work buffers (patches, and an activation's gradient), reused from
    /// step to step; their contents are always fully overwritten before they are read.
    static BUFFERS: std::cell::RefCell<[Vec<f32>; 2]> =
        const { std::cell::RefCell::new([Vec::new(), Vec::new()]) };
}

/// Runs `f` on this thread's work buffers, sized `first` and `second`.
fn with_buffers<R>(first: usize, second: usize, f: impl FnOnce(&mut [f32], &mut [f32]) -> R) -> R {
    BUFFERS.with(|buffers| {
        let mut buffers = buffers.borrow_mut();
        let [a, b] = &mut *buffers;
        if a.len() < first {
            a.resize(first, 0.0);
        }
        if b.len() < second {
            b.resize(second, 0.0);
        }
        f(&mut a[..first], &mut b[..second])
    })
}

/// Runs `f` on this thread's patch buffer, sized `len`.
fn with_patches<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    with_buffers(len, 0, |patches, _| f(patches))
}

/// How a convolution is computed; both give the same values, to rounding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvAlgorithm {
    /// Each run of samples' patches laid out by im2col, then one matrix product.
    Im2col,
    /// Window by window, without patches.
    Direct,
}

thread_local! {
    /// The algorithm forced on this thread's convolutions, if any.
    static FORCED: std::cell::Cell<Option<ConvAlgorithm>> = const { std::cell::Cell::new(None) };
}

/// Puts the convolutions this thread records, forward and backward, on one algorithm
/// (`None`: back to the default, im2col); for benchmarks and tests that compare them. Per
/// thread, so that it never changes a computation running elsewhere.
pub fn force_conv_algorithm(algorithm: Option<ConvAlgorithm>) {
    FORCED.set(algorithm);
}

fn algorithm() -> ConvAlgorithm {
    FORCED.get().unwrap_or(ConvAlgorithm::Im2col)
}

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
        if activation.needs_input() {
            // Its gradient needs the pre-activation values: record them as their own node.
            let z = self.conv2d(x, kernel, bias, strides, same, Activation::Linear)?;
            return self.activation(activation, z);
        }
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
        // Each job takes a run of samples: im2col, one product, bias and activation. The
        // patches are not kept: the backward pass recomputes them, which is cheaper than
        // reading them back from memory.
        let (k, per) = (window.patch_len(), SAMPLES_PER_JOB);
        let rows = window.positions_per_sample();
        let kernel = MatRef::new(before[kernel.0].value.data(), k, filters);
        let bias = bias.map(|b| before[b.0].value.data());
        let jobs: Vec<_> = before[x.0]
            .value
            .data()
            .chunks(per * window.input_len())
            .zip(out.value.data_mut().chunks_mut(per * rows * filters))
            .collect();
        let algorithm = algorithm();
        run_jobs(jobs, |(x, out)| {
            let g = window.with_batch(x.len() / window.input_len());
            match algorithm {
                ConvAlgorithm::Direct => direct_conv(x, &g, kernel.data, filters, out),
                ConvAlgorithm::Im2col => with_patches(g.positions() * k, |cols| {
                    im2col(x, &g, cols);
                    if k <= SHORT_K {
                        short_k_product(out, cols, kernel.data, k, filters);
                    } else {
                        matmul_serial(out, MatRef::new(cols, g.positions(), k), kernel, false);
                    }
                }),
            }
            add_bias_and_activate(out, bias, activation, filters);
        });
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
        let per = SAMPLES_PER_JOB;
        let jobs: Vec<_> = before[x.0]
            .value
            .data()
            .chunks(per * window.input_len())
            .zip(
                out.value
                    .data_mut()
                    .chunks_mut(per * window.positions_per_sample() * window.channels),
            )
            .collect();
        run_jobs(jobs, |(x, out)| {
            kernel(x, &window.with_batch(x.len() / window.input_len()), out)
        });
        Ok(Var(i))
    }
}

/// `out = activation(out + bias)`, row by row (rows of `filters` values); relu in one pass.
fn add_bias_and_activate(
    out: &mut [f32],
    bias: Option<&[f32]>,
    activation: Activation,
    filters: usize,
) {
    match (bias, activation) {
        (Some(b), Activation::Relu) => {
            for row in out.chunks_exact_mut(filters) {
                row.iter_mut()
                    .zip(b)
                    .for_each(|(v, &b)| *v = (*v + b).max(0.0));
            }
            return;
        }
        (Some(b), _) => {
            for row in out.chunks_exact_mut(filters) {
                row.iter_mut().zip(b).for_each(|(v, &b)| *v += b);
            }
        }
        (None, _) => {}
    }
    activation.apply(out, filters);
}

/// A pooling gradient: `kernel(x, y, dy, window, dx, accumulate)` writes `dx`, or adds to
/// it when accumulating.
type PoolGradKernel = fn(&[f32], &[f32], &[f32], &Window, &mut [f32], bool);

/// Runs a pooling gradient on runs of samples, spread over the threads.
fn pool_backward(x: Var, window: &Window, out: &Node, nodes: &mut [Node], kernel: PoolGradKernel) {
    let Some(mut grad) = GradOut::take(nodes, x) else {
        return;
    };
    let accumulate = grad.accumulate;
    let per = SAMPLES_PER_JOB;
    let outputs = per * window.positions_per_sample() * window.channels;
    let jobs: Vec<_> = nodes[x.0]
        .value
        .data()
        .chunks(per * window.input_len())
        .zip(grad.buf.data_mut().chunks_mut(per * window.input_len()))
        .zip(out.value.data().chunks(outputs))
        .zip(out.grad.data().chunks(outputs))
        .collect();
    run_jobs(jobs, |(((x, dx), y), dy)| {
        let g = window.with_batch(x.len() / window.input_len());
        kernel(x, y, dy, &g, dx, accumulate);
    });
    grad.accumulate = true;
    grad.put(nodes);
}

pub(crate) fn backward_avg_pool(x: Var, window: &Window, out: &Node, nodes: &mut [Node]) {
    pool_backward(x, window, out, nodes, |_, _, dy, g, dx, accumulate| {
        avg_pool_backward(dy, g, dx, accumulate)
    });
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
) {
    let filters = *out.value.shape().last().expect("conv output is 4-D");
    let k = window.patch_len();
    let (per, rows) = (SAMPLES_PER_JOB, window.positions_per_sample());
    let mut kernel_grad = GradOut::take(nodes, kernel);
    let mut input_grad = GradOut::take(nodes, x);
    let input_accumulates = input_grad.as_ref().is_some_and(|g| g.accumulate);
    let kernel_value = MatRef::new(nodes[kernel.0].value.data(), k, filters);

    // Each job takes a run of samples: dz = activation'(y) · dy; its share of the kernel
    // gradient, patchesᵀ · dz (patches recomputed); and its input gradient, col2im(dz · Kᵀ).
    // Its dz and patches live in the thread's own buffers, which stay in cache.
    let chunk_out = per * rows * filters;
    let jobs_count = out.value.len().div_ceil(chunk_out.max(1));
    let mut dx_chunks: Vec<Option<&mut [f32]>> = match &mut input_grad {
        Some(g) => g
            .buf
            .data_mut()
            .chunks_mut(per * window.input_len())
            .map(Some)
            .collect(),
        None => (0..jobs_count).map(|_| None).collect(),
    };
    let jobs: Vec<_> = out
        .value
        .data()
        .chunks(chunk_out)
        .zip(out.grad.data().chunks(chunk_out))
        .zip(nodes[x.0].value.data().chunks(per * window.input_len()))
        .zip(dx_chunks.iter_mut().map(Option::take))
        .collect();
    let want_kernel = kernel_grad.is_some();
    let algorithm = algorithm();
    let partials = run_jobs(jobs, |(((y, dy), x), dx)| {
        let g = window.with_batch(x.len() / window.input_len());
        let positions = g.positions();
        let patches_len = match algorithm {
            ConvAlgorithm::Im2col => positions * k,
            ConvAlgorithm::Direct => 0,
        };
        with_buffers(patches_len, y.len(), |patches, dz_buf| {
            let dz: &[f32] = if activation == Activation::Linear {
                dy
            } else {
                activation.backward(y, dy, dz_buf, filters, false);
                dz_buf
            };
            let dz_mat = MatRef::new(dz, positions, filters);
            let partial = want_kernel.then(|| {
                let mut partial = vec![0.0; k * filters];
                if algorithm == ConvAlgorithm::Direct {
                    direct_conv_kernel_grad(x, &g, dz, filters, &mut partial);
                    return partial;
                }
                im2col(x, &g, patches);
                if k <= SHORT_K {
                    short_k_outer_sum(&mut partial, patches, dz, k, filters);
                } else {
                    matmul_serial(
                        &mut partial,
                        MatRef::new(patches, positions, k).t(),
                        dz_mat,
                        false,
                    );
                }
                partial
            });
            let mut bias_partial = vec![0.0; filters];
            for row in dz.chunks_exact(filters) {
                bias_partial.iter_mut().zip(row).for_each(|(d, v)| *d += v);
            }
            if let Some(dx) = dx {
                if !input_accumulates {
                    dx.fill(0.0);
                }
                if algorithm == ConvAlgorithm::Direct {
                    direct_conv_input_grad(dz, &g, kernel_value.data, filters, dx);
                } else {
                    matmul_serial(patches, dz_mat, kernel_value.t(), false);
                    col2im_add(patches, &g, dx);
                }
            }
            (partial, bias_partial)
        })
    });

    if let Some(mut grad) = kernel_grad.take() {
        let acc = grad.accumulate;
        let buf = grad.buf.data_mut();
        for (n, (partial, _)) in partials.iter().enumerate() {
            let partial = partial.as_ref().expect("computed when wanted");
            if n == 0 && !acc {
                buf.copy_from_slice(partial);
            } else {
                buf.iter_mut().zip(partial).for_each(|(d, v)| *d += v);
            }
        }
        grad.put(nodes);
    }
    if let Some(mut grad) = bias.and_then(|b| GradOut::take_zeroed(nodes, b)) {
        let buf = grad.buf.data_mut();
        for (_, partial) in &partials {
            buf.iter_mut().zip(partial).for_each(|(d, v)| *d += v);
        }
        grad.put(nodes);
    }
    if let Some(mut grad) = input_grad {
        grad.accumulate = true;
        grad.put(nodes);
    }
}

pub(crate) fn backward_max_pool(x: Var, window: &Window, out: &Node, nodes: &mut [Node]) {
    pool_backward(x, window, out, nodes, max_pool_backward);
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
