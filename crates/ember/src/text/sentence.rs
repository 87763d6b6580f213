//! Sentence embeddings as sentence-transformers computes them: the folder's `modules.json`
//! pipeline (Transformer → Pooling → optional Normalize), `1_Pooling/config.json` for the
//! pooling mode and `sentence_bert_config.json` for the maximum sequence length.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::bert::BertEncoder;
use super::tokenizer::TextTokenizer;
use crate::error::{Error, Result};
use crate::tensor::{stats, Tensor};

/// How token vectors become one sentence vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// The mean over real (unpadded) tokens, [CLS] and [SEP] included.
    Mean,
    /// The first token's vector.
    Cls,
    /// The per-feature maximum over real tokens.
    Max,
}

#[derive(Deserialize)]
struct Module {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    path: String,
}

#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

#[derive(Deserialize)]
struct SentenceConfig {
    max_seq_length: Option<usize>,
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = crate::read::text(path, crate::read::Limit::SETTINGS)?;
    serde_json::from_str(&text).map_err(|e| Error::data(path, format!("malformed JSON: {e}")))
}

/// A pretrained sentence encoder: tokenizer, transformer, pooling, normalization.
pub struct SentenceEncoder {
    pub tokenizer: TextTokenizer,
    pub encoder: BertEncoder,
    pub pooling: Pooling,
    pub normalize: bool,
    /// The folder it was loaded from.
    pub dir: PathBuf,
}

impl SentenceEncoder {
    /// Whether `dir` looks like an encoder folder: a configuration and a tokenizer.
    pub fn is_folder(dir: &Path) -> bool {
        dir.join("config.json").is_file() && dir.join("tokenizer.json").is_file()
    }

    /// Loads a sentence-transformers folder (or a plain BERT folder: mean pooling, no
    /// normalization, when it has no `modules.json`).
    pub fn load(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::data(dir, "not a model folder"));
        }
        let modules_path = dir.join("modules.json");
        let (mut pooling, mut normalize) = (Pooling::Mean, false);
        if modules_path.is_file() {
            let modules: Vec<Module> = read_json(&modules_path)?;
            for module in &modules {
                let kind = module.kind.rsplit('.').next().unwrap_or_default();
                match kind {
                    "Transformer" => {}
                    "Pooling" => {
                        pooling = read_pooling(&dir.join(&module.path).join("config.json"))?
                    }
                    "Normalize" => normalize = true,
                    _ => {
                        return Err(Error::data(
                            &modules_path,
                            format!(
                            "module '{}' is not supported (Transformer, Pooling and Normalize are)",
                            module.kind
                        ),
                        ))
                    }
                }
            }
        }
        let encoder = BertEncoder::load(dir)?;
        let sentence_config = dir.join("sentence_bert_config.json");
        let max_length = if sentence_config.is_file() {
            read_json::<SentenceConfig>(&sentence_config)?.max_seq_length
        } else {
            None
        }
        .unwrap_or(encoder.config.max_position_embeddings)
        .min(encoder.config.max_position_embeddings);
        let tokenizer = TextTokenizer::from_file(&dir.join("tokenizer.json"), max_length)?;
        Ok(SentenceEncoder {
            tokenizer,
            encoder,
            pooling,
            normalize,
            dir: dir.to_path_buf(),
        })
    }

    /// The embedding width.
    pub fn dim(&self) -> usize {
        self.encoder.config.hidden_size
    }

    /// Embeds `texts` (n, dim), in `batch_size` batches of similar length (each padded only
    /// to its longest member), returned in the order given.
    pub fn encode(&self, texts: &[&str], batch_size: usize) -> Result<Tensor> {
        let ids: Vec<Vec<u32>> = texts
            .iter()
            .map(|t| self.tokenizer.encode(t))
            .collect::<Result<_>>()?;
        self.encode_ids(&ids, batch_size)
    }

    /// [`SentenceEncoder::encode`] from token ids.
    pub fn encode_ids(&self, ids: &[Vec<u32>], batch_size: usize) -> Result<Tensor> {
        let (pooling, normalize) = (self.pooling, self.normalize);
        let last = self.encoder.config.num_hidden_layers;
        self.pool_batches(
            ids,
            batch_size,
            &[last],
            self.dim(),
            |states, keep, target| pool_sentence(pooling, normalize, states[0], keep, target),
        )
    }

    /// Each text's token states after each of `layers` (0 is the embeddings,
    /// `num_hidden_layers` the last block), pooled over its tokens by the mean and by the
    /// per-feature maximum: (n, layers × 2 × dim), per layer the mean then the maximum, not
    /// normalized. Earlier layers keep more of the words themselves and the maximum keeps
    /// the strongest single cues, which one mean of the last layer averages away: richer
    /// features for a classifier than the sentence embedding alone.
    pub fn encode_pooled_layers(
        &self,
        texts: &[&str],
        batch_size: usize,
        layers: &[usize],
    ) -> Result<Tensor> {
        let ids: Vec<Vec<u32>> = texts
            .iter()
            .map(|t| self.tokenizer.encode(t))
            .collect::<Result<_>>()?;
        let dim = self.dim();
        self.pool_batches(
            &ids,
            batch_size,
            layers,
            layers.len() * 2 * dim,
            |states, keep, target| {
                for (hidden, part) in states.iter().zip(target.chunks_exact_mut(2 * dim)) {
                    let (mean, max) = part.split_at_mut(dim);
                    mean_over_tokens(hidden, keep, mean);
                    max_over_tokens(hidden, keep, max);
                }
            },
        )
    }

    /// Runs every sequence of `ids` through the encoder, in batches of `batch_size`
    /// sequences of similar length (each padded only to its longest member), and has `pool`
    /// turn each sequence's states after `layers` (one (tokens, dim) slice per layer) and
    /// its mask into its row of `width` values; rows come back in the order of `ids`. Each
    /// batch is pooled as soon as it is encoded, so memory holds one batch's states per
    /// thread, not the whole corpus's.
    fn pool_batches(
        &self,
        ids: &[Vec<u32>],
        batch_size: usize,
        layers: &[usize],
        width: usize,
        pool: impl Fn(&[&[f32]], &[f32], &mut [f32]) + Sync,
    ) -> Result<Tensor> {
        let dim = self.dim();
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
        let pad = self.tokenizer.pad_id();
        let batches: Vec<&[usize]> = order.chunks(batch_size.max(1)).collect();
        // With several threads and batches, each thread encodes whole batches with the one
        // shared encoder (kernels single-threaded): this scales better than splitting every
        // product. Results do not depend on the thread count.
        let threads = crate::tensor::threads::num_threads()
            .min(batches.len())
            .max(1);
        let encoder = &self.encoder;
        let progress = crate::progress::Progress::new("Encoding", ids.len(), "texts");
        // One batch: (index in `ids`, pooled row) for each of its sequences.
        let run = |chunk: &[usize]| -> Result<Vec<(usize, Vec<f32>)>> {
            let batch: Vec<Vec<u32>> = chunk.iter().map(|&i| ids[i].clone()).collect();
            let (states, mask) = encoder.layer_states(&batch, pad, layers)?;
            let seq = mask.shape()[1];
            progress.advance(chunk.len());
            Ok(chunk
                .iter()
                .enumerate()
                .map(|(b, &i)| {
                    let hidden: Vec<&[f32]> = states
                        .iter()
                        .map(|s| &s.data()[b * seq * dim..(b + 1) * seq * dim])
                        .collect();
                    let mut row = vec![0.0; width];
                    pool(&hidden, &mask.data()[b * seq..(b + 1) * seq], &mut row);
                    (i, row)
                })
                .collect())
        };
        let rows: Vec<Vec<(usize, Vec<f32>)>> = if threads == 1 {
            batches
                .iter()
                .map(|chunk| run(chunk))
                .collect::<Result<_>>()?
        } else {
            use rayon::prelude::*;
            (0..threads)
                .into_par_iter()
                .map(|worker| {
                    crate::tensor::threads::serial(|| {
                        let mut rows = Vec::new();
                        for chunk in batches.iter().skip(worker).step_by(threads) {
                            rows.extend(run(chunk)?);
                        }
                        Ok(rows)
                    })
                })
                .collect::<Result<_>>()?
        };
        Tensor::from_rows(&[ids.len(), width], rows.into_iter().flatten())
    }
}

/// A sentence embedding from its token states: `pooling`, then L2 normalization when
/// `normalize`.
fn pool_sentence(
    pooling: Pooling,
    normalize: bool,
    rows: &[f32],
    keep: &[f32],
    target: &mut [f32],
) {
    let dim = target.len();
    match pooling {
        Pooling::Cls => target.copy_from_slice(&rows[..dim]),
        Pooling::Mean => mean_over_tokens(rows, keep, target),
        Pooling::Max => max_over_tokens(rows, keep, target),
    }
    if normalize {
        stats::l2_normalize(target);
    }
}

/// The mean of the token vectors `rows` (tokens × dim) whose `keep` entry is not 0.
fn mean_over_tokens(rows: &[f32], keep: &[f32], target: &mut [f32]) {
    let dim = target.len();
    target.fill(0.0);
    let mut count = 0.0f32;
    for (row, &k) in rows.chunks_exact(dim).zip(keep) {
        if k != 0.0 {
            target.iter_mut().zip(row).for_each(|(t, v)| *t += v);
            count += 1.0;
        }
    }
    target.iter_mut().for_each(|t| *t /= count.max(1e-9));
}

/// The per-feature maximum of the token vectors `rows` whose `keep` entry is not 0.
fn max_over_tokens(rows: &[f32], keep: &[f32], target: &mut [f32]) {
    let dim = target.len();
    target.fill(f32::NEG_INFINITY);
    for (row, &k) in rows.chunks_exact(dim).zip(keep) {
        if k != 0.0 {
            target.iter_mut().zip(row).for_each(|(t, &v)| *t = t.max(v));
        }
    }
}

fn read_pooling(path: &Path) -> Result<Pooling> {
    let config: PoolingConfig = read_json(path)?;
    match (
        config.pooling_mode_mean_tokens,
        config.pooling_mode_cls_token,
        config.pooling_mode_max_tokens,
        config.pooling_mode_mean_sqrt_len_tokens,
    ) {
        (true, false, false, false) => Ok(Pooling::Mean),
        (false, true, false, false) => Ok(Pooling::Cls),
        (false, false, true, false) => Ok(Pooling::Max),
        _ => Err(Error::data(
            path,
            "pooling must be exactly one of mean, cls or max tokens",
        )),
    }
}
