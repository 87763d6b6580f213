//! A BERT-family encoder: embeddings (word + position + token type, then layer norm) and a
//! stack of [`TransformerEncoder`] blocks, loaded from a Hugging Face folder's `config.json`
//! and `model.safetensors`. Nothing is specific to one model: sizes, depth, heads and the
//! layer-norm epsilon all come from the config.

use std::path::Path;

use safetensors::tensor::Dtype;
use safetensors::SafeTensors;
use serde::Deserialize;

use crate::autograd::BinaryOp;
use crate::error::{Error, Result};
use crate::nn::{Embedding, Layer, LayerNormalization, TransformerEncoder};
use crate::tensor::forward;
use crate::tensor::random::Rng;
use crate::tensor::Tensor;

/// The fields of a BERT `config.json` the encoder uses.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct BertConfig {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "two")]
    pub type_vocab_size: usize,
    #[serde(default = "bert_epsilon")]
    pub layer_norm_eps: f32,
    #[serde(default = "gelu")]
    pub hidden_act: String,
    #[serde(default = "absolute")]
    pub position_embedding_type: String,
}

fn two() -> usize {
    2
}

fn bert_epsilon() -> f32 {
    1e-12
}

fn gelu() -> String {
    "gelu".into()
}

fn absolute() -> String {
    "absolute".into()
}

impl BertConfig {
    /// Reads and checks `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let config: BertConfig = serde_json::from_str(&text)
            .map_err(|e| Error::data(path, format!("not a BERT config: {e}")))?;
        let problem = if config.hidden_act != "gelu" {
            Some(format!(
                "hidden_act '{}' is not supported (Ember runs BERT's exact 'gelu')",
                config.hidden_act
            ))
        } else if config.position_embedding_type != "absolute" {
            Some(format!(
                "position_embedding_type '{}' is not supported (only 'absolute')",
                config.position_embedding_type
            ))
        } else if config.num_attention_heads == 0
            || config.hidden_size % config.num_attention_heads != 0
        {
            Some(format!(
                "hidden_size {} does not split into {} heads",
                config.hidden_size, config.num_attention_heads
            ))
        } else if [
            config.hidden_size,
            config.num_hidden_layers,
            config.intermediate_size,
            config.vocab_size,
            config.max_position_embeddings,
            config.type_vocab_size,
        ]
        .contains(&0)
        {
            Some("sizes must be positive".into())
        } else {
            None
        };
        match problem {
            Some(message) => Err(Error::data(path, message)),
            None => Ok(config),
        }
    }
}

/// A BERT encoder built from Ember's layers: three [`Embedding`] tables (word, position,
/// token type), a [`LayerNormalization`] and a stack of [`TransformerEncoder`] blocks, each
/// owning its weights. Encoding takes `&self`: one encoder serves many threads.
#[derive(Clone)]
pub struct BertEncoder {
    pub config: BertConfig,
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    embedding_norm: LayerNormalization,
    layers: Vec<TransformerEncoder>,
}

/// The Hugging Face names of a [`TransformerEncoder`]'s weights, in the order of its
/// `weights()`, each with whether it is a PyTorch `Linear` weight (stored transposed).
const BLOCK_WEIGHTS: [(&str, bool); 16] = [
    ("attention.self.query.weight", true),
    ("attention.self.query.bias", false),
    ("attention.self.key.weight", true),
    ("attention.self.key.bias", false),
    ("attention.self.value.weight", true),
    ("attention.self.value.bias", false),
    ("attention.output.dense.weight", true),
    ("attention.output.dense.bias", false),
    ("attention.output.LayerNorm.weight", false),
    ("attention.output.LayerNorm.bias", false),
    ("intermediate.dense.weight", true),
    ("intermediate.dense.bias", false),
    ("output.dense.weight", true),
    ("output.dense.bias", false),
    ("output.LayerNorm.weight", false),
    ("output.LayerNorm.bias", false),
];

impl BertEncoder {
    /// An encoder of `config`'s shape with Keras-style random weights.
    pub fn new(config: BertConfig, seed: u64) -> Result<Self> {
        let mut rng = Rng::seed(seed);
        let h = config.hidden_size;
        let table = |rows: usize, rng: &mut Rng| -> Result<Embedding> {
            let mut e = Embedding::new(rows, h);
            e.build(&[1], rng)?;
            Ok(e)
        };
        let word = table(config.vocab_size, &mut rng)?;
        let position = table(config.max_position_embeddings, &mut rng)?;
        let token_type = table(config.type_vocab_size, &mut rng)?;
        let sample = [config.max_position_embeddings, h];
        let mut embedding_norm = LayerNormalization::new().epsilon(config.layer_norm_eps);
        embedding_norm.build(&sample, &mut rng)?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for _ in 0..config.num_hidden_layers {
            let mut layer =
                TransformerEncoder::new(config.num_attention_heads, config.intermediate_size)
                    .epsilon(config.layer_norm_eps);
            layer.build(&sample, &mut rng)?;
            layers.push(layer);
        }
        Ok(BertEncoder {
            config,
            word,
            position,
            token_type,
            embedding_norm,
            layers,
        })
    }

    /// Loads `config.json` and `model.safetensors` from a Hugging Face folder. Every tensor
    /// the encoder needs must be present with its shape; names may carry a `bert.` prefix.
    pub fn load(dir: &Path) -> Result<Self> {
        let config = BertConfig::from_file(&dir.join("config.json"))?;
        let mut encoder = Self::new(config, 0)?;
        let path = dir.join("model.safetensors");
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let tensors = SafeTensors::deserialize(&bytes)
            .map_err(|e| Error::data(&path, format!("not a safetensors file: {e}")))?;
        let weights = Weights {
            tensors: &tensors,
            path: &path,
        };
        encoder.load_weights(&weights)?;
        Ok(encoder)
    }

    fn load_weights(&mut self, w: &Weights) -> Result<()> {
        for (table, name) in [
            (&mut self.word, "word_embeddings"),
            (&mut self.position, "position_embeddings"),
            (&mut self.token_type, "token_type_embeddings"),
        ] {
            let slot = table
                .weights_mut()
                .into_iter()
                .next()
                .ok_or_else(|| Error::invalid("the encoder's embeddings are not built"))?;
            *slot = w.get(&format!("embeddings.{name}.weight"), slot.shape())?;
        }
        let norm = self.embedding_norm.weights_mut();
        w.norm("embeddings.LayerNorm", norm)?;
        for (i, layer) in self.layers.iter_mut().enumerate() {
            let slots = layer.weights_mut();
            if slots.len() != BLOCK_WEIGHTS.len() {
                return Err(Error::invalid("the encoder's layers are not built"));
            }
            for (slot, (name, transposed)) in slots.into_iter().zip(BLOCK_WEIGHTS) {
                let name = format!("encoder.layer.{i}.{name}");
                *slot = if transposed {
                    w.linear_kernel(&name, slot.shape())?
                } else if name.contains("LayerNorm") {
                    w.norm_part(&name, slot.shape())?
                } else {
                    w.get(&name, slot.shape())?
                };
            }
        }
        Ok(())
    }

    /// The last hidden states of a batch of token-id sequences, padded to the longest with
    /// `pad_id`: (batch, longest, hidden), and the attention mask (batch, longest) of 1 for
    /// tokens and 0 for padding.
    pub fn hidden_states(&self, batch: &[Vec<u32>], pad_id: u32) -> Result<(Tensor, Tensor)> {
        let last = self.layers.len();
        let (mut states, mask) = self.layer_states(batch, pad_id, &[last])?;
        Ok((states.remove(0), mask))
    }

    /// The hidden states after each of `layers` (0 is the embeddings, `num_hidden_layers`
    /// the last block), each (batch, longest, hidden), and the attention mask; as
    /// [`BertEncoder::hidden_states`] otherwise. Nothing is recorded: each block's input is
    /// dropped once the next block has it.
    pub fn layer_states(
        &self,
        batch: &[Vec<u32>],
        pad_id: u32,
        layers: &[usize],
    ) -> Result<(Vec<Tensor>, Tensor)> {
        let longest = batch.iter().map(Vec::len).max().unwrap_or(0);
        if batch.is_empty() || longest == 0 {
            return Err(Error::invalid("nothing to encode: no tokens"));
        }
        if longest > self.config.max_position_embeddings {
            return Err(Error::invalid(format!(
                "a sequence of {longest} tokens is longer than the model's {} positions",
                self.config.max_position_embeddings
            )));
        }
        if let Some(&l) = layers.iter().find(|&&l| l > self.layers.len()) {
            return Err(Error::invalid(format!(
                "layer {l} asked for, the encoder has {}",
                self.layers.len()
            )));
        }
        let n = batch.len();
        let mut ids = Vec::with_capacity(n * longest);
        let mut mask = Vec::with_capacity(n * longest);
        for seq in batch {
            ids.extend(seq.iter().map(|&t| t as f32));
            ids.extend(std::iter::repeat_n(pad_id as f32, longest - seq.len()));
            mask.extend(std::iter::repeat_n(1.0, seq.len()));
            mask.extend(std::iter::repeat_n(0.0, longest - seq.len()));
        }
        let positions: Vec<f32> = (0..n)
            .flat_map(|_| (0..longest).map(|p| p as f32))
            .collect();
        let ids = Tensor::new(&[n, longest], ids)?;
        let mask = Tensor::new(&[n, longest], mask)?;
        let positions = Tensor::new(&[n, longest], positions)?;
        // (batch, longest, hidden)
        let words = self.word.forward(&ids)?;
        let places = self.position.forward(&positions)?;
        let types = self.token_type.forward(&Tensor::zeros(&[n, longest]))?;
        let sum = forward::binary(BinaryOp::Add, &words, &places)?;
        let sum = forward::binary(BinaryOp::Add, &sum, &types)?;
        let mut h = self.embedding_norm.forward(&sum)?;
        let mut outputs = vec![None; layers.len()];
        let deepest = layers.iter().copied().max().unwrap_or(0);
        for depth in 0..=deepest {
            if depth > 0 {
                h = self.layers[depth - 1].forward_masked(&h, Some(&mask))?;
            }
            for (slot, _) in outputs.iter_mut().zip(layers).filter(|(_, &l)| l == depth) {
                *slot = Some(h.clone());
            }
        }
        Ok((outputs.into_iter().flatten().collect(), mask))
    }
}

/// The tensors of a safetensors file, read by name with their shapes checked.
struct Weights<'a> {
    tensors: &'a SafeTensors<'a>,
    path: &'a Path,
}

impl Weights<'_> {
    /// The F32 tensor `name` (or `bert.name`), which must have `shape`.
    fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let view = self
            .tensors
            .tensor(name)
            .or_else(|_| self.tensors.tensor(&format!("bert.{name}")))
            .map_err(|_| Error::data(self.path, format!("tensor '{name}' is missing")))?;
        if view.dtype() != Dtype::F32 {
            return Err(Error::data(
                self.path,
                format!("tensor '{name}' is {:?}, Ember reads F32", view.dtype()),
            ));
        }
        if view.shape() != shape {
            return Err(Error::data(
                self.path,
                format!(
                    "tensor '{name}' has shape {:?}, the config implies {shape:?}",
                    view.shape()
                ),
            ));
        }
        let data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if data.iter().any(|v| !v.is_finite()) {
            return Err(Error::data(
                self.path,
                format!("tensor '{name}' holds NaN or infinity"),
            ));
        }
        Tensor::new(shape, data)
    }

    /// A PyTorch `Linear` weight (out, in) as the kernel (in, out) of `shape`.
    fn linear_kernel(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let &[inputs, outputs] = shape else {
            return Err(Error::invalid(format!("'{name}' is not a matrix")));
        };
        let weight = self.get(name, &[outputs, inputs])?;
        let mut kernel = Tensor::zeros(&[inputs, outputs]);
        for (o, row) in weight.data().chunks_exact(inputs).enumerate() {
            for (i, &v) in row.iter().enumerate() {
                kernel.data_mut()[i * outputs + o] = v;
            }
        }
        Ok(kernel)
    }

    /// A LayerNorm's weight or bias, under its name or its old one (gamma, beta).
    fn norm_part(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let old = name
            .strip_suffix(".weight")
            .map(|n| format!("{n}.gamma"))
            .or_else(|| name.strip_suffix(".bias").map(|n| format!("{n}.beta")));
        self.get(name, shape).or_else(|e| match old {
            Some(old) => self.get(&old, shape),
            None => Err(e),
        })
    }

    /// A LayerNorm's weight and bias into `slots` (gamma, beta).
    fn norm(&self, name: &str, slots: Vec<&mut Tensor>) -> Result<()> {
        for (slot, part) in slots.into_iter().zip(["weight", "bias"]) {
            *slot = self.norm_part(&format!("{name}.{part}"), slot.shape())?;
        }
        Ok(())
    }
}
