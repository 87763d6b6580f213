//! A BERT-family encoder: embeddings (word + position + token type, then layer norm) and a
//! stack of [`TransformerEncoder`] blocks, loaded from a Hugging Face folder's `config.json`
//! and `model.safetensors`. Nothing is specific to one model: sizes, depth, heads and the
//! layer-norm epsilon all come from the config.

use std::path::Path;

use safetensors::tensor::Dtype;
use safetensors::SafeTensors;
use serde::Deserialize;

use crate::autograd::{Tape, Var};
use crate::error::{Error, Result};
use crate::nn::{Layer, LayerNormalization, TransformerEncoder};
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

/// A BERT encoder with its weights on its own tape, for inference (and fine-tuning).
#[derive(Clone)]
pub struct BertEncoder {
    pub config: BertConfig,
    pub(crate) tape: Tape,
    word: Var,
    position: Var,
    token_type: Var,
    embedding_norm: LayerNormalization,
    layers: Vec<TransformerEncoder>,
}

impl BertEncoder {
    /// An encoder of `config`'s shape with Keras-style random weights.
    pub fn new(config: BertConfig, seed: u64) -> Result<Self> {
        let mut tape = Tape::new();
        let mut rng = Rng::seed(seed);
        let h = config.hidden_size;
        let table = |rows: usize, rng: &mut Rng, tape: &mut Tape| {
            let mut t = Tensor::zeros(&[rows, h]);
            t.data_mut()
                .iter_mut()
                .for_each(|v| *v = rng.uniform_range(-0.05, 0.05));
            tape.param(t)
        };
        let word = table(config.vocab_size, &mut rng, &mut tape);
        let position = table(config.max_position_embeddings, &mut rng, &mut tape);
        let token_type = table(config.type_vocab_size, &mut rng, &mut tape);
        let sample = [config.max_position_embeddings, h];
        let mut embedding_norm = LayerNormalization::new().epsilon(config.layer_norm_eps);
        embedding_norm.build(&mut tape, &sample, &mut rng)?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for _ in 0..config.num_hidden_layers {
            let mut layer =
                TransformerEncoder::new(config.num_attention_heads, config.intermediate_size)
                    .epsilon(config.layer_norm_eps);
            layer.build(&mut tape, &sample, &mut rng)?;
            layers.push(layer);
        }
        Ok(BertEncoder {
            config,
            tape,
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
        let h = self.config.hidden_size;
        let set = |tape: &mut Tape, var: Var, value: Tensor| {
            *tape.param_mut(var) = value;
        };
        set(
            &mut self.tape,
            self.word,
            w.get(
                "embeddings.word_embeddings.weight",
                &[self.config.vocab_size, h],
            )?,
        );
        set(
            &mut self.tape,
            self.position,
            w.get(
                "embeddings.position_embeddings.weight",
                &[self.config.max_position_embeddings, h],
            )?,
        );
        set(
            &mut self.tape,
            self.token_type,
            w.get(
                "embeddings.token_type_embeddings.weight",
                &[self.config.type_vocab_size, h],
            )?,
        );
        let (gamma, beta) = self.embedding_norm.vars();
        w.norm(&mut self.tape, "embeddings.LayerNorm", gamma, beta, h)?;
        for (i, layer) in self.layers.iter().enumerate() {
            let p = format!("encoder.layer.{i}");
            let crate::nn::transformer::EncoderParts {
                attention,
                norms,
                intermediate,
                output,
            } = layer
                .parts()
                .ok_or_else(|| Error::invalid("the encoder's layers are not built"))?;
            for (projection, name) in attention.iter().zip([
                "attention.self.query",
                "attention.self.key",
                "attention.self.value",
                "attention.output.dense",
            ]) {
                w.linear(&mut self.tape, &format!("{p}.{name}"), projection, h, h)?;
            }
            let i_size = self.config.intermediate_size;
            w.linear(
                &mut self.tape,
                &format!("{p}.intermediate.dense"),
                &intermediate,
                h,
                i_size,
            )?;
            w.linear(
                &mut self.tape,
                &format!("{p}.output.dense"),
                &output,
                i_size,
                h,
            )?;
            w.norm(
                &mut self.tape,
                &format!("{p}.attention.output.LayerNorm"),
                norms[0],
                norms[1],
                h,
            )?;
            w.norm(
                &mut self.tape,
                &format!("{p}.output.LayerNorm"),
                norms[2],
                norms[3],
                h,
            )?;
        }
        Ok(())
    }

    /// The last hidden states of a batch of token-id sequences, padded to the longest with
    /// `pad_id`: (batch, longest, hidden), and the attention mask (batch, longest) of 1 for
    /// tokens and 0 for padding.
    pub fn hidden_states(&mut self, batch: &[Vec<u32>], pad_id: u32) -> Result<(Tensor, Tensor)> {
        let last = self.layers.len();
        let (mut states, mask) = self.layer_states(batch, pad_id, &[last])?;
        Ok((states.remove(0), mask))
    }

    /// The hidden states after each of `layers` (0 is the embeddings, `num_hidden_layers`
    /// the last block), each (batch, longest, hidden), and the attention mask; as
    /// [`BertEncoder::hidden_states`] otherwise.
    pub fn layer_states(
        &mut self,
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
        let tape = &mut self.tape;
        tape.reset();
        let ids_var = tape.constant(&ids);
        let positions_var = tape.constant(&positions);
        let types_var = tape.constant(&Tensor::zeros(&[n, longest]));
        let mask_var = tape.constant(&mask);
        let words = tape.embedding(self.word, ids_var)?;
        let places = tape.embedding(self.position, positions_var)?;
        let types = tape.embedding(self.token_type, types_var)?;
        let sum = tape.add(words, places)?;
        let sum = tape.add(sum, types)?;
        let mut h = self.embedding_norm.forward(tape, sum, false)?;
        let mut outputs = vec![None; layers.len()];
        for depth in 0..=self.layers.len() {
            if depth > 0 {
                h = self.layers[depth - 1].forward_masked(tape, h, Some(mask_var), false)?;
            }
            for (slot, _) in outputs.iter_mut().zip(layers).filter(|(_, &l)| l == depth) {
                *slot = Some(tape.value(h).clone());
            }
            if depth == layers.iter().copied().max().unwrap_or(0) {
                break;
            }
        }
        tape.reset();
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

    /// A PyTorch `Linear` (weight (out, in), bias (out)) into a projection whose kernel is
    /// (in, out).
    fn linear(
        &self,
        tape: &mut Tape,
        name: &str,
        projection: &crate::nn::transformer::Projection,
        inputs: usize,
        outputs: usize,
    ) -> Result<()> {
        let weight = self.get(&format!("{name}.weight"), &[outputs, inputs])?;
        let mut kernel = Tensor::zeros(&[inputs, outputs]);
        for (o, row) in weight.data().chunks_exact(inputs).enumerate() {
            for (i, &v) in row.iter().enumerate() {
                kernel.data_mut()[i * outputs + o] = v;
            }
        }
        *tape.param_mut(projection.kernel) = kernel;
        *tape.param_mut(projection.bias) = self.get(&format!("{name}.bias"), &[outputs])?;
        Ok(())
    }

    /// A LayerNorm's weight and bias (or their old names gamma and beta).
    fn norm(
        &self,
        tape: &mut Tape,
        name: &str,
        gamma: Option<Var>,
        beta: Option<Var>,
        size: usize,
    ) -> Result<()> {
        let pick = |new: &str, old: &str| {
            self.get(&format!("{name}.{new}"), &[size])
                .or_else(|_| self.get(&format!("{name}.{old}"), &[size]))
        };
        if let Some(g) = gamma {
            *tape.param_mut(g) = pick("weight", "gamma")?;
        }
        if let Some(b) = beta {
            *tape.param_mut(b) = pick("bias", "beta")?;
        }
        Ok(())
    }
}
