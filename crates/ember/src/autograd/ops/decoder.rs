//! The ops of a decoder-only transformer (llama): RMS normalisation, rotary position
//! embeddings, SwiGLU and the product with a quantised matrix, a frozen constant whose
//! gradient goes to the input only.

use crate::autograd::tape::{GradOut, Node, Tape, Var};
use crate::error::Result;
use crate::tensor::decoder::{
    rms_norm_backward, rms_norm_features, rms_norm_into, rope_backward_into, rope_check, rope_into,
    swiglu_backward, swiglu_check, swiglu_into, Rope,
};
use crate::tensor::quant::{self, QMatrix};

use super::{grad_buf, Op};

impl Tape {
    /// RMS normalisation of `x` over its last axis, scaled by `weight` (features).
    pub fn rms_norm(&mut self, x: Var, weight: Var, eps: f32) -> Result<Var> {
        let shape = self.value(x).shape().to_vec();
        rms_norm_features(&shape, self.value(weight).shape(), eps)?;
        let requires_grad = self.requires_grad(x) || self.requires_grad(weight);
        let i = self.push(Op::RmsNorm { x, weight, eps }, &shape, requires_grad);
        let (before, out) = self.split(i);
        rms_norm_into(
            &mut out.value,
            &before[x.0].value,
            &before[weight.0].value,
            eps,
        );
        Ok(Var(i))
    }

    /// Rotary position embeddings of `x` (tokens, heads · head_dim), its rows at positions
    /// `first..`; the frequency `factors` are constants.
    pub fn rope(
        &mut self,
        x: Var,
        spec: &Rope,
        first: usize,
        factors: Option<&[f32]>,
    ) -> Result<Var> {
        let shape = self.value(x).shape().to_vec();
        rope_check(&shape, spec, factors)?;
        let op = Op::Rope {
            x,
            spec: *spec,
            first,
        };
        let i = self.push(op, &shape, self.requires_grad(x));
        let (before, out) = self.split(i);
        // aux = the factors, empty when there are none.
        out.aux.clear();
        out.aux.extend_from_slice(factors.unwrap_or_default());
        rope_into(&mut out.value, &before[x.0].value, spec, first, factors);
        Ok(Var(i))
    }

    /// `silu(gate) · up`.
    pub fn swiglu(&mut self, gate: Var, up: Var) -> Result<Var> {
        let shape = self.value(gate).shape().to_vec();
        swiglu_check(&shape, self.value(up).shape())?;
        let requires_grad = self.requires_grad(gate) || self.requires_grad(up);
        let i = self.push(Op::Swiglu { gate, up }, &shape, requires_grad);
        let (before, out) = self.split(i);
        swiglu_into(&mut out.value, &before[gate.0].value, &before[up.0].value);
        Ok(Var(i))
    }

    /// `x · wᵀ` for a quantised matrix `w` (outputs × inputs), computed as inference computes
    /// it; `w` is a constant, and the gradient flows to `x` through its `f32` expansion.
    pub fn qlinear(&mut self, x: Var, w: &QMatrix) -> Result<Var> {
        let shape = quant::matmul_shape(self.value(x).shape(), w)?;
        let i = self.push(Op::QLinear { x }, &shape, self.requires_grad(x));
        let (before, out) = self.split(i);
        quant::matmul_into(w, &before[x.0].value, &mut out.value);
        // aux = the matrix in f32 (rows × cols), for the backward pass.
        w.dequantize(&mut out.aux);
        Ok(Var(i))
    }
}

pub(crate) fn backward_rms_norm(x: Var, weight: Var, eps: f32, out: &Node, nodes: &mut [Node]) {
    let mut dx = GradOut::take(nodes, x);
    let mut dweight = GradOut::take(nodes, weight);
    rms_norm_backward(
        out.grad.data(),
        nodes[x.0].value.data(),
        nodes[weight.0].value.data(),
        eps,
        dx.as_mut().map(grad_buf),
        dweight.as_mut().map(grad_buf),
    );
    for g in [dx, dweight].into_iter().flatten() {
        g.put(nodes);
    }
}

pub(crate) fn backward_rope(x: Var, spec: &Rope, first: usize, out: &Node, nodes: &mut [Node]) {
    let Some(mut grad) = GradOut::take(nodes, x) else {
        return;
    };
    let factors = (!out.aux.is_empty()).then_some(&out.aux[..]);
    rope_backward_into(out.grad.data(), spec, first, factors, grad_buf(&mut grad));
    grad.put(nodes);
}

pub(crate) fn backward_swiglu(gate: Var, up: Var, out: &Node, nodes: &mut [Node]) {
    let mut dgate = GradOut::take(nodes, gate);
    let mut dup = GradOut::take(nodes, up);
    swiglu_backward(
        out.grad.data(),
        nodes[gate.0].value.data(),
        nodes[up.0].value.data(),
        dgate.as_mut().map(grad_buf),
        dup.as_mut().map(grad_buf),
    );
    for g in [dgate, dup].into_iter().flatten() {
        g.put(nodes);
    }
}

pub(crate) fn backward_qlinear(x: Var, out: &Node, nodes: &mut [Node]) {
    let Some(mut grad) = GradOut::take(nodes, x) else {
        return;
    };
    let rows = *out.value.shape().last().expect("checked when recorded");
    let cols = out.aux.len() / rows.max(1);
    quant::matmul_input_grad(out.grad.data(), &out.aux, rows, cols, grad_buf(&mut grad));
    grad.put(nodes);
}

#[cfg(test)]
mod tests {
    use crate::autograd::gradcheck::check_gradients;
    use crate::tensor::decoder::{Rope, RopeLayout};
    use crate::tensor::quant::{QMatrix, QuantType};
    use crate::tensor::random::Rng;
    use crate::{Tape, Tensor};

    #[test]
    fn rms_norm_gradients_match_finite_differences() {
        check_gradients(&[&[3, 5], &[5]], 31, |tape, v| {
            tape.rms_norm(v[0], v[1], 1e-5)
        })
        .unwrap();
    }

    #[test]
    fn rope_gradients_match_finite_differences() {
        for (layout, factors) in [
            (RopeLayout::Adjacent, None),
            (RopeLayout::Halves, Some(&[1.0, 4.0][..])),
        ] {
            let spec = Rope {
                heads: 2,
                head_dim: 4,
                base: 100.0,
                layout,
            };
            check_gradients(&[&[3, 8]], 32, |tape, v| tape.rope(v[0], &spec, 5, factors))
                .unwrap_or_else(|e| panic!("{layout:?}: {e}"));
        }
    }

    #[test]
    fn swiglu_gradients_match_finite_differences() {
        check_gradients(&[&[2, 6], &[2, 6]], 33, |tape, v| tape.swiglu(v[0], v[1])).unwrap();
    }

    fn matrix(kind: QuantType, rows: usize, cols: usize, seed: u64) -> QMatrix {
        let mut rng = Rng::seed(seed);
        let bytes = match kind {
            QuantType::F32 => (0..rows * cols)
                .flat_map(|_| rng.normal(1.0).to_le_bytes())
                .collect(),
            // Q8_0 blocks: an f16 scale of 1/64, then 32 signed bytes.
            _ => (0..rows * cols / 32)
                .flat_map(|_| {
                    let mut block = half::f16::from_f32(1.0 / 64.0).to_le_bytes().to_vec();
                    block.extend((0..32).map(|_| (rng.below(255) as i16 - 127) as i8 as u8));
                    block
                })
                .collect(),
        };
        QMatrix::new(kind, rows, cols, bytes).unwrap()
    }

    #[test]
    fn qlinear_input_gradient_matches_finite_differences() {
        // An f32 matrix: a Q8 one quantises the input, which finite differences cannot see
        // through.
        let w = matrix(QuantType::F32, 3, 4, 34);
        check_gradients(&[&[2, 4]], 35, |tape, v| tape.qlinear(v[0], &w)).unwrap();
    }

    #[test]
    fn qlinear_input_gradient_is_dy_times_the_expanded_matrix() {
        // A Q8_0 matrix: dx = dy · w with w expanded to f32.
        let w = matrix(QuantType::Q8_0, 3, 64, 36);
        let mut expanded = Vec::new();
        w.dequantize(&mut expanded);
        let mut tape = Tape::new();
        let x = tape.param(Tensor::full(&[2, 64], 0.5));
        let y = tape.qlinear(x, &w).unwrap();
        let dy = Tensor::new(&[2, 3], vec![1.0, -2.0, 0.5, 0.0, 3.0, 1.0]).unwrap();
        tape.backward_from(y, &dy).unwrap();
        let dx = tape.grad(x).unwrap().data();
        for t in 0..2 {
            for c in 0..64 {
                let want: f32 = (0..3)
                    .map(|r| dy.data()[t * 3 + r] * expanded[r * 64 + c])
                    .sum();
                assert!((dx[t * 64 + c] - want).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn attention_over_a_cache_is_eager_only() {
        use crate::autograd::{Pass, Value};
        use crate::tensor::decoder::LayerCache;
        let (q, kv) = (Tensor::full(&[1, 8], 0.5), Tensor::full(&[1, 4], 0.25));
        let mut cache = LayerCache::new(1);
        let eager = Pass::eager().cached_attention(
            (Value::from(&q), Value::from(&kv), Value::from(&kv)),
            &mut cache,
            2,
        );
        // One position: each head's output is that position's value.
        assert_eq!(eager.unwrap().tensor().unwrap().data(), &[0.25; 8]);
        let mut tape = Tape::new();
        let (qv, kvv) = (tape.param(q), tape.param(kv));
        let mut pass = Pass::record(&mut tape, &[], false);
        let (qv, kvv) = (Value::Var(qv), Value::Var(kvv));
        let recorded = pass.cached_attention((qv, kvv.clone(), kvv), &mut cache, 2);
        assert!(recorded.unwrap_err().to_string().contains("inference"));
    }
}
