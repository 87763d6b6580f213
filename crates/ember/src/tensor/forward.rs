//! Tape-free inference: each function checks its operands as the `Tape` op of the same name
//! does (the same errors) and runs the same kernel, so its values are bit-identical to the
//! tape's.

use super::activation::Activation;
use super::attention::{
    attention_dims, attention_inference, batch_matmul as batch_matmul_kernel, batch_matmul_dims,
};
use super::broadcast::broadcast_shape;
use super::conv::{Pooling, Window};
use super::conv2d::{conv2d as conv2d_kernel, conv2d_window, pool2d, PoolInto};
use super::decoder::{
    self, cached_attention_head_dim, rms_norm_features, rope_check, swiglu_check, LayerCache, Rope,
};
use super::elementwise::{self, BinaryOp, UnaryOp};
use super::embedding::{embedding_dim, gather};
use super::linear::{linear as linear_kernel, linear_dims, linear_shape};
use super::loss::{check_loss, loss as loss_kernel, LossOp};
use super::normalization::{
    batch_norm as batch_norm_kernel, batch_norm_channels, layer_norm as layer_norm_kernel,
    layer_norm_features,
};
use super::quant::{self, Q8Block, QMatrix};
use super::reduce::scaled_sum;
use super::Tensor;
use crate::error::{Error, Result};

/// The dense layer, `activation(x · w + b)`: x (…, in), w (in, units), b (units).
pub fn linear(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    activation: Activation,
) -> Result<Tensor> {
    let (inputs, units) = linear_dims(x.shape(), w.shape(), b.map(Tensor::shape))?;
    let rows = x.len() / inputs.max(1);
    let mut out = Tensor::zeros(&linear_shape(x.shape(), units));
    // The tape records an activation that needs its input as a node of its own, after the
    // product: the same values as applying it here.
    let fused = fused(activation);
    let b = b.map(Tensor::data);
    linear_kernel(x.data(), w.data(), b, rows, inputs, units, fused, &mut out);
    Ok(apply_unfused(activation, out))
}

/// `activation(conv2d(x, kernel) + bias)`, channels last: x (batch, height, width, channels),
/// kernel (kh, kw, channels, filters), bias (filters).
pub fn conv2d(
    x: &Tensor,
    kernel: &Tensor,
    bias: Option<&Tensor>,
    strides: (usize, usize),
    same: bool,
    activation: Activation,
) -> Result<Tensor> {
    Ok(conv2d_pooled(x, kernel, bias, (strides, same), activation, None)?.0)
}

/// [`conv2d`], and with `pooling` that pooling of its output too, computed in the same pass
/// (each run of samples pooled while it is in cache). No pooled output when the activation
/// is applied apart (GELU) or the pooling does not fit the output: the caller then pools as
/// usual, which reports any error.
pub fn conv2d_pooled(
    x: &Tensor,
    kernel: &Tensor,
    bias: Option<&Tensor>,
    (strides, same): ((usize, usize), bool),
    activation: Activation,
    pooling: Option<Pooling>,
) -> Result<(Tensor, Option<Tensor>)> {
    let (window, filters) = conv2d_window(
        x.shape(),
        kernel.shape(),
        bias.map(Tensor::shape),
        strides,
        same,
    )?;
    let shape = [window.batch, window.out_height, window.out_width, filters];
    let mut out = Tensor::zeros(&shape);
    let pool = pooling
        .filter(|_| !activation.needs_input())
        .and_then(|p| Some((p.window(&shape).ok()?, p.average)));
    let mut pooled = pool
        .as_ref()
        .map(|(w, _)| Tensor::zeros(&[w.batch, w.out_height, w.out_width, w.channels]));
    let into = pool
        .as_ref()
        .zip(pooled.as_mut())
        .map(|((w, average), out)| PoolInto {
            window: w,
            average: *average,
            out,
            argmax: None,
        });
    conv2d_kernel(
        x.data(),
        &window,
        kernel.data(),
        bias.map(Tensor::data),
        filters,
        fused(activation),
        &mut out,
        into,
    );
    Ok((apply_unfused(activation, out), pooled))
}

/// Max pooling of (batch, height, width, channels) over `pool`-sized windows.
pub fn max_pool2d(
    x: &Tensor,
    pool: (usize, usize),
    strides: (usize, usize),
    same: bool,
) -> Result<Tensor> {
    pooling(x, Window::new(x.shape(), pool, strides, same)?, false)
}

/// Average pooling of (batch, height, width, channels) over `pool`-sized windows.
pub fn avg_pool2d(
    x: &Tensor,
    pool: (usize, usize),
    strides: (usize, usize),
    same: bool,
) -> Result<Tensor> {
    pooling(x, Window::new(x.shape(), pool, strides, same)?, true)
}

fn pooling(x: &Tensor, window: Window, average: bool) -> Result<Tensor> {
    let shape = [
        window.batch,
        window.out_height,
        window.out_width,
        window.channels,
    ];
    let mut out = Tensor::zeros(&shape);
    pool2d(x.data(), &window, average, &mut out, None);
    Ok(out)
}

/// Inference batch norm with given per-channel statistics (the moving averages).
pub fn batch_norm(
    x: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    mean: &Tensor,
    variance: &Tensor,
    epsilon: f32,
) -> Result<Tensor> {
    let per_channel: Vec<&[usize]> = [gamma, beta, Some(mean), Some(variance)]
        .into_iter()
        .flatten()
        .map(Tensor::shape)
        .collect();
    let channels = batch_norm_channels(x.shape(), &per_channel, epsilon)?;
    let mut stats = vec![0.0; 3 * channels];
    let mut out = Tensor::zeros(x.shape());
    batch_norm_kernel(
        x.data(),
        channels,
        gamma.map(Tensor::data),
        beta.map(Tensor::data),
        Some((mean.data(), variance.data())),
        epsilon,
        &mut stats,
        &mut out,
    );
    Ok(out)
}

/// Layer normalization over the last axis, scaled and shifted by `gamma` and `beta` if given.
pub fn layer_norm(
    x: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    epsilon: f32,
) -> Result<Tensor> {
    let per_feature: Vec<&[usize]> = [gamma, beta]
        .into_iter()
        .flatten()
        .map(Tensor::shape)
        .collect();
    let features = layer_norm_features(x.shape(), &per_feature, epsilon)?;
    let mut stats = vec![0.0; 2 * (x.len() / features)];
    let mut out = Tensor::zeros(x.shape());
    layer_norm_kernel(
        x.data(),
        features,
        gamma.map(Tensor::data),
        beta.map(Tensor::data),
        epsilon,
        &mut stats,
        &mut out,
    );
    Ok(out)
}

/// RMS normalisation over the last axis, scaled by `weight` (features), into a buffer from
/// `scratch`.
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f32, scratch: &mut Scratch) -> Result<Tensor> {
    rms_norm_features(x.shape(), weight.shape(), eps)?;
    let mut out = scratch.copy(x);
    decoder::rms_norm(out.data_mut(), weight.data(), eps);
    Ok(out)
}

/// Rotary position embeddings of `x` (tokens, heads · head_dim), its rows at positions
/// `first..`, in its own buffer.
pub fn rope(mut x: Tensor, spec: &Rope, first: usize, factors: Option<&[f32]>) -> Result<Tensor> {
    rope_check(x.shape(), spec, factors)?;
    decoder::rope(x.data_mut(), spec, first, factors);
    Ok(x)
}

/// `silu(gate) · up`, in `gate`'s buffer.
pub fn swiglu(mut gate: Tensor, up: &Tensor) -> Result<Tensor> {
    swiglu_check(gate.shape(), up.shape())?;
    decoder::swiglu(gate.data_mut(), up.data());
    Ok(gate)
}

/// What an eager pass keeps from op to op rather than allocating it afresh: the 8-bit
/// quantisation of a quantised product's input, and the buffers of values it no longer
/// needs (megabytes each in a long prompt: reused, they spare the page faults and cache
/// misses of fresh ones, as a hand-written decoder's preallocated buffers would).
#[derive(Debug, Default)]
pub struct Scratch {
    q8: Vec<Q8Block>,
    spare: Vec<Vec<f32>>,
}

/// The most spare buffers a [`Scratch`] keeps: a decoder block has a few values alive at once.
const SPARE_BUFFERS: usize = 8;

impl Scratch {
    /// Keeps `t`'s buffer for a later output.
    pub fn recycle(&mut self, t: Tensor) {
        if self.spare.len() < SPARE_BUFFERS {
            self.spare.push(t.data);
        }
    }

    /// The smallest spare buffer that holds `len` values, emptied; a new one when none does.
    fn buffer(&mut self, len: usize) -> Vec<f32> {
        let best = (0..self.spare.len())
            .filter(|&i| self.spare[i].capacity() >= len)
            .min_by_key(|&i| self.spare[i].capacity());
        match best {
            Some(i) => {
                let mut data = self.spare.swap_remove(i);
                data.clear();
                data
            }
            None => Vec::with_capacity(len),
        }
    }

    /// A tensor of `shape` for a kernel that writes every element: a spare buffer long
    /// enough keeps its old values rather than being zeroed first.
    fn output(&mut self, shape: &[usize]) -> Tensor {
        let len = super::numel(shape);
        let fit = (0..self.spare.len())
            .filter(|&i| self.spare[i].len() >= len)
            .min_by_key(|&i| self.spare[i].len());
        let mut data = match fit {
            Some(i) => self.spare.swap_remove(i),
            None => self.buffer(len),
        };
        data.truncate(len);
        data.resize(len, 0.0);
        Tensor {
            shape: shape.to_vec(),
            data,
        }
    }

    /// A tensor of zeros.
    fn zeros(&mut self, shape: &[usize]) -> Tensor {
        let len = super::numel(shape);
        let mut data = self.buffer(len);
        data.resize(len, 0.0);
        Tensor {
            shape: shape.to_vec(),
            data,
        }
    }

    /// A copy of `x`.
    fn copy(&mut self, x: &Tensor) -> Tensor {
        let mut data = self.buffer(x.len());
        data.extend_from_slice(x.data());
        Tensor {
            shape: x.shape.clone(),
            data,
        }
    }
}

/// `x · wᵀ` for each quantised matrix `w` (outputs × inputs) of `ws`: x (…, inputs) →
/// (…, outputs), one tensor per matrix, `x` quantised once for all of them (into `scratch`).
pub fn qlinear(x: &Tensor, ws: &[&QMatrix], scratch: &mut Scratch) -> Result<Vec<Tensor>> {
    let mut outs = ws
        .iter()
        // Every element is written: no need to zero.
        .map(|w| Ok(scratch.output(&quant::matmul_shape(x.shape(), w)?)))
        .collect::<Result<Vec<_>>>()?;
    let rows = x.len() / x.row_len_last().max(1);
    let mut bufs: Vec<&mut [f32]> = outs.iter_mut().map(Tensor::data_mut).collect();
    quant::matmul_shared(ws, x.data(), rows, &mut bufs, &mut scratch.q8);
    Ok(outs)
}

/// Rows of a quantised `table` (vocabulary, dim) at `ids`, expanded to `f32`: (ids, dim).
pub fn qembedding(table: &QMatrix, ids: &[u32]) -> Result<Tensor> {
    if let Some(&bad) = ids.iter().find(|&&id| id as usize >= table.rows) {
        return Err(Error::invalid(format!(
            "id {bad} is outside a table of {} rows",
            table.rows
        )));
    }
    let mut out = Tensor::zeros(&[ids.len(), table.cols]);
    for (row, &id) in out.data_mut().chunks_exact_mut(table.cols).zip(ids) {
        table.row_f32(id as usize, row);
    }
    Ok(out)
}

/// Causal attention of the queries `q` (tokens, heads · head_dim) over `cache` once the
/// new keys `k` and values `v` (tokens, kv_heads · head_dim) are appended to it.
pub fn cached_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    cache: &mut LayerCache,
    heads: usize,
    scratch: &mut Scratch,
) -> Result<Tensor> {
    let head_dim = cached_attention_head_dim(q.shape(), k.shape(), v.shape(), cache, heads)?;
    cache.append(k.data(), v.data(), head_dim);
    let mut out = scratch.zeros(q.shape());
    decoder::causal_attention(q.data(), cache, heads, head_dim, out.data_mut());
    Ok(out)
}

/// Rows of `table` (vocabulary, dim) at the integer ids in `ids`: shape `ids.shape + [dim]`.
pub fn embedding(table: &Tensor, ids: &Tensor) -> Result<Tensor> {
    let dim = embedding_dim(table.shape(), ids.data())?;
    let mut shape = ids.shape().to_vec();
    shape.push(dim);
    let mut out = Tensor::zeros(&shape);
    gather(table.data(), dim, ids.data(), out.data_mut());
    Ok(out)
}

/// Multi-head scaled dot-product attention (see `tensor::attention`).
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
    heads: usize,
) -> Result<Tensor> {
    let dims = attention_dims(
        q.shape(),
        k.shape(),
        v.shape(),
        mask.map(Tensor::shape),
        heads,
    )?;
    let mut out = Tensor::zeros(q.shape());
    let inputs = (q.data(), k.data(), v.data());
    let mask = mask.map(Tensor::data);
    attention_inference(inputs, mask, dims, heads, out.data_mut());
    Ok(out)
}

/// `a` and `b` joined along their last axis.
pub fn concat(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let shape = super::concat::concat_shape(a.shape(), b.shape())?;
    let (m, n) = (a.row_len_last(), b.row_len_last());
    let mut out = Tensor::zeros(&shape);
    super::concat::concat_last(a.data(), m, b.data(), n, &mut out);
    Ok(out)
}

/// `a · b` for each of a batch of matrices: (batch, m, k) · (batch, k, n) → (batch, m, n).
pub fn batch_matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let dims = batch_matmul_dims(a.shape(), b.shape())?;
    let [batch, m, _, n] = dims;
    let mut out = Tensor::zeros(&[batch, m, n]);
    batch_matmul_kernel(a.data(), b.data(), dims, &mut out);
    Ok(out)
}

/// Any binary elementwise op, with broadcasting.
pub fn binary(op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let shape = broadcast_shape(a.shape(), b.shape())?;
    let mut out = Tensor::zeros(&shape);
    elementwise::binary(
        op,
        &shape,
        (a.data(), a.shape()),
        (b.data(), b.shape()),
        &mut out,
    );
    Ok(out)
}

/// [`binary`] in `a`'s own buffer when the result has `a`'s shape (a residual added to the
/// stream it belongs to, a bias to its rows); otherwise into a new one.
pub fn binary_owned(op: BinaryOp, mut a: Tensor, b: &Tensor) -> Result<Tensor> {
    let shape = broadcast_shape(a.shape(), b.shape())?;
    if shape != a.shape() {
        return binary(op, &a, b);
    }
    elementwise::binary_in_place(op, (&mut a.data, &a.shape), (b.data(), b.shape()));
    Ok(a)
}

/// Any unary elementwise op.
pub fn unary(op: UnaryOp, x: &Tensor) -> Result<Tensor> {
    let mut out = Tensor::zeros(x.shape());
    elementwise::unary(op, x.data(), &mut out);
    Ok(out)
}

/// `x * factor`.
pub fn scale(x: &Tensor, factor: f32) -> Tensor {
    let mut out = Tensor::zeros(x.shape());
    elementwise::scale(x.data(), factor, &mut out);
    out
}

/// `activation(x)` in place; softmax runs over the last axis.
pub fn activation(activation: Activation, mut x: Tensor) -> Tensor {
    activation.apply_to(&mut x);
    x
}

/// Sum of all elements, as a scalar.
pub fn sum(x: &Tensor) -> Tensor {
    Tensor::scalar(scaled_sum(x.data(), 1.0))
}

/// The value Tape::weighted_loss would record (same kernel, same f32 result).
pub fn loss(
    op: LossOp,
    prediction: &Tensor,
    target: &Tensor,
    weights: Option<&Tensor>,
) -> Result<f32> {
    check_loss(op, prediction.shape(), target, weights.map(Tensor::len))?;
    let classes = *prediction.shape().last().unwrap_or(&1);
    let mut probs = Vec::new();
    Ok(loss_kernel(
        op,
        prediction.data(),
        classes,
        target.data(),
        weights.map(Tensor::data),
        &mut probs,
    ))
}

/// The activation a linear or convolution kernel applies itself: not one that needs its
/// input, which the tape records as a node of its own.
fn fused(activation: Activation) -> Activation {
    if activation.needs_input() {
        Activation::Linear
    } else {
        activation
    }
}

/// Applies an activation that [`fused`] left out, over the last axis.
fn apply_unfused(activation: Activation, out: Tensor) -> Tensor {
    if activation.needs_input() {
        self::activation(activation, out)
    } else {
        out
    }
}
