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

/// `out = activation(conv2d(x, kernel) + bias)` over the whole batch of `window`; out is
/// (batch, out_height, out_width, filters).
pub fn conv2d(
    x: &[f32],
    window: &Window,
    kernel: &[f32],
    bias: Option<&[f32]>,
    filters: usize,
    activation: Activation,
    out: &mut Tensor,
) {
    let out = out.data_mut();
    // Each job takes a run of samples: im2col, one product, bias and activation. The
    // patches are not kept: the backward pass recomputes them, which is cheaper than
    // reading them back from memory.
    let (k, per) = (window.patch_len(), SAMPLES_PER_JOB);
    let rows = window.positions_per_sample();
    let kernel = MatRef::new(kernel, k, filters);
    let jobs: Vec<_> = x
        .chunks(per * window.input_len())
        .zip(out.chunks_mut(per * rows * filters))
        .collect();
    let algorithm = conv_algorithm();
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

/// The gradients of [`conv2d`], from its output `y` and the output's gradient `dy`; each one
/// only when wanted. The bias gradient is always added to (pass it zeroed to overwrite).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward(
    x: &[f32],
    window: &Window,
    kernel: &[f32],
    filters: usize,
    activation: Activation,
    (y, dy): (&[f32], &[f32]),
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
    let jobs: Vec<_> = y
        .chunks(chunk_out)
        .zip(dy.chunks(chunk_out))
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

/// Each sample's own kernel and bias gradients (per-example gradients): sample i adds its
/// patchesᵀ · dz to its (patch, filters) block of `kernel_grads` and its dz's column sums to
/// its block of `bias_grads`; `(y, dy)` are the op's output and its gradient.
pub fn conv2d_per_sample_grads(
    x: &[f32],
    window: &Window,
    filters: usize,
    activation: Activation,
    (y, dy): (&[f32], &[f32]),
    kernel_grads: Option<&mut Tensor>,
    bias_grads: Option<&mut Tensor>,
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
    run_jobs(jobs, |(((x, (y, dy)), kernel), bias)| {
        let mut dz_buf = Vec::new();
        let dz: &[f32] = if activation == Activation::Linear {
            dy
        } else {
            dz_buf.resize(y.len(), 0.0);
            activation.backward(y, dy, &mut dz_buf, filters, false);
            &dz_buf
        };
        if let Some(kernel) = kernel {
            direct_conv_kernel_grad(x, &one, dz, filters, kernel);
        }
        if let Some(bias) = bias {
            add_column_sums(dz, filters, bias);
        }
    });
}

/// Max pooling (or, with `average`, average pooling) of the whole batch of `window`.
pub fn pool2d(x: &[f32], window: &Window, average: bool, out: &mut Tensor) {
    let kernel = if average { avg_pool } else { max_pool };
    let per = SAMPLES_PER_JOB;
    let jobs: Vec<_> = x
        .chunks(per * window.input_len())
        .zip(
            out.data_mut()
                .chunks_mut(per * window.positions_per_sample() * window.channels),
        )
        .collect();
    run_jobs(jobs, |(x, out)| {
        kernel(x, &window.with_batch(x.len() / window.input_len()), out)
    });
}

/// The gradient of [`pool2d`] from its input `x`, output `y` and the output's gradient `dy`.
pub fn pool2d_backward(
    x: &[f32],
    (y, dy): (&[f32], &[f32]),
    window: &Window,
    average: bool,
    dx: GradBuf,
) {
    let accumulate = dx.accumulate;
    let per = SAMPLES_PER_JOB;
    let outputs = per * window.positions_per_sample() * window.channels;
    let jobs: Vec<_> = x
        .chunks(per * window.input_len())
        .zip(dx.buf.data_mut().chunks_mut(per * window.input_len()))
        .zip(y.chunks(outputs))
        .zip(dy.chunks(outputs))
        .collect();
    run_jobs(jobs, |(((x, dx), y), dy)| {
        let g = window.with_batch(x.len() / window.input_len());
        if average {
            avg_pool_backward(dy, &g, dx, accumulate);
        } else {
            max_pool_backward(x, y, dy, &g, dx, accumulate);
        }
    });
}
