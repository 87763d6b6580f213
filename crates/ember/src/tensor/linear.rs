//! The dense layer's kernels: `activation(x · w + b)` in one pass, and the bias gradient.

use super::activation::Activation;
use super::matmul::{matmul, matmul_serial, MatRef};
use super::threads::run_jobs;
use super::Tensor;
use crate::error::{Error, Result};

/// Checks a matrix product's operands, (m, k) · (k, n): returns (m, k, n).
pub fn matmul_dims(a: &[usize], b: &[usize]) -> Result<(usize, usize, usize)> {
    match (a, b) {
        ([m, k], [k2, n]) if k == k2 => Ok((*m, *k, *n)),
        _ => Err(Error::shape(
            "matmul",
            format!("cannot multiply {a:?} by {b:?}"),
        )),
    }
}

/// Checks the dense op's operands, x (…, in), w (in, units), b (units): returns (in, units).
pub fn linear_dims(x: &[usize], w: &[usize], b: Option<&[usize]>) -> Result<(usize, usize)> {
    let (inputs, units) = match w {
        [i, u] => (*i, *u),
        _ => {
            return Err(Error::shape(
                "dense",
                format!("kernel must be 2-D, got {w:?}"),
            ))
        }
    };
    if x.last() != Some(&inputs) {
        return Err(Error::shape(
            "dense",
            format!("input {x:?} does not end in {inputs} features (kernel {w:?})"),
        ));
    }
    if let Some(b) = b {
        if b != [units] {
            return Err(Error::shape(
                "dense",
                format!("bias {b:?} should be [{units}]"),
            ));
        }
    }
    Ok((inputs, units))
}

/// The output shape of the dense op: `x`'s with the last axis `units` wide.
pub fn linear_shape(x: &[usize], units: usize) -> Vec<usize> {
    let mut shape = x.to_vec();
    if let Some(last) = shape.last_mut() {
        *last = units;
    }
    shape
}

/// `out = activation(x · w + b)`, x (rows, inputs), w (inputs, units), out (rows, units).
/// Fused: the bias is the product's starting value and the activation runs in place, so the
/// layer writes its output once.
#[allow(clippy::too_many_arguments)]
pub fn linear(
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    rows: usize,
    inputs: usize,
    units: usize,
    activation: Activation,
    out: &mut Tensor,
) {
    let out = out.data_mut();
    if let Some(b) = b {
        for row in out.chunks_mut(units) {
            row.copy_from_slice(b);
        }
    }
    matmul(
        out,
        MatRef::new(x, rows, inputs),
        MatRef::new(w, inputs, units),
        b.is_some(),
    );
    activation.apply(out, units);
}

/// Each sample's own dense-weight gradients (per-example gradients): sample i owns the
/// `rows / batch` consecutive rows of `x` (rows, inputs) and `dz` (rows, units), and writes
/// `x_iᵀ · dz_i` into its (inputs, units) block of `w_grads` and the column sums of `dz_i`
/// into its block of `b_grads` (adds them with `accumulate`: a weight another op also read).
pub fn linear_per_sample_grads(
    x: &[f32],
    dz: &[f32],
    (batch, inputs, units): (usize, usize, usize),
    (w_grads, b_grads): (Option<&mut Tensor>, Option<&mut Tensor>),
    accumulate: bool,
) {
    let per = x.len() / inputs.max(1) / batch.max(1);
    let mut w_blocks: Vec<Option<&mut [f32]>> = match w_grads {
        Some(w) => w.data_mut().chunks_mut(inputs * units).map(Some).collect(),
        None => (0..batch).map(|_| None).collect(),
    };
    let mut b_blocks: Vec<Option<&mut [f32]>> = match b_grads {
        Some(b) => b.data_mut().chunks_mut(units).map(Some).collect(),
        None => (0..batch).map(|_| None).collect(),
    };
    let jobs: Vec<_> = x
        .chunks(per * inputs)
        .zip(dz.chunks(per * units))
        .zip(w_blocks.iter_mut().map(Option::take))
        .zip(b_blocks.iter_mut().map(Option::take))
        .collect();
    // One job a sample: each writes only its own blocks, so any thread count agrees.
    run_jobs(jobs, |(((x, dz), w), b)| {
        if let Some(w) = w {
            let x = MatRef::new(x, per, inputs);
            matmul_serial(w, x.t(), MatRef::new(dz, per, units), accumulate);
        }
        if let Some(b) = b {
            if !accumulate {
                b.fill(0.0);
            }
            add_column_sums(dz, units, b);
        }
    });
}

/// The bias gradient of the dense op: the column sums of `dz` (rows of `units` values) added
/// into `grad`.
pub fn bias_grad(dz: &[f32], units: usize, grad: &mut Tensor) {
    add_column_sums(dz, units, grad.data_mut());
}

/// Adds the column sums of `dz` (rows of `units` values) into `dst`: a bias's gradient.
pub fn add_column_sums(dz: &[f32], units: usize, dst: &mut [f32]) {
    for row in dz.chunks(units) {
        dst.iter_mut().zip(row).for_each(|(d, v)| *d += v);
    }
}
