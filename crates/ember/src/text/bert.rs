//! A BERT-family encoder: embeddings (word + position + token type, then layer norm) and a
//! stack of [`TransformerEncoder`] blocks, loaded from a Hugging Face folder's `config.json`
//! and `model.safetensors`. Nothing is specific to one model: sizes, depth, heads and the
//! layer-norm epsilon all come from the config.

use std::path::Path;

use safetensors::tensor::Dtype;
use safetensors::SafeTensors;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::model::{Graph, Model, SymbolicTensor};
use crate::nn::{Embedding, LayerNormalization, Merge, TransformerEncoder, ANY};
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
        let text = crate::read::text(path, crate::read::Limit::SETTINGS)?;
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
            || !config
                .hidden_size
                .is_multiple_of(config.num_attention_heads)
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

/// A BERT encoder built from Ember's public layers through the functional API: three
/// [`Embedding`] tables (word, position, token type) added and layer-normalised, then a
/// stack of [`TransformerEncoder`] blocks, each reading the padding mask. The graph takes
/// sequences of any length ([`ANY`]) and has one output per depth (the embeddings, then each
/// block), of which [`BertEncoder::layer_states`] computes only those asked for. Encoding
/// takes `&self`: one encoder serves many threads.
pub struct BertEncoder {
    pub config: BertConfig,
    model: Model,
}

/// The graph's inputs, in order: token ids, positions, token types, padding mask.
const INPUTS: [&str; 4] = ["token_ids", "positions", "token_types", "padding_mask"];

/// The graph's name for block `i` (0-based).
fn block_name(i: usize) -> String {
    format!("transformer_layer_{i}")
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
        let h = config.hidden_size;
        let graph = Graph::with_seed(seed);
        let [ids, positions, types, mask] = INPUTS.map(|name| graph.input(name, &[ANY]));
        let (ids, positions, types, mask) = (ids?, positions?, types?, mask?);
        let words = graph
            .named("word_embeddings", Embedding::new(config.vocab_size, h))?
            .call(&ids)?;
        let places = graph
            .named(
                "position_embeddings",
                Embedding::new(config.max_position_embeddings, h),
            )?
            .call(&positions)?;
        let kinds = graph
            .named(
                "token_type_embeddings",
                Embedding::new(config.type_vocab_size, h),
            )?
            .call(&types)?;
        let sum = graph.merge_named("embeddings", Merge::Add {}, &[&words, &places, &kinds])?;
        let norm = LayerNormalization::new().epsilon(config.layer_norm_eps);
        let mut h = graph.named("embeddings_norm", norm)?.call(&sum)?;
        let mut depths = vec![h.clone()];
        for i in 0..config.num_hidden_layers {
            let block =
                TransformerEncoder::new(config.num_attention_heads, config.intermediate_size)
                    .epsilon(config.layer_norm_eps);
            h = graph.named(&block_name(i), block)?.call_masked(&h, &mask)?;
            depths.push(h.clone());
        }
        let outputs: Vec<&SymbolicTensor> = depths.iter().collect();
        let model = Model::new(&[&ids, &positions, &types, &mask], &outputs)?;
        Ok(BertEncoder { config, model })
    }

    /// The encoder's graph (its summary lists every layer with what it is connected to).
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Loads `config.json` and `model.safetensors` from a Hugging Face folder. Every tensor
    /// the encoder needs must be present with its shape; names may carry a `bert.` prefix.
    pub fn load(dir: &Path) -> Result<Self> {
        let config = BertConfig::from_file(&dir.join("config.json"))?;
        let mut encoder = Self::new(config, 0)?;
        let path = dir.join("model.safetensors");
        let bytes = crate::read::file(&path, crate::read::Limit::MODEL)?;
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
        for name in [
            "word_embeddings",
            "position_embeddings",
            "token_type_embeddings",
        ] {
            let mut slots = self.model.layer_mut(name)?.weights_mut();
            let slot = slots
                .pop()
                .ok_or_else(|| Error::invalid("the encoder's embeddings are not built"))?;
            *slot = w.get(&format!("embeddings.{name}.weight"), slot.shape())?;
        }
        let norm = self.model.layer_mut("embeddings_norm")?.weights_mut();
        w.norm("embeddings.LayerNorm", norm)?;
        for i in 0..self.config.num_hidden_layers {
            let slots = self.model.layer_mut(&block_name(i))?.weights_mut();
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
        let last = self.config.num_hidden_layers;
        let (mut states, mask) = self.layer_states(batch, pad_id, &[last])?;
        Ok((states.remove(0), mask))
    }

    /// The hidden states after each of `layers` (0 is the embeddings, `num_hidden_layers`
    /// the last block), each (batch, longest, hidden), and the attention mask; as
    /// [`BertEncoder::hidden_states`] otherwise. Nothing is recorded, only the blocks up to
    /// the deepest asked for run, and each block's input is dropped once the next has it.
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
        let depth = self.config.num_hidden_layers;
        if let Some(&l) = layers.iter().find(|&&l| l > depth) {
            return Err(Error::invalid(format!(
                "layer {l} asked for, the encoder has {depth}"
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
        let types = Tensor::zeros(&[n, longest]);
        let states = self
            .model
            .infer_outputs(&[&ids, &positions, &types, &mask], layers)?;
        Ok((states, mask))
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
        self.get(name, &[outputs, inputs])?.transpose()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autograd::BinaryOp;
    use crate::tensor::forward;

    fn tiny() -> BertEncoder {
        let config = BertConfig {
            hidden_size: 8,
            num_hidden_layers: 2,
            num_attention_heads: 2,
            intermediate_size: 16,
            vocab_size: 30,
            max_position_embeddings: 12,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            hidden_act: "gelu".into(),
            position_embedding_type: "absolute".into(),
        };
        BertEncoder::new(config, 3).unwrap()
    }

    #[test]
    fn the_encoder_is_a_functional_graph_of_public_layers() {
        let encoder = tiny();
        let model = encoder.model();
        let summary = model.summary();
        for row in [
            "token_ids (InputLayer)",
            "word_embeddings (Embedding)",
            "embeddings (Add)",
            "embeddings_norm (LayerNormalization)",
            "transformer_layer_1 (TransformerEncoder)",
        ] {
            assert!(summary.contains(row), "{row} in {summary}");
        }
        let block = summary
            .lines()
            .find(|l| l.contains("transformer_layer_1"))
            .unwrap();
        assert!(
            block.contains("transformer_layer_0[0][0], padding_mask[0][0]"),
            "{block}"
        );
        assert!(summary.contains("(None, None, 8)"), "{summary}");
        // 30 + 12 + 2 table rows, a layer norm, and two blocks.
        let block_params = 4 * (8 * 8 + 8) + 2 * 8 + (8 * 16 + 16) + (16 * 8 + 8) + 2 * 8;
        assert_eq!(model.count_params(), 44 * 8 + 16 + 2 * block_params);
        assert!(model.layer("transformer_layer_0").unwrap().takes_mask());
    }

    #[test]
    fn layer_states_run_only_the_blocks_asked_for_and_ignore_padding() {
        let encoder = tiny();
        let batch = vec![vec![2, 7, 11, 3], vec![2, 5, 3]];
        let (all, mask) = encoder.layer_states(&batch, 0, &[0, 1, 2]).unwrap();
        assert_eq!(mask.data(), &[1., 1., 1., 1., 1., 1., 1., 0.]);
        let (some, _) = encoder.layer_states(&batch, 0, &[2, 0]).unwrap();
        assert_eq!(some, vec![all[2].clone(), all[0].clone()]);
        let (last, _) = encoder.hidden_states(&batch, 0).unwrap();
        assert_eq!(last, all[2]);
        assert_eq!(last.shape(), &[2, 4, 8]);
        // The embeddings by hand: word + position + type rows, then the layer norm.
        let word = encoder.model().layer("word_embeddings").unwrap();
        let ids = Tensor::new(&[1, 4], vec![2.0, 7.0, 11.0, 3.0]).unwrap();
        let by_hand = word.forward(&ids).unwrap();
        let positions = Tensor::new(&[1, 4], vec![0.0, 1.0, 2.0, 3.0]).unwrap();
        let places = encoder.model().layer("position_embeddings").unwrap();
        let types = encoder.model().layer("token_type_embeddings").unwrap();
        let sum = forward::binary(
            BinaryOp::Add,
            &by_hand,
            &places.forward(&positions).unwrap(),
        )
        .unwrap();
        let sum = forward::binary(
            BinaryOp::Add,
            &sum,
            &types.forward(&Tensor::zeros(&[1, 4])).unwrap(),
        )
        .unwrap();
        let norm = encoder.model().layer("embeddings_norm").unwrap();
        let expected = norm.forward(&sum).unwrap();
        assert_eq!(&all[0].data()[..32], expected.data());
        // The shorter sequence alone gives what it gave padded, to rounding.
        let (alone, _) = encoder.hidden_states(&batch[1..], 0).unwrap();
        for (a, b) in alone.data().iter().zip(&last.data()[32..56]) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        let err = encoder
            .layer_states(&batch, 0, &[3])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("layer 3 asked for, the encoder has 2"),
            "{err}"
        );
        let long = vec![vec![1; 13]];
        let err = encoder.hidden_states(&long, 0).unwrap_err().to_string();
        assert!(
            err.contains("longer than the model's 12 positions"),
            "{err}"
        );
    }
}
