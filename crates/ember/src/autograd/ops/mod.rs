//! The recorded operations. Each file holds a family of ops: the forward computation (as a
//! `Tape` method) and its gradient rule side by side.

pub(crate) mod activation;
pub(crate) mod attention;
pub(crate) mod concat;
pub(crate) mod conv;
pub(crate) mod decoder;
pub(crate) mod elementwise;
pub(crate) mod embedding;
#[cfg(test)]
mod forward_equivalence;
pub(crate) mod linear;
pub(crate) mod loss;
pub(crate) mod normalization;
pub(crate) mod reduce;
pub(crate) mod warp;

use super::tape::{GradOut, Node, Scratch, Var};
use crate::tensor::activation::Activation;
use crate::tensor::conv::Window;
use crate::tensor::conv2d::OutputGrad;
use crate::tensor::decoder::Rope;
use crate::tensor::GradBuf;
use elementwise::{BinaryOp, UnaryOp};
use loss::LossOp;
use normalization::NormStats;
use warp::FillMode;

/// One recorded operation and its inputs.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) enum Op {
    /// A parameter or a constant input: nothing to propagate to.
    #[default]
    Leaf,
    Binary(BinaryOp, Var, Var),
    Unary(UnaryOp, Var),
    Scale(Var, f32),
    Activation(Activation, Var),
    Reshape(Var),
    Sum(Var),
    Mean(Var),
    MatMul(Var, Var),
    /// Two tensors joined along their last axis.
    Concat(Var, Var),
    /// Fused dense layer: `activation(x · w + b)`.
    Linear {
        x: Var,
        w: Var,
        b: Option<Var>,
        activation: Activation,
    },
    /// Fused 2-D convolution: `activation(conv(x, kernel) + bias)`, channels last.
    Conv2d {
        x: Var,
        kernel: Var,
        bias: Option<Var>,
        activation: Activation,
        window: Window,
    },
    /// Average pooling, channels last.
    AvgPool2d {
        x: Var,
        window: Window,
    },
    /// Max pooling, channels last.
    MaxPool2d {
        x: Var,
        window: Window,
    },
    /// Batch normalization over every axis but the last.
    BatchNorm {
        x: Var,
        gamma: Option<Var>,
        beta: Option<Var>,
        stats: NormStats,
    },
    /// Rows of `table` at the ids in `ids`.
    Embedding {
        table: Var,
        ids: Var,
    },
    /// A product per matrix of a batch.
    BatchMatMul(Var, Var),
    /// Fused multi-head scaled dot-product attention; probabilities kept in `aux`.
    Attention {
        q: Var,
        k: Var,
        v: Var,
        heads: usize,
    },
    /// Layer normalization over the last axis.
    LayerNorm {
        x: Var,
        gamma: Option<Var>,
        beta: Option<Var>,
    },
    /// Per-sample affine warps of images (augmentation); transforms kept in `aux`.
    Warp {
        x: Var,
        fill: FillMode,
    },
    /// RMS normalisation over the last axis, scaled by `weight`.
    RmsNorm {
        x: Var,
        weight: Var,
        eps: f32,
    },
    /// Rotary position embeddings of rows at positions `first..`; the factors kept in `aux`.
    Rope {
        x: Var,
        spec: Rope,
        first: usize,
    },
    /// `silu(gate) · up`.
    Swiglu {
        gate: Var,
        up: Var,
    },
    /// `x · wᵀ` for a constant quantised matrix, kept expanded to `f32` in `aux`.
    QLinear {
        x: Var,
    },
    /// A loss of `prediction` against a constant `target`, averaged over the batch, each
    /// sample's term optionally multiplied by a constant weight.
    Loss {
        op: LossOp,
        prediction: Var,
        target: Var,
        weights: Option<Var>,
    },
}

/// Propagates `out.grad` to the gradients of `out`'s inputs (all of which lie in `before`).
pub(crate) fn backward(out: &Node, before: &mut [Node], scratch: &mut Scratch) {
    match out.op {
        Op::Leaf => {}
        Op::Binary(op, a, b) => elementwise::backward_binary(op, a, b, out, before),
        Op::Unary(op, x) => elementwise::backward_unary(op, x, out, before),
        Op::Scale(x, factor) => elementwise::backward_scale(x, factor, out, before),
        Op::Activation(act, x) => activation::backward(act, x, out, before),
        Op::Reshape(x) => reduce::backward_reshape(x, out, before),
        Op::Sum(x) => reduce::backward_sum(x, 1.0, out, before),
        Op::Mean(x) => {
            let factor = crate::tensor::reduce::mean_factor(before[x.0].value.len());
            reduce::backward_sum(x, factor, out, before)
        }
        Op::MatMul(a, b) => linear::backward_matmul(a, b, out, before),
        Op::Concat(a, b) => concat::backward_concat(a, b, out, before),
        Op::Linear {
            x,
            w,
            b,
            activation,
        } => linear::backward_linear(x, w, b, activation, out, before, scratch),
        Op::Conv2d {
            x,
            kernel,
            bias,
            activation,
            window,
        } => conv::backward_conv2d(
            (x, kernel, bias, activation, &window),
            (out.value.data(), OutputGrad::Dense(out.grad.data())),
            before,
            scratch.per_example,
        ),
        Op::MaxPool2d { x, window } => {
            conv::backward_pool(x, &window, false, out, before, scratch.fuse)
        }
        Op::AvgPool2d { x, window } => {
            conv::backward_pool(x, &window, true, out, before, scratch.fuse)
        }
        Op::BatchNorm {
            x,
            gamma,
            beta,
            stats,
        } => normalization::backward_batch_norm(x, gamma, beta, stats, out, before),
        Op::Embedding { table, ids } => embedding::backward_embedding(table, ids, out, before),
        Op::BatchMatMul(a, b) => attention::backward_batch_matmul(a, b, out, before),
        Op::Attention { q, k, v, heads } => {
            attention::backward_attention([q, k, v], heads, out, before)
        }
        Op::LayerNorm { x, gamma, beta } => {
            normalization::backward_layer_norm(x, gamma, beta, out, before)
        }
        Op::Warp { x, fill } => warp::backward_warp(x, fill, out, before),
        Op::RmsNorm { x, weight, eps } => decoder::backward_rms_norm(x, weight, eps, out, before),
        Op::Rope { x, spec, first } => decoder::backward_rope(x, &spec, first, out, before),
        Op::Swiglu { gate, up } => decoder::backward_swiglu(gate, up, out, before),
        Op::QLinear { x } => decoder::backward_qlinear(x, out, before),
        Op::Loss {
            op,
            prediction,
            target,
            weights,
        } => loss::backward(op, prediction, target, weights, out, before),
    }
}

/// The op's name in messages.
pub(crate) fn name(op: &Op) -> &'static str {
    match op {
        Op::Leaf => "a weight or input",
        Op::Binary(..) => "an elementwise op",
        Op::Unary(..) => "an elementwise function",
        Op::Scale(..) => "a scaling",
        Op::Activation(..) => "an activation",
        Op::Reshape(..) => "a reshape",
        Op::Sum(..) | Op::Mean(..) => "a reduction",
        Op::MatMul(..) => "a matrix product",
        Op::Concat(..) => "a concatenation",
        Op::Linear { .. } => "a dense op",
        Op::Conv2d { .. } => "a convolution",
        Op::AvgPool2d { .. } | Op::MaxPool2d { .. } => "a pooling",
        Op::BatchNorm { .. } => "a batch normalization",
        Op::Embedding { .. } => "an embedding lookup",
        Op::BatchMatMul(..) => "a batched matrix product",
        Op::Attention { .. } => "an attention",
        Op::LayerNorm { .. } => "a layer normalization",
        Op::Warp { .. } => "an image warp",
        Op::RmsNorm { .. } => "an RMS normalisation",
        Op::Rope { .. } => "a rotary position embedding",
        Op::Swiglu { .. } => "a SwiGLU",
        Op::QLinear { .. } => "a quantised dense op",
        Op::Loss { .. } => "a loss",
    }
}

/// The inputs of `op` that may not be trained weights during a per-example backward pass:
/// every input but a dense op's or a convolution's weight and bias.
pub(crate) fn per_example_unsupported(op: &Op) -> Vec<Var> {
    match *op {
        Op::Leaf => vec![],
        Op::Binary(_, a, b) | Op::MatMul(a, b) | Op::Concat(a, b) | Op::BatchMatMul(a, b) => {
            vec![a, b]
        }
        Op::Unary(_, x)
        | Op::Scale(x, _)
        | Op::Activation(_, x)
        | Op::Reshape(x)
        | Op::Sum(x)
        | Op::Mean(x)
        | Op::Linear { x, .. }
        | Op::Conv2d { x, .. }
        | Op::AvgPool2d { x, .. }
        | Op::MaxPool2d { x, .. }
        | Op::Warp { x, .. }
        | Op::Rope { x, .. }
        | Op::QLinear { x } => vec![x],
        Op::RmsNorm { x, weight, .. } => vec![x, weight],
        Op::Swiglu { gate, up } => vec![gate, up],
        Op::BatchNorm { x, gamma, beta, .. } | Op::LayerNorm { x, gamma, beta } => {
            [Some(x), gamma, beta].into_iter().flatten().collect()
        }
        Op::Embedding { table, ids } => vec![table, ids],
        Op::Attention { q, k, v, .. } => vec![q, k, v],
        Op::Loss {
            prediction,
            target,
            weights,
            ..
        } => [Some(prediction), Some(target), weights]
            .into_iter()
            .flatten()
            .collect(),
    }
}

/// Every input of `op`: what its backward rule may send a gradient to.
pub(crate) fn inputs(op: &Op) -> Vec<Var> {
    let mut vars = per_example_unsupported(op);
    match *op {
        Op::Linear { w, b, .. } => vars.extend([Some(w), b].into_iter().flatten()),
        Op::Conv2d { kernel, bias, .. } => vars.extend([Some(kernel), bias].into_iter().flatten()),
        _ => {}
    }
    vars
}

/// How many rows (samples × positions) a per-example weight rule splits among the samples.
pub(crate) fn per_example_rows(op: &Op, nodes: &[Node]) -> Option<usize> {
    match *op {
        Op::Linear { x, w, .. } => {
            let inputs = nodes[w.0].value.shape().first().copied()?;
            Some(nodes[x.0].value.len() / inputs.max(1))
        }
        Op::Conv2d { window, .. } => Some(window.batch),
        _ => None,
    }
}

/// Whether `v` is a trained weight whose gradient a per-example pass keeps per sample.
pub(crate) fn per_example_weight(
    nodes: &[Node],
    v: Var,
    per_example: Option<usize>,
) -> Option<usize> {
    let node = &nodes[v.0];
    per_example.filter(|_| matches!(node.op, Op::Leaf) && node.requires_grad)
}

/// Whether the per-sample kernels add into the buffers of a weight pair (kernel and bias,
/// taken by [`GradOut::take_per_example`]) or overwrite them: they add when either already
/// holds this step's terms (a weight read by another op too), the fresh one zeroed first.
pub(crate) fn per_example_accumulate(grads: [Option<&mut GradOut>; 2]) -> bool {
    let mut grads: Vec<&mut GradOut> = grads.into_iter().flatten().collect();
    let accumulate = grads.iter().any(|g| g.accumulate);
    if accumulate {
        for g in grads.iter_mut().filter(|g| !g.accumulate) {
            g.buf.fill(0.0);
        }
    }
    accumulate
}

/// A gradient buffer taken out of its node, as the kernels fill it.
pub(crate) fn grad_buf(grad: &mut GradOut) -> GradBuf<'_> {
    GradBuf::new(&mut grad.buf, grad.accumulate)
}
