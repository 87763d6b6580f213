//! The op API that a layer's one forward is written against. A [`Pass`] runs each op either
//! eagerly (inference: no tape, nothing kept, the model borrowed `&self`) or by recording it
//! on a [`Tape`] (training and gradients): recording is a mode of the same ops, as Burn's
//! autodiff backend decorates a backend, so no layer is written twice.
//!
//! ```
//! use ember::autograd::{Pass, Value};
//! use ember::{Tape, Tensor};
//! use ember::tensor::activation::Activation;
//!
//! // One function, both modes.
//! fn layer(pass: &mut Pass, x: Value, w: &Tensor) -> ember::Result<Value<'static>> {
//!     let w = pass.weight(0, Some(w), "example")?;
//!     pass.linear(&x, &w, None, Activation::Relu)
//! }
//! let x = Tensor::new(&[1, 2], vec![1.0, -2.0]).unwrap();
//! let w = Tensor::new(&[2, 1], vec![3.0, 1.0]).unwrap();
//! let eager = layer(&mut Pass::eager(), Value::from(&x), &w).unwrap();
//! assert_eq!(eager.tensor().unwrap().data(), &[1.0]);
//!
//! let mut tape = Tape::new();
//! let wv = tape.param(w.clone());
//! let xv = tape.constant(&x);
//! let weights = [vec![wv]];
//! let mut pass = Pass::record(&mut tape, &weights, true);
//! let y = layer(&mut pass, Value::Var(xv), &w).unwrap().var().unwrap();
//! assert_eq!(tape.value(y).data(), &[1.0]);
//! ```

use std::borrow::Cow;

use super::ops::conv::Pooling;
use super::ops::normalization::NormStats;
use super::ops::warp::{Affine, FillMode};
use super::{BinaryOp, Tape, Var};
use crate::error::{Error, Result};
use crate::tensor::activation::Activation;
use crate::tensor::decoder::{LayerCache, Rope};
use crate::tensor::quant::QMatrix;
use crate::tensor::{forward, normalization, Tensor};

/// A value in a pass: a tensor (eager; borrowed while another reader still needs it, owned
/// otherwise) or a variable on the pass's tape.
#[derive(Clone, Debug)]
pub enum Value<'a> {
    Tensor(Cow<'a, Tensor>),
    Var(Var),
}

impl<'a> From<&'a Tensor> for Value<'a> {
    fn from(t: &'a Tensor) -> Self {
        Value::Tensor(Cow::Borrowed(t))
    }
}

impl From<Tensor> for Value<'static> {
    fn from(t: Tensor) -> Self {
        Value::Tensor(Cow::Owned(t))
    }
}

impl From<Var> for Value<'static> {
    fn from(v: Var) -> Self {
        Value::Var(v)
    }
}

impl<'a> Value<'a> {
    /// The same value, borrowed (no copy).
    pub fn view(&self) -> Value<'_> {
        match self {
            Value::Tensor(t) => Value::Tensor(Cow::Borrowed(t.as_ref())),
            Value::Var(v) => Value::Var(*v),
        }
    }

    /// The value, owned: a borrowed tensor is copied, an owned one moved.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Tensor(t) => Value::Tensor(Cow::Owned(t.into_owned())),
            Value::Var(v) => Value::Var(v),
        }
    }

    /// The tensor of an eager value.
    pub fn tensor(&self) -> Result<&Tensor> {
        match self {
            Value::Tensor(t) => Ok(t),
            Value::Var(_) => Err(mixed()),
        }
    }

    /// The tensor of an eager value, owned.
    pub fn into_tensor(self) -> Result<Tensor> {
        match self {
            Value::Tensor(t) => Ok(t.into_owned()),
            Value::Var(_) => Err(mixed()),
        }
    }

    /// The variable of a recorded value.
    pub fn var(&self) -> Result<Var> {
        match self {
            Value::Var(v) => Ok(*v),
            Value::Tensor(_) => Err(mixed()),
        }
    }
}

fn mixed() -> Error {
    Error::invalid("internal: a tensor and a tape variable met in one pass")
}

fn var_of(v: Option<&Value>) -> Result<Option<Var>> {
    v.map(Value::var).transpose()
}

fn tensor_of<'v>(v: Option<&'v Value>) -> Result<Option<&'v Tensor>> {
    v.map(Value::tensor).transpose()
}

/// One forward pass: eager, or recording on a tape. Layers read it for their weights
/// ([`Pass::weight`]), whether it trains ([`Pass::training`]) and whether to stop before
/// their final activation ([`Pass::activation`]), and compute through its ops.
pub struct Pass<'t> {
    tape: Option<&'t mut Tape>,
    /// Each layer's weights on the tape, in the order of its `weights()`.
    weights: &'t [Vec<Var>],
    /// The layer being called, and where its current sublayer's weights start.
    layer: usize,
    offset: usize,
    training: bool,
    logits: bool,
    /// Buffers an eager pass reuses from op to op.
    scratch: forward::Scratch,
    /// The pooling that alone reads the call at hand's output (see [`Pass::pool_next`]),
    /// and the pooled value a convolution computed with its own.
    pool_next: Option<Pooling>,
    pooled: Option<Value<'static>>,
}

impl Pass<'static> {
    /// An inference pass: ops compute their values at once, nothing is recorded.
    pub fn eager() -> Self {
        Pass {
            tape: None,
            weights: &[],
            layer: 0,
            offset: 0,
            training: false,
            logits: false,
            scratch: forward::Scratch::default(),
            pool_next: None,
            pooled: None,
        }
    }
}

impl<'t> Pass<'t> {
    /// A pass recording on `tape`, with each layer's weights already on it (`weights[l]` for
    /// layer l). `training` turns on what only training does (dropout, augmentation, batch
    /// statistics).
    pub fn record(tape: &'t mut Tape, weights: &'t [Vec<Var>], training: bool) -> Self {
        Pass {
            tape: Some(tape),
            weights,
            layer: 0,
            offset: 0,
            training,
            logits: false,
            scratch: forward::Scratch::default(),
            pool_next: None,
            pooled: None,
        }
    }

    /// In data-parallel training, where this process's `rows` samples sit in the batch
    /// shared among processes: a random layer draws for the whole batch and keeps these
    /// rows. None when the batch is not shared (or `rows` is not this process's share).
    pub fn shard(&self, rows: usize) -> Option<crate::distributed::Shard> {
        let shard = self.tape.as_ref()?.shard()?;
        (shard.rows == rows && shard.offset + rows <= shard.batch).then_some(shard)
    }

    /// Whether ops record themselves.
    pub fn is_recording(&self) -> bool {
        self.tape.is_some()
    }

    /// Whether the call at hand trains (dropout and augmentation act, batch normalization
    /// uses the batch's statistics). Never in an eager pass.
    pub fn training(&self) -> bool {
        self.training && self.tape.is_some()
    }

    /// Prepares the call of layer `layer`: whether it trains, and whether it stops before
    /// its final activation (left to a loss to fuse). Returns the previous training flag.
    pub(crate) fn enter(&mut self, layer: usize, training: bool, logits: bool) -> bool {
        self.layer = layer;
        self.offset = 0;
        self.logits = logits;
        std::mem::replace(&mut self.training, training)
    }

    /// Tells the call about to run that `pooling` alone reads its output: a convolution then
    /// pools its output as it computes it (in cache) and leaves the pooled value for
    /// [`Pass::take_pooled`]. Only the next call sees it.
    pub(crate) fn pool_next(&mut self, pooling: Option<Pooling>) {
        self.pool_next = pooling;
        self.pooled = None;
    }

    /// The pooled value the last call computed (see [`Pass::pool_next`]), if it did.
    pub(crate) fn take_pooled(&mut self) -> Option<Value<'static>> {
        self.pool_next = None;
        self.pooled.take()
    }

    /// Whether layer `layer` has weights on the tape.
    pub(crate) fn has_weights(&self, layer: usize) -> bool {
        self.weights.get(layer).is_some_and(|w| !w.is_empty())
    }

    /// Restores the training flag after a call.
    pub(crate) fn leave(&mut self, training: bool) {
        self.training = training;
        self.logits = false;
    }

    /// The activation a layer ends with: `declared`, or none when its output goes to a loss
    /// that applies it (fused softmax / sigmoid cross-entropy).
    pub fn activation(&self, declared: Activation) -> Activation {
        match self.logits {
            true => Activation::Linear,
            false => declared,
        }
    }

    /// The layer's weight `index` (in the order of its `weights()`): `own` itself in an
    /// eager pass, its variable on the tape when recording. `None` (not built) is an error
    /// naming `layer`.
    pub fn weight<'w>(
        &self,
        index: usize,
        own: Option<&'w Tensor>,
        layer: &str,
    ) -> Result<Value<'w>> {
        let own =
            own.ok_or_else(|| Error::invalid(format!("{layer} layer used before it was built")))?;
        if self.tape.is_none() {
            return Ok(Value::from(own));
        }
        let at = self.offset + index;
        self.weights
            .get(self.layer)
            .and_then(|w| w.get(at))
            .map(|&v| Value::Var(v))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{layer} needs weight {at} on the tape (was it built?)"
                ))
            })
    }

    /// Runs `f` for a sublayer whose weights start at `first` among the layer's own: a
    /// block built of layers (a transformer encoder's attention and norms) calls them
    /// through this, and a sublayer never stops before its activation.
    pub fn sublayer<R>(&mut self, first: usize, f: impl FnOnce(&mut Self) -> R) -> R {
        let (offset, logits) = (self.offset, self.logits);
        self.offset += first;
        self.logits = false;
        let out = f(self);
        self.offset = offset;
        self.logits = logits;
        out
    }

    /// The shape of a value.
    pub fn shape<'v>(&'v self, x: &'v Value) -> Result<&'v [usize]> {
        match (x, &self.tape) {
            (Value::Tensor(t), _) => Ok(t.shape()),
            (Value::Var(v), Some(tape)) => Ok(tape.value(*v).shape()),
            (Value::Var(_), None) => Err(mixed()),
        }
    }

    /// A constant (a dropout mask): no gradient flows to it.
    pub fn constant(&mut self, t: Tensor) -> Value<'static> {
        match &mut self.tape {
            None => Value::from(t),
            Some(tape) => Value::Var(tape.constant(&t)),
        }
    }

    /// `activation(x)`, in place when `x` is owned.
    pub fn activation_of(&mut self, activation: Activation, x: Value) -> Result<Value<'static>> {
        match &mut self.tape {
            None => Ok(forward::activation(activation, x.into_tensor()?).into()),
            Some(tape) => Ok(tape.activation(activation, x.var()?)?.into()),
        }
    }

    /// `x` with a new shape of the same size (the buffer reused when owned).
    pub fn reshape(&mut self, x: Value, shape: &[usize]) -> Result<Value<'static>> {
        match &mut self.tape {
            None => Ok(x.into_tensor()?.reshape(shape)?.into()),
            Some(tape) => Ok(tape.reshape(x.var()?, shape)?.into()),
        }
    }

    /// An elementwise op with broadcasting.
    pub fn binary(&mut self, op: BinaryOp, a: &Value, b: &Value) -> Result<Value<'static>> {
        match &mut self.tape {
            None => Ok(forward::binary(op, a.tensor()?, b.tensor()?)?.into()),
            Some(tape) => Ok(tape.binary(op, a.var()?, b.var()?)?.into()),
        }
    }

    /// [`Pass::binary`] taking its operands by value: an eager pass writes the result into
    /// `a`'s buffer when `a` is owned and the result has its shape (a residual added to the
    /// stream, a bias to its rows), and keeps an owned `b`'s for a later op.
    pub fn binary_owned(&mut self, op: BinaryOp, a: Value, b: Value) -> Result<Value<'static>> {
        let y = match &mut self.tape {
            None => forward::binary_owned(op, a.into_tensor()?, b.tensor()?)?.into(),
            Some(tape) => tape.binary(op, a.var()?, b.var()?)?.into(),
        };
        self.recycle(b);
        Ok(y)
    }

    /// The dense op `activation(x · w + b)` over the last axis of `x`.
    pub fn linear(
        &mut self,
        x: &Value,
        w: &Value,
        b: Option<&Value>,
        activation: Activation,
    ) -> Result<Value<'static>> {
        match &mut self.tape {
            None => {
                Ok(forward::linear(x.tensor()?, w.tensor()?, tensor_of(b)?, activation)?.into())
            }
            Some(tape) => Ok(tape
                .linear(x.var()?, w.var()?, var_of(b)?, activation)?
                .into()),
        }
    }

    /// `activation(conv(x, kernel) + bias)`, channels last. When the call was told that a
    /// pooling alone reads its output ([`Pass::pool_next`]), that pooling is computed in the
    /// same pass and kept for [`Pass::take_pooled`].
    pub fn conv2d(
        &mut self,
        x: &Value,
        kernel: &Value,
        bias: Option<&Value>,
        window: ((usize, usize), bool),
        activation: Activation,
    ) -> Result<Value<'static>> {
        let pooling = self.pool_next.take();
        let (out, pooled): (Value, Option<Value>) = match &mut self.tape {
            None => {
                let (x, kernel, bias) = (x.tensor()?, kernel.tensor()?, tensor_of(bias)?);
                let (out, pooled) =
                    forward::conv2d_pooled(x, kernel, bias, window, activation, pooling)?;
                (out.into(), pooled.map(Value::from))
            }
            Some(tape) => {
                let (x, kernel, bias) = (x.var()?, kernel.var()?, var_of(bias)?);
                let (out, pooled) =
                    tape.conv2d_pooled(x, kernel, bias, window, activation, pooling)?;
                (out.into(), pooled.map(Value::from))
            }
        };
        self.pooled = pooled;
        Ok(out)
    }

    /// Max pooling (or, with `average`, average pooling), channels last.
    pub fn pool2d(
        &mut self,
        x: &Value,
        pool: (usize, usize),
        strides: (usize, usize),
        same: bool,
        average: bool,
    ) -> Result<Value<'static>> {
        match (&mut self.tape, average) {
            (None, false) => Ok(forward::max_pool2d(x.tensor()?, pool, strides, same)?.into()),
            (None, true) => Ok(forward::avg_pool2d(x.tensor()?, pool, strides, same)?.into()),
            (Some(tape), false) => Ok(tape.max_pool2d(x.var()?, pool, strides, same)?.into()),
            (Some(tape), true) => Ok(tape.avg_pool2d(x.var()?, pool, strides, same)?.into()),
        }
    }

    /// Batch normalization over every axis but the last, as Keras's layer runs it: at
    /// inference (and in a frozen layer) with the moving averages; in training with the
    /// batch's statistics, then moving the averages toward them by `1 − momentum`.
    #[allow(clippy::too_many_arguments)]
    pub fn batch_norm(
        &mut self,
        x: &Value,
        (gamma, beta): (Option<&Value>, Option<&Value>),
        (moving_mean, moving_variance): (&Value, &Value),
        epsilon: f32,
        momentum: f32,
    ) -> Result<Value<'static>> {
        let training = self.training();
        let Some(tape) = &mut self.tape else {
            return Ok(forward::batch_norm(
                x.tensor()?,
                tensor_of(gamma)?,
                tensor_of(beta)?,
                moving_mean.tensor()?,
                moving_variance.tensor()?,
                epsilon,
            )?
            .into());
        };
        let (x, gamma, beta) = (x.var()?, var_of(gamma)?, var_of(beta)?);
        let (mean, variance) = (moving_mean.var()?, moving_variance.var()?);
        if !training {
            let stats = NormStats::Given { mean, variance };
            return Ok(tape.batch_norm(x, gamma, beta, stats, epsilon)?.into());
        }
        let y = tape.batch_norm(x, gamma, beta, NormStats::Batch, epsilon)?;
        let (batch_mean, batch_variance) = tape.batch_moments(y);
        let (batch_mean, batch_variance) = (batch_mean.to_vec(), batch_variance.to_vec());
        normalization::update_moving_average(tape.param_mut(mean), &batch_mean, momentum);
        normalization::update_moving_average(tape.param_mut(variance), &batch_variance, momentum);
        Ok(y.into())
    }

    /// Layer normalization over the last axis.
    pub fn layer_norm(
        &mut self,
        x: &Value,
        gamma: Option<&Value>,
        beta: Option<&Value>,
        epsilon: f32,
    ) -> Result<Value<'static>> {
        match &mut self.tape {
            None => {
                Ok(
                    forward::layer_norm(x.tensor()?, tensor_of(gamma)?, tensor_of(beta)?, epsilon)?
                        .into(),
                )
            }
            Some(tape) => Ok(tape
                .layer_norm(x.var()?, var_of(gamma)?, var_of(beta)?, epsilon)?
                .into()),
        }
    }

    /// RMS normalisation over the last axis, scaled by `weight` (features).
    pub fn rms_norm(&mut self, x: &Value, weight: &Value, eps: f32) -> Result<Value<'static>> {
        match &mut self.tape {
            None => {
                let y = forward::rms_norm(x.tensor()?, weight.tensor()?, eps, &mut self.scratch)?;
                Ok(y.into())
            }
            Some(tape) => Ok(tape.rms_norm(x.var()?, weight.var()?, eps)?.into()),
        }
    }

    /// Rotary position embeddings of `x` (tokens, heads · head_dim), its rows at positions
    /// `first..`, in place when `x` is owned; the frequency `factors` are constants.
    pub fn rope(
        &mut self,
        x: Value,
        spec: &Rope,
        first: usize,
        factors: Option<&[f32]>,
    ) -> Result<Value<'static>> {
        match &mut self.tape {
            None => Ok(forward::rope(x.into_tensor()?, spec, first, factors)?.into()),
            Some(tape) => Ok(tape.rope(x.var()?, spec, first, factors)?.into()),
        }
    }

    /// `silu(gate) · up`, in `gate`'s buffer when it is owned.
    pub fn swiglu(&mut self, gate: Value, up: Value) -> Result<Value<'static>> {
        let y = match &mut self.tape {
            None => forward::swiglu(gate.into_tensor()?, up.tensor()?)?.into(),
            Some(tape) => tape.swiglu(gate.var()?, up.var()?)?.into(),
        };
        self.recycle(up);
        Ok(y)
    }

    /// `x · wᵀ` for a quantised matrix `w` (outputs × inputs): a frozen constant, so the
    /// gradient flows to `x` alone.
    pub fn qlinear(&mut self, x: Value, w: &QMatrix) -> Result<Value<'static>> {
        let [y] = self.qlinear_many(x, [w])?;
        Ok(y)
    }

    /// [`Pass::qlinear`] of several matrices reading the same `x`; an eager pass quantises
    /// `x` once for all of them (a block's Q, K and V share it, as do its gate and up).
    pub fn qlinear_many<const N: usize>(
        &mut self,
        x: Value,
        ws: [&QMatrix; N],
    ) -> Result<[Value<'static>; N]> {
        let outs: Vec<Value<'static>> = match &mut self.tape {
            None => forward::qlinear(x.tensor()?, &ws, &mut self.scratch)?
                .into_iter()
                .map(Value::from)
                .collect(),
            Some(tape) => {
                let x = x.var()?;
                ws.iter()
                    .map(|w| Ok(Value::from(tape.qlinear(x, w)?)))
                    .collect::<Result<_>>()?
            }
        };
        self.recycle(x);
        outs.try_into()
            .map_err(|_| Error::invalid("internal: a product per matrix"))
    }

    /// Causal attention of the queries `q` (tokens, heads · head_dim) over a layer's
    /// key–value cache, once the new keys `k` and values `v` (tokens, kv_heads · head_dim)
    /// are appended to it: the llama decoder's grouped-query attention. Eager only for now:
    /// recording it is an error, so a decoder cannot yet be trained through its cache.
    pub fn cached_attention(
        &mut self,
        (q, k, v): (Value, Value, Value),
        cache: &mut LayerCache,
        heads: usize,
    ) -> Result<Value<'static>> {
        if self.tape.is_some() {
            return Err(Error::invalid(
                "attention over a key-value cache runs only in inference (eager) passes; \
                 it has no gradient yet",
            ));
        }
        let (qt, kt, vt) = (q.tensor()?, k.tensor()?, v.tensor()?);
        let y = forward::cached_attention(qt, kt, vt, cache, heads, &mut self.scratch)?;
        for spent in [q, k, v] {
            self.recycle(spent);
        }
        Ok(y.into())
    }

    /// Keeps the buffer of an owned eager value that an op has used up, for a later op's
    /// output.
    fn recycle(&mut self, spent: Value) {
        if let Value::Tensor(Cow::Owned(t)) = spent {
            self.scratch.recycle(t);
        }
    }

    /// Rows of `table` at the ids in `ids`.
    pub fn embedding(&mut self, table: &Value, ids: &Value) -> Result<Value<'static>> {
        match &mut self.tape {
            None => Ok(forward::embedding(table.tensor()?, ids.tensor()?)?.into()),
            Some(tape) => Ok(tape.embedding(table.var()?, ids.var()?)?.into()),
        }
    }

    /// Multi-head scaled dot-product attention, with an optional padding mask (batch,
    /// sequence) of 1 for tokens and 0 for padding.
    pub fn attention(
        &mut self,
        (q, k, v): (&Value, &Value, &Value),
        mask: Option<&Value>,
        heads: usize,
    ) -> Result<Value<'static>> {
        match &mut self.tape {
            None => Ok(forward::attention(
                q.tensor()?,
                k.tensor()?,
                v.tensor()?,
                tensor_of(mask)?,
                heads,
            )?
            .into()),
            Some(tape) => Ok(tape
                .attention(q.var()?, k.var()?, v.var()?, var_of(mask)?, heads)?
                .into()),
        }
    }

    /// A matrix product per matrix of a batch.
    pub fn batch_matmul(&mut self, a: &Value, b: &Value) -> Result<Value<'static>> {
        match &mut self.tape {
            None => Ok(forward::batch_matmul(a.tensor()?, b.tensor()?)?.into()),
            Some(tape) => Ok(tape.batch_matmul(a.var()?, b.var()?)?.into()),
        }
    }

    /// Two values joined along their last axis.
    pub fn concat(&mut self, a: &Value, b: &Value) -> Result<Value<'static>> {
        match &mut self.tape {
            None => Ok(forward::concat(a.tensor()?, b.tensor()?)?.into()),
            Some(tape) => Ok(tape.concat(a.var()?, b.var()?)?.into()),
        }
    }

    /// Per-sample affine warps of images: a training-time augmentation.
    pub fn warp(
        &mut self,
        x: &Value,
        transforms: &[Affine],
        fill: FillMode,
    ) -> Result<Value<'static>> {
        match &mut self.tape {
            None => Err(Error::invalid(
                "internal: random augmentation runs only while training",
            )),
            Some(tape) => Ok(tape.warp(x.var()?, transforms, fill)?.into()),
        }
    }
}
