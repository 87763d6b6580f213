//! The llama decoder (and Qwen2, its relative with biased Q/K/V projections and NeoX RoPE)
//! from a GGUF file: token embedding, blocks of RMSNorm → grouped-query attention with RoPE
//! → RMSNorm → SwiGLU feed-forward, each added back to the residual stream, a last RMSNorm
//! and the output head (the embedding itself when the file ties them). The blocks
//! (`block.rs`) are written over the op API, as every layer is; inference runs them in
//! an eager pass.

use std::io::{Read, Seek};
use std::path::Path;

use super::block::Block;
use crate::autograd::{Pass, Value};
use crate::error::{Error, Result};
use crate::gguf::{Array, Gguf, TensorInfo};
use crate::tensor::decoder::{LayerCache, Rope, RopeLayout};
use crate::tensor::quant::{dequantize_row, QMatrix, QuantType};
use crate::tensor::{forward, Tensor};

/// The sizes a llama-family model declares in its GGUF metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct LlamaConfig {
    pub architecture: String,
    pub layers: usize,
    pub hidden: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub feed_forward: usize,
    pub vocab: usize,
    pub context: usize,
    pub rope_base: f32,
    pub rope_layout: RopeLayout,
    pub rms_eps: f32,
}

/// The most of any size a model may declare: far beyond any real model, small enough that
/// products of sizes cannot overflow.
const MAX_SIZE: u64 = 1 << 24;

impl LlamaConfig {
    fn from_gguf(g: &Gguf) -> Result<LlamaConfig> {
        let arch = g.str("general.architecture")?.to_string();
        let rope_layout = match arch.as_str() {
            "llama" | "mistral" => RopeLayout::Adjacent,
            "qwen2" => RopeLayout::Halves,
            other => {
                return Err(Error::data(
                    &g.path,
                    format!(
                    "architecture '{other}' is not supported (Ember runs llama and qwen2 models)"
                ),
                ))
            }
        };
        let size = |key: &str| -> Result<usize> {
            let full = format!("{arch}.{key}");
            let v = g.u64(&full)?;
            if v == 0 || v > MAX_SIZE {
                return Err(Error::data(
                    &g.path,
                    format!("metadata '{full}' is {v}, not a size"),
                ));
            }
            Ok(v as usize)
        };
        let hidden = size("embedding_length")?;
        let heads = size("attention.head_count")?;
        let kv_heads = match g.get(&format!("{arch}.attention.head_count_kv")) {
            Some(_) => size("attention.head_count_kv")?,
            None => heads,
        };
        let head_dim = match g.get(&format!("{arch}.attention.key_length")) {
            Some(_) => size("attention.key_length")?,
            None => hidden / heads,
        };
        if heads % kv_heads != 0 || head_dim % 2 != 0 {
            return Err(Error::data(
                &g.path,
                format!("{heads} attention heads cannot share {kv_heads} key-value heads of size {head_dim}"),
            ));
        }
        let vocab = match g.array("tokenizer.ggml.tokens")? {
            Array::Strings(t) => t.len(),
            _ => {
                return Err(Error::data(
                    &g.path,
                    "metadata 'tokenizer.ggml.tokens' is not a list of strings",
                ))
            }
        };
        let f = |key: &str, default: f64| -> Result<f32> {
            let full = format!("{arch}.{key}");
            let v = match g.get(&full) {
                Some(_) => g.f64(&full)?,
                None => default,
            };
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::data(
                    &g.path,
                    format!("metadata '{full}' is {v}, not a positive number"),
                ));
            }
            Ok(v as f32)
        };
        Ok(LlamaConfig {
            layers: size("block_count")?,
            hidden,
            heads,
            kv_heads,
            head_dim,
            feed_forward: size("feed_forward_length")?,
            vocab,
            context: size("context_length")?,
            rope_base: f("rope.freq_base", 10000.0)?,
            rope_layout,
            rms_eps: f("attention.layer_norm_rms_epsilon", 1e-5)?,
            architecture: arch,
        })
    }
}

/// A llama-family decoder with its weights, quantised as the file stores them.
pub struct Llama {
    pub config: LlamaConfig,
    embedding: QMatrix,
    blocks: Vec<Block>,
    norm: Tensor,
    /// None when the output head is the token embedding.
    head: Option<QMatrix>,
}

/// The key–value cache of one conversation: every layer's keys and values so far.
#[derive(Clone, Debug)]
pub struct KvCache {
    pub(super) layers: Vec<LayerCache>,
    len: usize,
    head_dim: usize,
}

impl KvCache {
    /// Positions cached.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets every position from `len` on (a conversation rewound, a prefix reused).
    pub fn truncate(&mut self, len: usize) {
        if len < self.len {
            for l in &mut self.layers {
                l.truncate(len, self.head_dim);
            }
            self.len = len;
        }
    }
}

/// Which positions' logits [`Llama::forward`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logits {
    Last,
    All,
}

/// Reads tensors from a GGUF file, checking each one's type and shape.
struct Loader<'a, R> {
    gguf: &'a Gguf,
    file: R,
}

impl<R: Read + Seek> Loader<'_, R> {
    fn info(&self, name: &str) -> Result<&TensorInfo> {
        self.gguf
            .tensor(name)
            .ok_or_else(|| Error::data(&self.gguf.path, format!("tensor '{name}' is missing")))
    }

    fn check(&self, t: &TensorInfo, dims: &[usize]) -> Result<()> {
        if t.dims != dims {
            return Err(Error::data(
                &self.gguf.path,
                format!(
                    "tensor '{}' has dimensions {:?}, the model's metadata needs {dims:?}",
                    t.name, t.dims
                ),
            ));
        }
        Ok(())
    }

    /// A `rows × cols` matrix (GGUF dimensions `[cols, rows]`).
    fn matrix(&mut self, name: &str, rows: usize, cols: usize) -> Result<QMatrix> {
        let t = self.info(name)?.clone();
        self.check(&t, &[cols, rows])?;
        let bytes = self.gguf.read_tensor(&mut self.file, &t)?;
        QMatrix::new(t.kind, rows, cols, bytes)
            .map_err(|e| Error::data(&self.gguf.path, format!("tensor '{name}': {e}")))
    }

    /// A vector of `len` numbers (norm weights, biases), expanded to `f32` and checked finite.
    fn vector(&mut self, name: &str, len: usize) -> Result<Tensor> {
        let t = self.info(name)?.clone();
        self.check(&t, &[len])?;
        if t.kind.block_len() != 1 {
            return Err(Error::data(
                &self.gguf.path,
                format!(
                    "tensor '{name}' is {}, a vector must be F32, F16 or BF16",
                    t.kind
                ),
            ));
        }
        let bytes = self.gguf.read_tensor(&mut self.file, &t)?;
        let mut out = vec![0f32; len];
        dequantize_row(t.kind, &bytes, &mut out);
        if let Some(v) = out.iter().find(|v| !v.is_finite()) {
            return Err(Error::data(
                &self.gguf.path,
                format!("tensor '{name}' holds {v}"),
            ));
        }
        Tensor::new(&[len], out)
    }

    fn optional_vector(&mut self, name: &str, len: usize) -> Result<Option<Tensor>> {
        match self.gguf.tensor(name) {
            Some(_) => self.vector(name, len).map(Some),
            None => Ok(None),
        }
    }
}

impl Llama {
    /// Loads the decoder of the GGUF file at `path`.
    pub fn load(path: &Path) -> Result<Llama> {
        let (gguf, file) = Gguf::open(path)?;
        Llama::from_gguf(&gguf, file)
    }

    /// The decoder described by `gguf`, reading its tensors from `file` (the file, or its
    /// bytes, that `gguf` was parsed from).
    pub fn from_gguf(gguf: &Gguf, file: impl Read + Seek) -> Result<Llama> {
        let c = LlamaConfig::from_gguf(gguf)?;
        let mut l = Loader { gguf, file };
        let (h, q_dim, kv_dim) = (c.hidden, c.heads * c.head_dim, c.kv_heads * c.head_dim);
        let embedding = l.matrix("token_embd.weight", c.vocab, h)?;
        let rope_factors = l
            .optional_vector("rope_freqs.weight", c.head_dim / 2)?
            .map(Tensor::into_data);
        let rope = |heads| Rope {
            heads,
            head_dim: c.head_dim,
            base: c.rope_base,
            layout: c.rope_layout,
        };
        // Not preallocated: the count is the file's word, and each block must find its
        // tensors in the file before the next is made.
        let mut blocks = Vec::new();
        for i in 0..c.layers {
            let n = |s: &str| format!("blk.{i}.{s}");
            blocks.push(Block {
                attn_norm: l.vector(&n("attn_norm.weight"), h)?,
                q: l.matrix(&n("attn_q.weight"), q_dim, h)?,
                k: l.matrix(&n("attn_k.weight"), kv_dim, h)?,
                v: l.matrix(&n("attn_v.weight"), kv_dim, h)?,
                q_bias: l.optional_vector(&n("attn_q.bias"), q_dim)?,
                k_bias: l.optional_vector(&n("attn_k.bias"), kv_dim)?,
                v_bias: l.optional_vector(&n("attn_v.bias"), kv_dim)?,
                output: l.matrix(&n("attn_output.weight"), h, q_dim)?,
                ffn_norm: l.vector(&n("ffn_norm.weight"), h)?,
                gate: l.matrix(&n("ffn_gate.weight"), c.feed_forward, h)?,
                up: l.matrix(&n("ffn_up.weight"), c.feed_forward, h)?,
                down: l.matrix(&n("ffn_down.weight"), h, c.feed_forward)?,
                rms_eps: c.rms_eps,
                query_rope: rope(c.heads),
                key_rope: rope(c.kv_heads),
                rope_factors: rope_factors.clone(),
            });
        }
        let norm = l.vector("output_norm.weight", h)?;
        let head = match gguf.tensor("output.weight") {
            Some(_) => Some(l.matrix("output.weight", c.vocab, h)?),
            None => None,
        };
        Ok(Llama {
            config: c,
            embedding,
            blocks,
            norm,
            head,
        })
    }

    /// An empty cache for this model.
    pub fn cache(&self) -> KvCache {
        KvCache {
            layers: (0..self.config.layers)
                .map(|_| LayerCache::new(self.config.kv_heads))
                .collect(),
            len: 0,
            head_dim: self.config.head_dim,
        }
    }

    /// The quantisation of the weights, by type (for reports).
    pub fn weight_types(&self) -> Vec<(QuantType, usize)> {
        let mut counts: Vec<(QuantType, usize)> = Vec::new();
        let mut add = |m: &QMatrix| match counts.iter_mut().find(|(k, _)| *k == m.kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((m.kind, 1)),
        };
        add(&self.embedding);
        for b in &self.blocks {
            for m in [&b.q, &b.k, &b.v, &b.output, &b.gate, &b.up, &b.down] {
                add(m);
            }
        }
        if let Some(m) = &self.head {
            add(m);
        }
        counts
    }

    /// Runs `tokens` through the model after the cache's positions, appending their keys and
    /// values to `cache`. Returns the logits of the last token (vocab) or of every token
    /// (tokens × vocab).
    pub fn forward(&self, tokens: &[u32], cache: &mut KvCache, which: Logits) -> Result<Vec<f32>> {
        let c = &self.config;
        let n = tokens.len();
        if n == 0 {
            return Err(Error::invalid("no tokens to run"));
        }
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= c.vocab) {
            return Err(Error::invalid(format!(
                "token id {bad} is outside the vocabulary of {}",
                c.vocab
            )));
        }
        if cache.layers.len() != self.blocks.len() || cache.head_dim != c.head_dim {
            return Err(Error::invalid(format!(
                "the cache was made for another model ({} layers of head size {}; this one has {} of {})",
                cache.layers.len(),
                cache.head_dim,
                self.blocks.len(),
                c.head_dim
            )));
        }
        if cache.len + n > c.context {
            return Err(Error::invalid(format!(
                "{} tokens do not fit the model's context of {} ({} already used)",
                n, c.context, cache.len
            )));
        }
        let mut pass = Pass::eager();
        let mut x = Value::from(forward::qembedding(&self.embedding, tokens)?); // (tokens, hidden)
        let first = cache.len;
        for (block, layer) in self.blocks.iter().zip(&mut cache.layers) {
            x = block.call(&mut pass, x, layer, first)?;
        }
        cache.len += n;
        let x = x.into_tensor()?;
        let rows = match which {
            Logits::Last => x.slice_rows(n - 1, n)?,
            Logits::All => x,
        };
        let normed = pass.rms_norm(&Value::from(rows), &Value::from(&self.norm), c.rms_eps)?;
        let head = self.head.as_ref().unwrap_or(&self.embedding);
        Ok(pass.qlinear(normed, head)?.into_tensor()?.into_data())
    }
}
