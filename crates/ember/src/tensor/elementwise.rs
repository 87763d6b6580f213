//! Elementwise kernels: broadcasting binary maths, unary maths, scaling, and writing or adding
//! values into a gradient buffer.

use super::broadcast::for_each_offset;
use super::Tensor;

/// Binary elementwise operations, with NumPy broadcasting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// Unary elementwise maths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Exp,
    /// Natural logarithm.
    Log,
    Sqrt,
    Square,
}

impl BinaryOp {
    fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
        }
    }

    /// (d out / d a, d out / d b) at (a, b).
    fn partials(self, a: f32, b: f32) -> (f32, f32) {
        match self {
            BinaryOp::Add => (1.0, 1.0),
            BinaryOp::Sub => (1.0, -1.0),
            BinaryOp::Mul => (b, a),
            BinaryOp::Div => (1.0 / b, -a / (b * b)),
        }
    }
}

impl UnaryOp {
    fn apply(self, x: f32) -> f32 {
        match self {
            UnaryOp::Neg => -x,
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => x.ln(),
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Square => x * x,
        }
    }

    /// d out / d x, from the input x and the output y.
    fn derivative(self, x: f32, y: f32) -> f32 {
        match self {
            UnaryOp::Neg => -1.0,
            UnaryOp::Exp => y,
            UnaryOp::Log => 1.0 / x,
            UnaryOp::Sqrt => 0.5 / y,
            UnaryOp::Square => 2.0 * x,
        }
    }
}

/// Writes `values` into `dst`, or adds them when `accumulate` (a gradient another path has
/// already written this step).
#[inline(always)]
pub fn store(dst: &mut [f32], values: impl Iterator<Item = f32>, accumulate: bool) {
    for (d, v) in dst.iter_mut().zip(values) {
        if accumulate {
            *d += v;
        } else {
            *d = v;
        }
    }
}

/// `out = op(a, b)` over the broadcast shape `out_shape`.
pub fn binary(
    op: BinaryOp,
    out_shape: &[usize],
    (a, a_shape): (&[f32], &[usize]),
    (b, b_shape): (&[f32], &[usize]),
    out: &mut Tensor,
) {
    let out = out.data_mut();
    if a_shape == b_shape {
        // No broadcasting: a straight zip, which vectorises.
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            *o = op.apply(x, y);
        }
    } else {
        for_each_offset(out_shape, a_shape, b_shape, |o, ia, ib| {
            out[o] = op.apply(a[ia], b[ib])
        });
    }
}

/// `a ← op(a, b)`, for `b` broadcast to `a`'s shape (the output's: the caller checks).
pub fn binary_in_place(
    op: BinaryOp,
    (a, a_shape): (&mut [f32], &[usize]),
    (b, b_shape): (&[f32], &[usize]),
) {
    if a_shape.ends_with(b_shape) && !b.is_empty() {
        // `b` repeats row by row (equal shapes, or a bias over the last axes): a straight
        // zip per row, which vectorises.
        for row in a.chunks_exact_mut(b.len()) {
            for (x, &y) in row.iter_mut().zip(b) {
                *x = op.apply(*x, y);
            }
        }
    } else {
        for_each_offset(a_shape, a_shape, b_shape, |o, _, ib| {
            a[o] = op.apply(a[o], b[ib])
        });
    }
}

/// Adds the gradient of `op(a, b)` with respect to operand `which` (0: a, 1: b) into `dst`
/// (shaped like that operand); broadcast axes sum their contributions.
pub fn binary_backward(
    op: BinaryOp,
    which: usize,
    out_shape: &[usize],
    (a, a_shape): (&[f32], &[usize]),
    (b, b_shape): (&[f32], &[usize]),
    grad_out: &[f32],
    dst: &mut Tensor,
) {
    let dst = dst.data_mut();
    for_each_offset(out_shape, a_shape, b_shape, |o, ia, ib| {
        let (da, db) = op.partials(a[ia], b[ib]);
        if which == 0 {
            dst[ia] += grad_out[o] * da;
        } else {
            dst[ib] += grad_out[o] * db;
        }
    });
}

/// `out = op(x)`.
pub fn unary(op: UnaryOp, x: &[f32], out: &mut Tensor) {
    for (o, &v) in out.data_mut().iter_mut().zip(x) {
        *o = op.apply(v);
    }
}

/// The gradient of `y = op(x)` from the output's gradient: written, or added when accumulating.
pub fn unary_backward(
    op: UnaryOp,
    x: &[f32],
    y: &[f32],
    grad_y: &[f32],
    grad_x: &mut Tensor,
    accumulate: bool,
) {
    let values = x
        .iter()
        .zip(y)
        .zip(grad_y)
        .map(|((&x, &y), &g)| g * op.derivative(x, y));
    store(grad_x.data_mut(), values, accumulate);
}

/// `out = x · factor`.
pub fn scale(x: &[f32], factor: f32, out: &mut Tensor) {
    for (o, &v) in out.data_mut().iter_mut().zip(x) {
        *o = v * factor;
    }
}

/// The gradient of `x · factor`: written, or added when accumulating.
pub fn scale_backward(grad_y: &[f32], factor: f32, grad_x: &mut Tensor, accumulate: bool) {
    store(
        grad_x.data_mut(),
        grad_y.iter().map(|&g| g * factor),
        accumulate,
    );
}
