//! One block of the llama decoder, written once over the op API: RMSNorm → grouped-query
//! attention with RoPE over the key–value cache → RMSNorm → SwiGLU feed-forward, each added
//! back to the residual stream.

use crate::autograd::{BinaryOp, Pass, Value};
use crate::error::Result;
use crate::tensor::decoder::{LayerCache, Rope};
use crate::tensor::quant::QMatrix;
use crate::tensor::Tensor;

const NAME: &str = "llama block";

/// A decoder block's weights, quantised as the file stores them, and the constants it runs
/// with. Its own weights, in the order [`Pass::weight`] numbers them: the attention norm,
/// the feed-forward norm, then the Q, K and V biases a model has; the quantised matrices are
/// frozen constants.
pub(super) struct Block {
    pub attn_norm: Tensor,
    pub q: QMatrix,
    pub k: QMatrix,
    pub v: QMatrix,
    pub q_bias: Option<Tensor>,
    pub k_bias: Option<Tensor>,
    pub v_bias: Option<Tensor>,
    pub output: QMatrix,
    pub ffn_norm: Tensor,
    pub gate: QMatrix,
    pub up: QMatrix,
    pub down: QMatrix,
    pub rms_eps: f32,
    /// The rotations of the queries' heads and of the keys' (fewer when grouped).
    pub query_rope: Rope,
    pub key_rope: Rope,
    /// The model's RoPE frequency factors, when it has them (a few dozen numbers).
    pub rope_factors: Option<Vec<f32>>,
}

impl Block {
    /// Runs `x` (tokens, hidden), the tokens at positions `first..`, through the block,
    /// appending their keys and values to `cache`.
    pub fn call(
        &self,
        pass: &mut Pass,
        x: Value,
        cache: &mut LayerCache,
        first: usize,
    ) -> Result<Value<'static>> {
        // x = x + attention(rms_norm(x))
        let norm = pass.weight(0, Some(&self.attn_norm), NAME)?;
        let normed = pass.rms_norm(&x, &norm, self.rms_eps)?;
        let [q, k, v] = pass.qlinear_many(normed, [&self.q, &self.k, &self.v])?;
        let mut bias_index = 2;
        let q = add_bias(pass, q, self.q_bias.as_ref(), &mut bias_index)?;
        let k = add_bias(pass, k, self.k_bias.as_ref(), &mut bias_index)?;
        let v = add_bias(pass, v, self.v_bias.as_ref(), &mut bias_index)?;
        let factors = self.rope_factors.as_deref();
        let q = pass.rope(q, &self.query_rope, first, factors)?;
        let k = pass.rope(k, &self.key_rope, first, factors)?;
        let attended = pass.cached_attention((q, k, v), cache, self.query_rope.heads)?;
        let projected = pass.qlinear(attended, &self.output)?;
        let x = pass.binary_owned(BinaryOp::Add, x, projected)?;

        // x = x + feed_forward(rms_norm(x))
        let norm = pass.weight(1, Some(&self.ffn_norm), NAME)?;
        let normed = pass.rms_norm(&x, &norm, self.rms_eps)?;
        let [gate, up] = pass.qlinear_many(normed, [&self.gate, &self.up])?;
        let hidden = pass.swiglu(gate, up)?;
        let projected = pass.qlinear(hidden, &self.down)?;
        pass.binary_owned(BinaryOp::Add, x, projected)
    }
}

/// `y + bias` when the block has the bias (its weight `index`, which then moves on).
fn add_bias(
    pass: &mut Pass,
    y: Value<'static>,
    bias: Option<&Tensor>,
    index: &mut usize,
) -> Result<Value<'static>> {
    let Some(bias) = bias else {
        return Ok(y);
    };
    let bias = pass.weight(*index, Some(bias), NAME)?;
    *index += 1;
    pass.binary_owned(BinaryOp::Add, y, bias)
}
