//! Attention layers: `MultiHeadAttention` (self-attention, Keras's layer with query = key =
//! value) and `TransformerEncoder`, the BERT block: attention, add and normalize, a GELU
//! feed-forward network, add and normalize ("post-LN").

use super::{init, Layer, LayerConfig};
use crate::autograd::{Tape, Var};
use crate::error::{Error, Result};
use crate::tensor::activation::Activation;
use crate::tensor::random::Rng;
use crate::tensor::Tensor;

/// A dense projection's kernel (inputs, outputs) and bias.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Projection {
    pub kernel: Var,
    pub bias: Var,
}

impl Projection {
    fn build(tape: &mut Tape, inputs: usize, outputs: usize, rng: &mut Rng) -> Self {
        Projection {
            kernel: tape.param(init::glorot_uniform(
                &[inputs, outputs],
                inputs,
                outputs,
                rng,
            )),
            bias: tape.param(Tensor::zeros(&[outputs])),
        }
    }

    fn apply(&self, tape: &mut Tape, x: Var, activation: Activation) -> Result<Var> {
        tape.linear(x, self.kernel, Some(self.bias), activation)
    }
}

/// The variables of a [`TransformerEncoder`], by piece.
pub(crate) struct EncoderParts {
    /// Query, key, value and output projections.
    pub attention: [Projection; 4],
    /// Gamma and beta of the attention's layer norm, then of the output's.
    pub norms: [Option<Var>; 4],
    pub intermediate: Projection,
    pub output: Projection,
}

/// Keras `MultiHeadAttention(num_heads, key_dim)` used as self-attention on (sequence,
/// features) samples: query, key and value projections to `num_heads · key_dim`, scaled
/// dot-product attention per head, and an output projection back to the features.
#[derive(Clone, Debug)]
pub struct MultiHeadAttention {
    num_heads: usize,
    key_dim: usize,
    /// query, key, value, output
    projections: Option<[Projection; 4]>,
}

impl MultiHeadAttention {
    pub fn new(num_heads: usize, key_dim: usize) -> Self {
        MultiHeadAttention {
            num_heads,
            key_dim,
            projections: None,
        }
    }

    pub(crate) fn projections(&self) -> Option<[Projection; 4]> {
        self.projections
    }

    /// Self-attention of `x` (batch, sequence, features); `mask` (batch, sequence) marks
    /// real positions with 1 and padding with 0.
    pub fn attend(&self, tape: &mut Tape, x: Var, mask: Option<Var>) -> Result<Var> {
        let [q, k, v, o] = self
            .projections
            .ok_or_else(|| Error::invalid("MultiHeadAttention layer used before it was built"))?;
        let queries = q.apply(tape, x, Activation::Linear)?;
        let keys = k.apply(tape, x, Activation::Linear)?;
        let values = v.apply(tape, x, Activation::Linear)?;
        let attended = tape.attention(queries, keys, values, mask, self.num_heads)?;
        o.apply(tape, attended, Activation::Linear)
    }
}

impl Layer for MultiHeadAttention {
    fn kind(&self) -> &'static str {
        "MultiHeadAttention"
    }

    fn build(
        &mut self,
        tape: &mut Tape,
        input_shape: &[usize],
        rng: &mut Rng,
    ) -> Result<Vec<usize>> {
        let (output, _) = self.config().shape_and_params(input_shape)?;
        let features = input_shape[1];
        let inner = self.num_heads * self.key_dim;
        self.projections = Some([
            Projection::build(tape, features, inner, rng),
            Projection::build(tape, features, inner, rng),
            Projection::build(tape, features, inner, rng),
            Projection::build(tape, inner, features, rng),
        ]);
        Ok(output)
    }

    fn forward(&self, tape: &mut Tape, x: Var, _training: bool) -> Result<Var> {
        self.attend(tape, x, None)
    }

    fn params(&self) -> Vec<(&'static str, Var)> {
        let Some([q, k, v, o]) = self.projections else {
            return Vec::new();
        };
        vec![
            ("query_kernel", q.kernel),
            ("query_bias", q.bias),
            ("key_kernel", k.kernel),
            ("key_bias", k.bias),
            ("value_kernel", v.kernel),
            ("value_bias", v.bias),
            ("output_kernel", o.kernel),
            ("output_bias", o.bias),
        ]
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::MultiHeadAttention {
            num_heads: self.num_heads,
            key_dim: self.key_dim,
        }
    }
}

/// The BERT encoder block on (sequence, features) samples:
/// `h = LayerNorm(x + Attention(x))`, `out = LayerNorm(h + Dense(GELU(Dense(h))))`, with
/// dropout on both residual branches in training.
#[derive(Clone, Debug)]
pub struct TransformerEncoder {
    num_heads: usize,
    intermediate_dim: usize,
    epsilon: f32,
    dropout: f32,
    attention: MultiHeadAttention,
    attention_norm: super::LayerNormalization,
    intermediate: Option<Projection>,
    output: Option<Projection>,
    output_norm: super::LayerNormalization,
    drop: super::Dropout,
}

impl TransformerEncoder {
    /// `num_heads` heads (they split the features), a feed-forward layer of
    /// `intermediate_dim`; layer-norm epsilon 1e-12 and dropout 0.1 as BERT.
    pub fn new(num_heads: usize, intermediate_dim: usize) -> Self {
        TransformerEncoder {
            num_heads,
            intermediate_dim,
            epsilon: 1e-12,
            dropout: 0.1,
            attention: MultiHeadAttention::new(num_heads, 1),
            attention_norm: super::LayerNormalization::new(),
            intermediate: None,
            output: None,
            output_norm: super::LayerNormalization::new(),
            drop: super::Dropout::new(0.1),
        }
    }

    pub fn epsilon(mut self, epsilon: f32) -> Self {
        self.epsilon = epsilon;
        self
    }

    pub fn dropout(mut self, rate: f32) -> Self {
        self.dropout = rate;
        self
    }

    /// The block on `x` (batch, sequence, features) with an optional padding mask.
    pub fn forward_masked(
        &self,
        tape: &mut Tape,
        x: Var,
        mask: Option<Var>,
        training: bool,
    ) -> Result<Var> {
        let (Some(intermediate), Some(output)) = (self.intermediate, self.output) else {
            return Err(Error::invalid(
                "TransformerEncoder layer used before it was built",
            ));
        };
        let attended = self.attention.attend(tape, x, mask)?;
        let attended = self.drop.forward(tape, attended, training)?;
        let h = tape.add(x, attended)?;
        let h = self.attention_norm.forward(tape, h, training)?;
        let inner = intermediate.apply(tape, h, Activation::Gelu)?;
        let out = output.apply(tape, inner, Activation::Linear)?;
        let out = self.drop.forward(tape, out, training)?;
        let out = tape.add(h, out)?;
        self.output_norm.forward(tape, out, training)
    }

    /// Every variable, by piece (for loading pretrained weights); None before `build`.
    pub(crate) fn parts(&self) -> Option<EncoderParts> {
        let (ag, ab) = self.attention_norm.vars();
        let (og, ob) = self.output_norm.vars();
        Some(EncoderParts {
            attention: self.attention.projections()?,
            norms: [ag, ab, og, ob],
            intermediate: self.intermediate?,
            output: self.output?,
        })
    }
}

impl Layer for TransformerEncoder {
    fn kind(&self) -> &'static str {
        "TransformerEncoder"
    }

    fn build(
        &mut self,
        tape: &mut Tape,
        input_shape: &[usize],
        rng: &mut Rng,
    ) -> Result<Vec<usize>> {
        let (output, _) = self.config().shape_and_params(input_shape)?;
        let features = input_shape[1];
        self.attention = MultiHeadAttention::new(self.num_heads, features / self.num_heads);
        self.attention.build(tape, input_shape, rng)?;
        self.attention_norm = super::LayerNormalization::new().epsilon(self.epsilon);
        self.attention_norm.build(tape, input_shape, rng)?;
        self.intermediate = Some(Projection::build(
            tape,
            features,
            self.intermediate_dim,
            rng,
        ));
        self.output = Some(Projection::build(
            tape,
            self.intermediate_dim,
            features,
            rng,
        ));
        self.output_norm = super::LayerNormalization::new().epsilon(self.epsilon);
        self.output_norm.build(tape, input_shape, rng)?;
        self.drop = super::Dropout::new(self.dropout);
        self.drop.build(tape, input_shape, rng)?;
        Ok(output)
    }

    fn forward(&self, tape: &mut Tape, x: Var, training: bool) -> Result<Var> {
        self.forward_masked(tape, x, None, training)
    }

    fn params(&self) -> Vec<(&'static str, Var)> {
        let mut params = self.attention.params();
        let names = ["attention_norm_gamma", "attention_norm_beta"];
        params.extend(
            names
                .into_iter()
                .zip(self.attention_norm.params().into_iter().map(|p| p.1)),
        );
        if let (Some(i), Some(o)) = (self.intermediate, self.output) {
            params.extend([
                ("intermediate_kernel", i.kernel),
                ("intermediate_bias", i.bias),
                ("output_dense_kernel", o.kernel),
                ("output_dense_bias", o.bias),
            ]);
        }
        let names = ["output_norm_gamma", "output_norm_beta"];
        params.extend(
            names
                .into_iter()
                .zip(self.output_norm.params().into_iter().map(|p| p.1)),
        );
        params
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::TransformerEncoder {
            num_heads: self.num_heads,
            intermediate_dim: self.intermediate_dim,
            epsilon: self.epsilon,
            dropout: self.dropout,
        }
    }
}
