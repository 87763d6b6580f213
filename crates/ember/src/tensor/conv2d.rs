//! Whole-batch 2-D convolution (fused with bias and activation) and pooling, channels last:
//! the batch cut into runs of samples spread over the threads, each run through the kernels
//! of [`super::conv`]. The convolution is im2col followed by one matrix product; the backward
//! pass recomputes the patches, the kernel's gradient is another product and the input's is
//! col2im. A direct convolution (window by window, no patches) computes the same; `ember bench
//! conv` times both, and im2col is the faster on the shapes measured.

use super::activation::Activation;
use super::conv::{
    avg_pool, avg_pool_backward, col2im_add, conv_algorithm, direct_conv, direct_conv_input_grad,
    direct_conv_kernel_grad, im2col, max_pool, max_pool_backward, ConvAlgorithm, Window,
};
use super::linear::add_column_sums;
use super::matmul::{matmul_serial, short_k_outer_sum, short_k_product, MatRef, SHORT_K};
use super::threads::run_jobs;
use super::{GradBuf, Tensor};
use crate::error::{Error, Result};

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

/// Checks a convolution's operands, x (batch, height, width, channels), kernel (kh, kw,
/// channels, filters) and bias (filters): returns the window and the number of filters.
pub fn conv2d_window(
    x: &[usize],
    kernel: &[usize],
    bias: Option<&[usize]>,
    strides: (usize, usize),
    same: bool,
) -> Result<(Window, usize)> {
    let &[kh, kw, channels, filters] = kernel else {
        return Err(Error::shape(
            "conv2d",
            format!("kernel must be (kh, kw, channels, filters), got {kernel:?}"),
        ));
    };
    let window = Window::new(x, (kh, kw), strides, same)?;
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
        if b != [filters] {
            return Err(Error::shape(
                "conv2d",
                format!("bias {b:?} should be [{filters}]"),
            ));
        }
    }
    Ok((window, filters))
}

/// A pooling of a convolution's output computed with it (see [`conv2d`]): `out` and, for
/// max pooling, `argmax` as [`pool2d`] fills them.
pub struct PoolInto<'a> {
    pub window: &'a Window,
    pub average: bool,
    pub out: &'a mut Tensor,
    pub argmax: Option<&'a mut [f32]>,
}

/// One run of samples' share of a [`PoolInto`]: its pooled outputs and argmax.
type RunPooled<'a> = (&'a mut [f32], Option<&'a mut [f32]>);

/// `out = activation(conv2d(x, kernel) + bias)` over the whole batch of `window`; out is
/// (batch, out_height, out_width, filters). With `pool`, that pooling of `out` is computed
/// too, each run of samples pooled as soon as it is convolved, while it is in cache.
#[allow(clippy::too_many_arguments)]
pub fn conv2d(
    x: &[f32],
    window: &Window,
    kernel: &[f32],
    bias: Option<&[f32]>,
    filters: usize,
    activation: Activation,
    out: &mut Tensor,
    pool: Option<PoolInto>,
) {
    let out = out.data_mut();
    // Each job takes a run of samples: im2col, one product, bias and activation. The
    // patches are not kept: the backward pass recomputes them, which is cheaper than
    // reading them back from memory.
    let (k, per) = (window.patch_len(), SAMPLES_PER_JOB);
    let rows = window.positions_per_sample();
    let kernel = MatRef::new(kernel, k, filters);
    let chunk_out = per * rows * filters;
    let runs = out.len().div_ceil(chunk_out.max(1));
    let (pool_window, average) = match &pool {
        Some(p) => (Some(p.window), p.average),
        None => (None, false),
    };
    // Each run's share of the pooling's output and argmax.
    let mut pooled: Vec<Option<RunPooled>> = match pool {
        Some(PoolInto {
            window: pw,
            out: pooled,
            argmax,
            ..
        }) => {
            let chunk = per * pw.positions_per_sample() * pw.channels;
            let mut argmax: Vec<Option<&mut [f32]>> = match argmax {
                Some(a) => a.chunks_mut(chunk).map(Some).collect(),
                None => (0..runs).map(|_| None).collect(),
            };
            pooled
                .data_mut()
                .chunks_mut(chunk)
                .zip(argmax.iter_mut().map(Option::take))
                .map(Some)
                .collect()
        }
        None => (0..runs).map(|_| None).collect(),
    };
    let jobs: Vec<_> = x
        .chunks(per * window.input_len())
        .zip(out.chunks_mut(chunk_out))
        .zip(pooled.iter_mut().map(Option::take))
        .collect();
    let algorithm = conv_algorithm();
    run_jobs(jobs, |((x, out), pooled)| {
        let samples = x.len() / window.input_len();
        let g = window.with_batch(samples);
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
        if let (Some((pooled, argmax)), Some(pw)) = (pooled, pool_window) {
            let g = pw.with_batch(samples);
            match average {
                true => avg_pool(out, &g, pooled),
                false => max_pool(out, &g, pooled, argmax),
            }
        }
    });
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

/// The gradient reaching a convolution's output.
#[derive(Clone, Copy, Debug)]
pub enum OutputGrad<'a> {
    /// One value per output.
    Dense(&'a [f32]),
    /// The output is read only by a pooling (max, or average with `average`) over `window`,
    /// whose output is `pooled`, its gradient `grad` and (max) its `argmax`: the
    /// convolution's own gradient is routed back through the pooling run by run, in cache,
    /// and never held whole.
    Pooled {
        window: &'a Window,
        average: bool,
        pooled: &'a [f32],
        grad: &'a [f32],
        argmax: &'a [f32],
    },
}

impl<'a> OutputGrad<'a> {
    /// The gradient of the convolution's output `y`, one value per output.
    pub fn dense(self, y: &[f32]) -> std::borrow::Cow<'a, [f32]> {
        match self {
            OutputGrad::Dense(dy) => dy.into(),
            OutputGrad::Pooled {
                window,
                average,
                grad,
                argmax,
                ..
            } => {
                let mut dy = Tensor::zeros(&[y.len()]);
                let dx = GradBuf {
                    buf: &mut dy,
                    accumulate: false,
                };
                pool2d_backward(grad, argmax, window, average, dx);
                dy.into_data().into()
            }
        }
    }
}

/// The gradients of [`conv2d`], from its output `y` and the output's gradient; each one
/// only when wanted. The bias gradient is always added to (pass it zeroed to overwrite).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward(
    x: &[f32],
    window: &Window,
    kernel: &[f32],
    filters: usize,
    activation: Activation,
    (y, grad): (&[f32], OutputGrad),
    kernel_grad: Option<GradBuf>,
    bias_grad: Option<&mut Tensor>,
    input_grad: Option<GradBuf>,
) {
    let k = window.patch_len();
    let (per, rows) = (SAMPLES_PER_JOB, window.positions_per_sample());
    let input_accumulates = input_grad.as_ref().is_some_and(|g| g.accumulate);
    let kernel_value = MatRef::new(kernel, k, filters);

    // Each job takes a run of samples: dz = activation'(y) · dy; its share of the kernel
    // gradient, patchesᵀ · dz (patches recomputed); and its input gradient, col2im(dz · Kᵀ).
    // Its dz and patches live in the thread's own buffers, which stay in cache.
    let chunk_out = per * rows * filters;
    let jobs_count = y.len().div_ceil(chunk_out.max(1));
    let mut dx_chunks: Vec<Option<&mut [f32]>> = match input_grad {
        Some(g) => g
            .buf
            .data_mut()
            .chunks_mut(per * window.input_len())
            .map(Some)
            .collect(),
        None => (0..jobs_count).map(|_| None).collect(),
    };
    // Each job's share of the output's gradient: its rows, or its pooled rows.
    let job_grads: Vec<JobGrad> = match grad {
        OutputGrad::Dense(dy) => dy.chunks(chunk_out).map(JobGrad::Dense).collect(),
        OutputGrad::Pooled {
            window: pool,
            average,
            pooled,
            grad,
            argmax,
        } => {
            let chunk = per * pool.positions_per_sample() * pool.channels;
            let argmax: Vec<&[f32]> = match average {
                true => vec![&[]; pooled.len().div_ceil(chunk.max(1))],
                false => argmax.chunks(chunk).collect(),
            };
            pooled
                .chunks(chunk)
                .zip(grad.chunks(chunk))
                .zip(argmax)
                .map(|((p, dp), a)| JobGrad::Pooled(pool, average, p, dp, a))
                .collect()
        }
    };
    let jobs: Vec<_> = y
        .chunks(chunk_out)
        .zip(job_grads)
        .zip(x.chunks(per * window.input_len()))
        .zip(dx_chunks.iter_mut().map(Option::take))
        .collect();
    let want_kernel = kernel_grad.is_some();
    let algorithm = conv_algorithm();
    let partials = run_jobs(jobs, |(((y, dy), x), dx)| {
        let g = window.with_batch(x.len() / window.input_len());
        let positions = g.positions();
        let patches_len = match algorithm {
            ConvAlgorithm::Im2col => positions * k,
            ConvAlgorithm::Direct => 0,
        };
        with_buffers(patches_len, y.len(), |patches, dz_buf| {
            let dz: &[f32] = match dy {
                JobGrad::Dense(dy) if activation == Activation::Linear => dy,
                JobGrad::Dense(dy) => {
                    activation.backward(y, dy, dz_buf, filters, false);
                    dz_buf
                }
                JobGrad::Pooled(pool, average, p, dp, argmax) => {
                    let g = pool.with_batch(x.len() / window.input_len());
                    // Windows that overlap add up the gradients of an input: scaling each
                    // before the sum would round differently from scaling the sum.
                    let overlap = pool.strides.0 < pool.kernel.0 || pool.strides.1 < pool.kernel.1;
                    if average || overlap || activation == Activation::Softmax {
                        if average {
                            avg_pool_backward(dp, &g, dz_buf, false);
                        } else {
                            max_pool_backward(dp, argmax, &g, dz_buf, false);
                        }
                        activation.backward_in_place(y, dz_buf, filters);
                    } else {
                        // An elementwise activation's derivative at a window's maximum is
                        // its derivative at the pooled value (the same number): scale the
                        // pooled gradient first and route it, without reading `y` (each
                        // input has at most one window's gradient).
                        with_pooled_grad(dp, |scaled| {
                            activation.backward(p, dp, scaled, filters, false);
                            max_pool_backward(scaled, argmax, &g, dz_buf, false);
                        });
                    }
                    dz_buf
                }
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
            add_column_sums(dz, filters, &mut bias_partial);
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

    if let Some(grad) = kernel_grad {
        for (n, (partial, _)) in partials.iter().enumerate() {
            let partial = partial.as_ref().expect("computed when wanted");
            if n == 0 && !grad.accumulate {
                grad.buf.copy_from_slice(partial);
            } else {
                grad.buf
                    .data_mut()
                    .iter_mut()
                    .zip(partial)
                    .for_each(|(d, v)| *d += v);
            }
        }
    }
    if let Some(buf) = bias_grad {
        for (_, partial) in &partials {
            buf.data_mut()
                .iter_mut()
                .zip(partial)
                .for_each(|(d, v)| *d += v);
        }
    }
}

/// One job's share of an [`OutputGrad`].
enum JobGrad<'a> {
    Dense(&'a [f32]),
    /// The pooling's window, whether it averages, and its output, gradient and argmax.
    Pooled(&'a Window, bool, &'a [f32], &'a [f32], &'a [f32]),
}

/// Runs `f` on a scratch buffer as long as `dp` (a run's pooled gradient, scaled).
fn with_pooled_grad(dp: &[f32], f: impl FnOnce(&mut [f32])) {
    thread_local! {
        static SCALED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCALED.with(|buf| {
        let mut buf = buf.borrow_mut();
        if buf.len() < dp.len() {
            buf.resize(dp.len(), 0.0);
        }
        f(&mut buf[..dp.len()])
    })
}

/// Each sample's own kernel and bias gradients (per-example gradients): sample i writes its
/// patchesᵀ · dz into its (patch, filters) block of `kernel_grads` and its dz's column sums
/// into its block of `bias_grads` (adds them with `accumulate`); `(y, dy)` are the op's
/// output and its gradient.
pub fn conv2d_per_sample_grads(
    x: &[f32],
    window: &Window,
    (filters, activation): (usize, Activation),
    (y, dy): (&[f32], &[f32]),
    (kernel_grads, bias_grads): (Option<&mut Tensor>, Option<&mut Tensor>),
    accumulate: bool,
) {
    let batch = window.batch;
    let one = window.with_batch(1);
    let k = window.patch_len();
    let out_len = window.positions_per_sample() * filters;
    let mut k_blocks: Vec<Option<&mut [f32]>> = match kernel_grads {
        Some(g) => g.data_mut().chunks_mut(k * filters).map(Some).collect(),
        None => (0..batch).map(|_| None).collect(),
    };
    let mut b_blocks: Vec<Option<&mut [f32]>> = match bias_grads {
        Some(g) => g.data_mut().chunks_mut(filters).map(Some).collect(),
        None => (0..batch).map(|_| None).collect(),
    };
    let jobs: Vec<_> = x
        .chunks(window.input_len())
        .zip(y.chunks(out_len).zip(dy.chunks(out_len)))
        .zip(k_blocks.iter_mut().map(Option::take))
        .zip(b_blocks.iter_mut().map(Option::take))
        .collect();
    let positions = one.positions();
    // Long patches: the sample's patches written out and multiplied (a product, much faster
    // than a walk of the windows); short ones (k ≤ SHORT_K) are summed window by window.
    let patches_len = match k > SHORT_K {
        true => positions * k,
        false => 0,
    };
    run_jobs(jobs, |(((x, (y, dy)), kernel), bias)| {
        with_buffers(patches_len, y.len(), |patches, dz_buf| {
            let dz: &[f32] = if activation == Activation::Linear {
                dy
            } else {
                activation.backward(y, dy, dz_buf, filters, false);
                dz_buf
            };
            if let Some(kernel) = kernel {
                if k > SHORT_K {
                    im2col(x, &one, patches);
                    let patches = MatRef::new(patches, positions, k).t();
                    let dz = MatRef::new(dz, positions, filters);
                    matmul_serial(kernel, patches, dz, accumulate);
                } else {
                    if !accumulate {
                        kernel.fill(0.0);
                    }
                    direct_conv_kernel_grad(x, &one, dz, filters, kernel);
                }
            }
            if let Some(bias) = bias {
                if !accumulate {
                    bias.fill(0.0);
                }
                add_column_sums(dz, filters, bias);
            }
        })
    });
}

/// Max pooling (or, with `average`, average pooling) of the whole batch of `window`; for max
/// pooling, `argmax` (when given, shaped like `out`) receives which tap of each window held
/// the maximum (see [`max_pool`]), what its gradient needs.
pub fn pool2d(
    x: &[f32],
    window: &Window,
    average: bool,
    out: &mut Tensor,
    argmax: Option<&mut [f32]>,
) {
    let per = SAMPLES_PER_JOB;
    let outputs = per * window.positions_per_sample() * window.channels;
    let out = out.data_mut();
    let mut argmax: Vec<Option<&mut [f32]>> = match argmax {
        Some(a) => a.chunks_mut(outputs).map(Some).collect(),
        None => (0..out.len().div_ceil(outputs.max(1)))
            .map(|_| None)
            .collect(),
    };
    let jobs: Vec<_> = x
        .chunks(per * window.input_len())
        .zip(out.chunks_mut(outputs))
        .zip(argmax.iter_mut().map(Option::take))
        .collect();
    run_jobs(jobs, |((x, out), argmax)| {
        let g = window.with_batch(x.len() / window.input_len());
        if average {
            avg_pool(x, &g, out);
        } else {
            max_pool(x, &g, out, argmax);
        }
    });
}

/// The gradient of [`pool2d`] from its output's gradient `dy` (and, for max pooling, the
/// `argmax` the forward pass kept).
pub fn pool2d_backward(dy: &[f32], argmax: &[f32], window: &Window, average: bool, dx: GradBuf) {
    let accumulate = dx.accumulate;
    let per = SAMPLES_PER_JOB;
    let outputs = per * window.positions_per_sample() * window.channels;
    let jobs: Vec<_> = dx
        .buf
        .data_mut()
        .chunks_mut(per * window.input_len())
        .zip(dy.chunks(outputs))
        .enumerate()
        .collect();
    run_jobs(jobs, |(n, (dx, dy))| {
        let g = window.with_batch(dx.len() / window.input_len());
        if average {
            avg_pool_backward(dy, &g, dx, accumulate);
        } else {
            let argmax = &argmax[n * outputs..n * outputs + dy.len()];
            max_pool_backward(dy, argmax, &g, dx, accumulate);
        }
    });
}
