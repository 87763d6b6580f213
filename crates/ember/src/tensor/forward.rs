//! TEMPORARY stand-in for the tape-free forward kernels (replaced by the kernels branch).

use crate::autograd::{BinaryOp, LossOp, Tape, UnaryOp};
use crate::error::Result;
use crate::tensor::activation::Activation;
use crate::tensor::Tensor;

fn run(
    inputs: &[&Tensor],
    f: impl FnOnce(&mut Tape, &[crate::Var]) -> Result<crate::Var>,
) -> Result<Tensor> {
    let mut tape = Tape::new();
    let vars: Vec<_> = inputs.iter().map(|t| tape.constant(t)).collect();
    let out = f(&mut tape, &vars)?;
    Ok(tape.take_value(out))
}

fn opt<'a>(inputs: &mut Vec<&'a Tensor>, t: Option<&'a Tensor>) -> Option<usize> {
    t.map(|t| {
        inputs.push(t);
        inputs.len() - 1
    })
}

pub fn linear(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    activation: Activation,
) -> Result<Tensor> {
    let mut i = vec![x, w];
    let bi = opt(&mut i, b);
    run(&i, |t, v| {
        t.linear(v[0], v[1], bi.map(|j| v[j]), activation)
    })
}

pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    run(&[a, b], |t, v| t.matmul(v[0], v[1]))
}

pub fn conv2d(
    x: &Tensor,
    kernel: &Tensor,
    bias: Option<&Tensor>,
    strides: (usize, usize),
    same: bool,
    activation: Activation,
) -> Result<Tensor> {
    let mut i = vec![x, kernel];
    let bi = opt(&mut i, bias);
    run(&i, |t, v| {
        t.conv2d(v[0], v[1], bi.map(|j| v[j]), strides, same, activation)
    })
}

pub fn max_pool2d(
    x: &Tensor,
    pool: (usize, usize),
    strides: (usize, usize),
    same: bool,
) -> Result<Tensor> {
    run(&[x], |t, v| t.max_pool2d(v[0], pool, strides, same))
}

pub fn avg_pool2d(
    x: &Tensor,
    pool: (usize, usize),
    strides: (usize, usize),
    same: bool,
) -> Result<Tensor> {
    run(&[x], |t, v| t.avg_pool2d(v[0], pool, strides, same))
}

pub fn batch_norm(
    x: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    mean: &Tensor,
    variance: &Tensor,
    epsilon: f32,
) -> Result<Tensor> {
    let mut i = vec![x, mean, variance];
    let gi = opt(&mut i, gamma);
    let bi = opt(&mut i, beta);
    run(&i, |t, v| {
        let stats = crate::autograd::NormStats::Given {
            mean: v[1],
            variance: v[2],
        };
        t.batch_norm(v[0], gi.map(|j| v[j]), bi.map(|j| v[j]), stats, epsilon)
    })
}

pub fn layer_norm(
    x: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    epsilon: f32,
) -> Result<Tensor> {
    let mut i = vec![x];
    let gi = opt(&mut i, gamma);
    let bi = opt(&mut i, beta);
    run(&i, |t, v| {
        t.layer_norm(v[0], gi.map(|j| v[j]), bi.map(|j| v[j]), epsilon)
    })
}

pub fn embedding(table: &Tensor, ids: &Tensor) -> Result<Tensor> {
    run(&[table, ids], |t, v| t.embedding(v[0], v[1]))
}

pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
    heads: usize,
) -> Result<Tensor> {
    let mut i = vec![q, k, v];
    let mi = opt(&mut i, mask);
    run(&i, |t, x| {
        t.attention(x[0], x[1], x[2], mi.map(|j| x[j]), heads)
    })
}

pub fn batch_matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    run(&[a, b], |t, v| t.batch_matmul(v[0], v[1]))
}

pub fn binary(op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    run(&[a, b], |t, v| t.binary(op, v[0], v[1]))
}

pub fn unary(op: UnaryOp, x: &Tensor) -> Result<Tensor> {
    run(&[x], |t, v| t.unary(op, v[0]))
}

pub fn scale(x: &Tensor, factor: f32) -> Tensor {
    run(&[x], |t, v| t.scale(v[0], factor)).expect("scale")
}

pub fn activation(activation: Activation, x: Tensor) -> Tensor {
    let mut x = x;
    let row = x.shape().last().copied().unwrap_or(1).max(1);
    activation.apply(x.data_mut(), row);
    x
}

pub fn sum(x: &Tensor) -> Tensor {
    run(&[x], |t, v| t.sum(v[0])).expect("sum")
}

pub fn mean(x: &Tensor) -> Tensor {
    run(&[x], |t, v| t.mean(v[0])).expect("mean")
}

pub fn loss(
    op: LossOp,
    prediction: &Tensor,
    target: &Tensor,
    weights: Option<&Tensor>,
) -> Result<f32> {
    let mut i = vec![prediction, target];
    let wi = opt(&mut i, weights);
    run(&i, |t, v| t.weighted_loss(op, v[0], v[1], wi.map(|j| v[j])))?.item()
}
