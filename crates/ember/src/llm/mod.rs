//! Generative language models from GGUF files: a llama-family decoder (SmolLM2, Qwen2.5,
//! Llama 3 …) with its tokenizer, sampling, streaming generation and chat.
//!
//! ```no_run
//! use ember::llm::{generate, GenerateOptions, LanguageModel, Sampling};
//!
//! let model = LanguageModel::load("SmolLM2-135M-Instruct.Q4_1.gguf".as_ref()).unwrap();
//! let prompt = model.vocab.prompt("The capital of France is").unwrap();
//! let options = GenerateOptions { max_tokens: 16, sampling: Sampling::greedy(), ..Default::default() };
//! let mut cache = model.llama.cache();
//! let reply = generate(&model, &mut cache, &prompt, &options, |text| {
//!     print!("{text}");
//!     Ok(())
//! })
//! .unwrap();
//! assert!(reply.tokens.len() <= 16);
//! ```

pub mod chat;
pub mod generate;
pub mod llama;
pub mod sample;
pub mod vocab;

use std::path::{Path, PathBuf};

pub use chat::{Chat, Message, Role, Template};
pub use generate::{generate, Finish, GenerateOptions, Generation};
pub use llama::{KvCache, Llama, LlamaConfig, Logits};
pub use sample::{Sampler, Sampling};
pub use vocab::Vocab;

use crate::error::Result;
use crate::io::gguf::Gguf;

/// A decoder and its tokenizer, read from one GGUF file.
pub struct LanguageModel {
    pub path: PathBuf,
    pub llama: Llama,
    pub vocab: Vocab,
    /// The file's `general.name`, if any.
    pub name: Option<String>,
}

impl LanguageModel {
    /// Loads the GGUF file at `path`.
    pub fn load(path: &Path) -> Result<LanguageModel> {
        let (gguf, file) = Gguf::open(path)?;
        let vocab = Vocab::from_gguf(&gguf)?;
        let llama = Llama::from_gguf(&gguf, file)?;
        if vocab.len() != llama.config.vocab {
            return Err(crate::Error::data(
                path,
                format!(
                    "the tokenizer has {} tokens, the model {}",
                    vocab.len(),
                    llama.config.vocab
                ),
            ));
        }
        Ok(LanguageModel {
            path: path.to_path_buf(),
            name: gguf
                .get("general.name")
                .and_then(|v| v.as_str())
                .map(str::to_string),
            llama,
            vocab,
        })
    }

    /// Perplexity of the model on `ids`: exp of the mean negative log-likelihood of each
    /// token after the first given the ones before, run in one context.
    pub fn perplexity(&self, ids: &[u32]) -> Result<f64> {
        if ids.len() < 2 {
            return Err(crate::Error::invalid("perplexity needs at least 2 tokens"));
        }
        let mut cache = self.llama.cache();
        let vocab = self.llama.config.vocab;
        let mut nll = 0f64;
        let mut done = 0;
        for batch in ids[..ids.len() - 1].chunks(generate::PROMPT_BATCH) {
            let logits = self.llama.forward(batch, &mut cache, Logits::All)?;
            for (t, row) in logits.chunks_exact(vocab).enumerate() {
                let next = ids[done + t + 1] as usize;
                let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
                let sum: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
                nll += max + sum.ln() - row[next] as f64;
            }
            done += batch.len();
        }
        Ok((nll / (ids.len() - 1) as f64).exp())
    }
}
