//! Attention layers: `MultiHeadAttention` (self-attention, Keras's layer with query = key =
//! value) and `TransformerEncoder`, the BERT block: attention, add and normalize, a GELU
//! feed-forward network, add and normalize ("post-LN").

use serde::{Deserialize, Serialize};

use super::{init, Dropout, Layer, LayerConfig, LayerNormalization, WeightRef};
use crate::autograd::{BinaryOp, Pass, Value};
use crate::error::{Error, Result};
use crate::tensor::activation::Activation;
use crate::tensor::random::Rng;
use crate::tensor::Tensor;

/// A dense projection's kernel (inputs, outputs) and bias.
#[derive(Clone, Debug)]
pub(crate) struct Projection {
    pub kernel: Tensor,
    pub bias: Tensor,
}

impl Projection {
    fn build(inputs: usize, outputs: usize, rng: &mut Rng) -> Self {
        Projection {
            kernel: init::glorot_uniform(&[inputs, outputs], inputs, outputs, rng),
            bias: Tensor::zeros(&[outputs]),
        }
    }

    /// `activation(x · kernel + bias)`, the kernel and bias being the layer's weights `first`
    /// and `first + 1`.
    fn call(
        &self,
        pass: &mut Pass,
        first: usize,
        x: &Value,
        activation: Activation,
    ) -> Result<Value<'static>> {
        let kernel = pass.weight(first, Some(&self.kernel), "a projection")?;
        let bias = pass.weight(first + 1, Some(&self.bias), "a projection")?;
        pass.linear(x, &kernel, Some(&bias), activation)
    }

    fn weights(&self, kernel: &'static str, bias: &'static str) -> [WeightRef<'_>; 2] {
        [
            WeightRef {
                name: kernel,
                value: &self.kernel,
                trainable: true,
            },
            WeightRef {
                name: bias,
                value: &self.bias,
                trainable: true,
            },
        ]
    }

    fn weights_mut(&mut self) -> [&mut Tensor; 2] {
        [&mut self.kernel, &mut self.bias]
    }
}

/// Checks a layer on (sequence, features) samples and returns the features.
fn sequence_features(kind: &str, input: &[usize]) -> Result<usize> {
    match input {
        // A sequence of any length (ANY, Keras's None) or of a fixed one.
        [_, f] if *f > 0 => Ok(*f),
        _ => Err(Error::shape(
            "layer",
            format!("{kind} needs (sequence, features) samples, got {input:?}"),
        )),
    }
}

/// `type = "multi_head_attention"` in a model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiHeadAttentionConfig {
    pub num_heads: usize,
    /// The size of each head's queries and keys (and values).
    pub key_dim: usize,
}

impl MultiHeadAttentionConfig {
    /// The input shape, and the four projections' kernels and biases.
    pub fn shape_and_params(&self, input: &[usize]) -> Result<(Vec<usize>, usize)> {
        let features = sequence_features("MultiHeadAttention", input)?;
        let MultiHeadAttentionConfig { num_heads, key_dim } = *self;
        if num_heads == 0 || key_dim == 0 {
            return Err(Error::invalid(
                "MultiHeadAttention needs positive num_heads and key_dim",
            ));
        }
        let inner = num_heads
            .checked_mul(key_dim)
            .ok_or_else(|| Error::invalid("MultiHeadAttention is too large"))?;
        // Three projections in (kernel + bias), one out.
        let params = (|| {
            let inward = features.checked_mul(inner)?.checked_add(inner)?;
            let outward = inner.checked_mul(features)?.checked_add(features)?;
            inward.checked_mul(3)?.checked_add(outward)
        })()
        .ok_or_else(|| Error::invalid("MultiHeadAttention is too large"))?;
        Ok((input.to_vec(), params))
    }
}

/// Keras `MultiHeadAttention(num_heads, key_dim)` used as self-attention on (sequence,
/// features) samples: query, key and value projections to `num_heads · key_dim`, scaled
/// dot-product attention per head, and an output projection back to the features.
#[derive(Clone, Debug)]
pub struct MultiHeadAttention {
    config: MultiHeadAttentionConfig,
    /// query, key, value, output
    projections: Option<[Projection; 4]>,
}

impl From<MultiHeadAttentionConfig> for MultiHeadAttention {
    fn from(config: MultiHeadAttentionConfig) -> Self {
        MultiHeadAttention {
            config,
            projections: None,
        }
    }
}

/// The names of a [`MultiHeadAttention`]'s weights, in order.
const ATTENTION_WEIGHTS: [(&str, &str); 4] = [
    ("query_kernel", "query_bias"),
    ("key_kernel", "key_bias"),
    ("value_kernel", "value_bias"),
    ("output_kernel", "output_bias"),
];

impl MultiHeadAttention {
    pub fn new(num_heads: usize, key_dim: usize) -> Self {
        MultiHeadAttention::from(MultiHeadAttentionConfig { num_heads, key_dim })
    }

    fn built(&self) -> Result<&[Projection; 4]> {
        self.projections
            .as_ref()
            .ok_or_else(|| Error::invalid("MultiHeadAttention layer used before it was built"))
    }

    /// Self-attention of `x` (batch, sequence, features); `mask` (batch, sequence) marks
    /// real positions with 1 and padding with 0.
    pub fn attend(
        &self,
        pass: &mut Pass,
        x: &Value,
        mask: Option<&Value>,
    ) -> Result<Value<'static>> {
        let [q, k, v, o] = self.built()?;
        let queries = q.call(pass, 0, x, Activation::Linear)?;
        let keys = k.call(pass, 2, x, Activation::Linear)?;
        let values = v.call(pass, 4, x, Activation::Linear)?;
        let heads = self.config.num_heads;
        let attended = pass.attention((&queries, &keys, &values), mask, heads)?;
        o.call(pass, 6, &attended, Activation::Linear)
    }
}

impl Layer for MultiHeadAttention {
    fn kind(&self) -> &'static str {
        "MultiHeadAttention"
    }

    fn build(&mut self, input_shape: &[usize], rng: &mut Rng) -> Result<Vec<usize>> {
        let (output, _) = self.config.shape_and_params(input_shape)?;
        let features = input_shape[1];
        let inner = self.config.num_heads * self.config.key_dim;
        self.projections = Some([
            Projection::build(features, inner, rng),
            Projection::build(features, inner, rng),
            Projection::build(features, inner, rng),
            Projection::build(inner, features, rng),
        ]);
        Ok(output)
    }

    fn call(&self, pass: &mut Pass, x: Value, mask: Option<Value>) -> Result<Value<'static>> {
        self.attend(pass, &x, mask.as_ref())
    }

    fn weights(&self) -> Vec<WeightRef<'_>> {
        let Some(projections) = &self.projections else {
            return Vec::new();
        };
        projections
            .iter()
            .zip(ATTENTION_WEIGHTS)
            .flat_map(|(p, (kernel, bias))| p.weights(kernel, bias))
            .collect()
    }

    fn weights_mut(&mut self) -> Vec<&mut Tensor> {
        self.projections
            .iter_mut()
            .flatten()
            .flat_map(Projection::weights_mut)
            .collect()
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::MultiHeadAttention(self.config.clone())
    }
}

/// `type = "transformer_encoder"` in a model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformerEncoderConfig {
    /// Attention heads; they split the features between them.
    pub num_heads: usize,
    /// The width of the feed-forward network's hidden layer.
    pub intermediate_dim: usize,
    /// The layer norms' epsilon. Default: 1e-12 (BERT).
    #[serde(default = "bert_epsilon")]
    pub epsilon: f32,
    /// Dropout on both residual branches in training. Default: 0.1 (BERT).
    #[serde(default = "bert_dropout")]
    pub dropout: f32,
}

fn bert_epsilon() -> f32 {
    1e-12
}

fn bert_dropout() -> f32 {
    0.1
}

impl TransformerEncoderConfig {
    /// The input shape, and the attention's, feed-forward network's and layer norms'
    /// parameters.
    pub fn shape_and_params(&self, input: &[usize]) -> Result<(Vec<usize>, usize)> {
        let TransformerEncoderConfig {
            num_heads,
            intermediate_dim,
            epsilon,
            dropout,
        } = *self;
        let features = sequence_features("TransformerEncoder", input)?;
        if num_heads == 0 || features % num_heads != 0 {
            return Err(Error::invalid(format!(
                "TransformerEncoder: {features} features do not split into {num_heads} heads"
            )));
        }
        if intermediate_dim == 0 || !(epsilon.is_finite() && epsilon > 0.0) {
            return Err(Error::invalid(
                "TransformerEncoder needs a positive intermediate_dim and epsilon",
            ));
        }
        if !(0.0..1.0).contains(&dropout) {
            return Err(Error::invalid(format!(
                "TransformerEncoder dropout must be in [0, 1), got {dropout}"
            )));
        }
        let (_, attention) = self.attention(features).shape_and_params(input)?;
        let params = (|| {
            let ffn = features
                .checked_mul(intermediate_dim)?
                .checked_add(intermediate_dim)?
                .checked_add(intermediate_dim.checked_mul(features)?)?
                .checked_add(features)?;
            attention.checked_add(ffn)?.checked_add(4 * features)
        })()
        .ok_or_else(|| Error::invalid("TransformerEncoder is too large"))?;
        Ok((input.to_vec(), params))
    }

    /// The block's attention on samples of `features`: the heads split them.
    fn attention(&self, features: usize) -> MultiHeadAttentionConfig {
        MultiHeadAttentionConfig {
            num_heads: self.num_heads,
            key_dim: features / self.num_heads,
        }
    }
}

/// The BERT encoder block on (sequence, features) samples:
/// `h = LayerNorm(x + Attention(x))`, `out = LayerNorm(h + Dense(GELU(Dense(h))))`, with
/// dropout on both residual branches in training.
#[derive(Clone, Debug)]
pub struct TransformerEncoder {
    config: TransformerEncoderConfig,
    attention: MultiHeadAttention,
    attention_norm: LayerNormalization,
    intermediate: Option<Projection>,
    output: Option<Projection>,
    output_norm: LayerNormalization,
    drop: Dropout,
}

impl From<TransformerEncoderConfig> for TransformerEncoder {
    /// The block unbuilt: its sublayers are made for the input's size in `build`.
    fn from(config: TransformerEncoderConfig) -> Self {
        TransformerEncoder {
            attention: MultiHeadAttention::new(config.num_heads, 1),
            attention_norm: LayerNormalization::new(),
            intermediate: None,
            output: None,
            output_norm: LayerNormalization::new(),
            drop: Dropout::new(config.dropout),
            config,
        }
    }
}

impl TransformerEncoder {
    /// `num_heads` heads (they split the features), a feed-forward layer of
    /// `intermediate_dim`; layer-norm epsilon 1e-12 and dropout 0.1 as BERT.
    pub fn new(num_heads: usize, intermediate_dim: usize) -> Self {
        TransformerEncoder::from(TransformerEncoderConfig {
            num_heads,
            intermediate_dim,
            epsilon: bert_epsilon(),
            dropout: bert_dropout(),
        })
    }

    pub fn epsilon(mut self, epsilon: f32) -> Self {
        self.config.epsilon = epsilon;
        self
    }

    pub fn dropout(mut self, rate: f32) -> Self {
        self.config.dropout = rate;
        self
    }

    fn feed_forward(&self) -> Result<(&Projection, &Projection)> {
        match (&self.intermediate, &self.output) {
            (Some(intermediate), Some(output)) => Ok((intermediate, output)),
            _ => Err(Error::invalid(
                "TransformerEncoder layer used before it was built",
            )),
        }
    }
}

/// The names of a [`TransformerEncoder`]'s weights after its attention's, in order.
const ENCODER_WEIGHTS: [&str; 8] = [
    "attention_norm_gamma",
    "attention_norm_beta",
    "intermediate_kernel",
    "intermediate_bias",
    "output_dense_kernel",
    "output_dense_bias",
    "output_norm_gamma",
    "output_norm_beta",
];

impl Layer for TransformerEncoder {
    fn kind(&self) -> &'static str {
        "TransformerEncoder"
    }

    fn build(&mut self, input_shape: &[usize], rng: &mut Rng) -> Result<Vec<usize>> {
        let (output, _) = self.config.shape_and_params(input_shape)?;
        let TransformerEncoderConfig {
            intermediate_dim,
            epsilon,
            dropout,
            ..
        } = self.config;
        let features = input_shape[1];
        self.attention = MultiHeadAttention::from(self.config.attention(features));
        self.attention.build(input_shape, rng)?;
        self.attention_norm = LayerNormalization::new().epsilon(epsilon);
        self.attention_norm.build(input_shape, rng)?;
        self.intermediate = Some(Projection::build(features, intermediate_dim, rng));
        self.output = Some(Projection::build(intermediate_dim, features, rng));
        self.output_norm = LayerNormalization::new().epsilon(epsilon);
        self.output_norm.build(input_shape, rng)?;
        self.drop = Dropout::new(dropout);
        self.drop.build(input_shape, rng)?;
        Ok(output)
    }

    /// The block on `x` (batch, sequence, features) with an optional padding mask; its
    /// sixteen weights in the order of [`Layer::weights`]: the attention's eight, then the
    /// norms' and the feed-forward network's. Dropout acts only in training.
    fn call(&self, pass: &mut Pass, x: Value, mask: Option<Value>) -> Result<Value<'static>> {
        let (intermediate, output) = self.feed_forward()?;
        let attended = self.attention.attend(pass, &x, mask.as_ref())?;
        let attended = self.drop.call(pass, attended, None)?;
        let h = pass.binary(BinaryOp::Add, &x, &attended)?;
        let h = pass.sublayer(8, |pass| self.attention_norm.call(pass, h, None))?;
        let inner = intermediate.call(pass, 10, &h, Activation::Gelu)?;
        let out = output.call(pass, 12, &inner, Activation::Linear)?;
        let out = self.drop.call(pass, out, None)?;
        let out = pass.binary(BinaryOp::Add, &h, &out)?;
        pass.sublayer(14, |pass| self.output_norm.call(pass, out, None))
    }

    fn skip_call(&self) {
        // Both residual branches' dropout.
        self.drop.skip_call();
        self.drop.skip_call();
    }

    fn weights(&self) -> Vec<WeightRef<'_>> {
        let (Some(intermediate), Some(output)) = (&self.intermediate, &self.output) else {
            return Vec::new();
        };
        let mut rest: Vec<WeightRef> = self.attention_norm.weights();
        rest.extend(intermediate.weights("", ""));
        rest.extend(output.weights("", ""));
        rest.extend(self.output_norm.weights());
        let mut weights = self.attention.weights();
        weights.extend(
            rest.into_iter()
                .zip(ENCODER_WEIGHTS)
                .map(|(w, name)| WeightRef { name, ..w }),
        );
        weights
    }

    fn weights_mut(&mut self) -> Vec<&mut Tensor> {
        let mut weights = self.attention.weights_mut();
        weights.extend(self.attention_norm.weights_mut());
        weights.extend(
            self.intermediate
                .iter_mut()
                .flat_map(Projection::weights_mut),
        );
        weights.extend(self.output.iter_mut().flat_map(Projection::weights_mut));
        weights.extend(self.output_norm.weights_mut());
        weights
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::TransformerEncoder(self.config.clone())
    }
}
