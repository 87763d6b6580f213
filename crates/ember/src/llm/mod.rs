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

mod block;
pub mod chat;
pub mod generate;
pub mod llama;
pub mod sample;
pub mod vocab;

use std::path::{Path, PathBuf};

pub use chat::{Chat, Message, Role, Template};
pub use generate::{generate, generate_after, Finish, GenerateOptions, Generation};
pub use llama::{KvCache, Llama, LlamaConfig, Logits};
pub use sample::{Sampler, Sampling};
pub use vocab::Vocab;

use crate::error::Result;
use crate::gguf::Gguf;

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
        LanguageModel::from_gguf(&gguf, file)
    }

    /// Loads a GGUF file from its bytes; `path` names it in errors. Every malformed input is
    /// an error, never a panic (the fuzzed entry point).
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<LanguageModel> {
        let mut cursor = std::io::Cursor::new(bytes);
        let gguf = Gguf::parse(&mut cursor, bytes.len() as u64, path)?;
        LanguageModel::from_gguf(&gguf, cursor)
    }

    fn from_gguf(gguf: &Gguf, file: impl std::io::Read + std::io::Seek) -> Result<LanguageModel> {
        let path = gguf.path.as_path();
        let vocab = Vocab::from_gguf(gguf)?;
        let llama = Llama::from_gguf(gguf, file)?;
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
        if let Some(&bad) = ids.iter().find(|&&t| t as usize >= self.llama.config.vocab) {
            return Err(crate::Error::invalid(format!(
                "token id {bad} is outside the vocabulary of {}",
                self.llama.config.vocab
            )));
        }
        let mut cache = self.llama.cache();
        let vocab = self.llama.config.vocab;
        let mut nll = 0f64;
        let mut done = 0;
        for batch in ids[..ids.len() - 1].chunks(generate::PROMPT_BATCH) {
            let logits = self.llama.forward(batch, &mut cache, Logits::All)?;
            for (t, row) in logits.chunks_exact(vocab).enumerate() {
                let next = ids[done + t + 1] as usize;
                nll += crate::tensor::loss::logits_nll_f64(row, next);
            }
            done += batch.len();
        }
        Ok((nll / (ids.len() - 1) as f64).exp())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::gguf::tests::Builder;
    use crate::tensor::random::Rng;

    /// GPT-2's printable stand-in for byte `b`.
    fn byte_char(b: u8) -> char {
        let printable = |b: u8| matches!(b, 33..=126 | 161..=172 | 174..=255);
        if printable(b) {
            return b as char;
        }
        let moved = (0..b).filter(|&c| !printable(c)).count() as u32;
        char::from_u32(256 + moved).unwrap()
    }

    fn random_blocks(rng: &mut Rng, kind: u32, rows: usize, cols: usize) -> Vec<u8> {
        let (block, scales): (usize, &[usize]) = match kind {
            3 => (20, &[0, 2]), // Q4_1: d, m
            8 => (34, &[0]),    // Q8_0: d
            _ => unreachable!(),
        };
        let mut bytes = vec![0u8; rows * cols / 32 * block];
        for b in bytes.chunks_exact_mut(block) {
            for v in b.iter_mut() {
                *v = (rng.next_u64() >> 56) as u8;
            }
            for &at in scales {
                let s = half::f16::from_f32(0.02 * (rng.uniform() - 0.5)).to_bits();
                b[at..at + 2].copy_from_slice(&s.to_le_bytes());
            }
        }
        bytes
    }

    /// A tiny llama in a GGUF file: 2 layers, hidden 32, 2 heads sharing 1 key-value head,
    /// a context of 64 tokens, a byte-level vocabulary of 256 tokens, "ab" and 2 ChatML tokens.
    pub(crate) fn tiny_gguf() -> Vec<u8> {
        tiny_gguf_with_context(64)
    }

    /// [`tiny_gguf`] with room for a longer prompt.
    pub(crate) fn tiny_gguf_with_context(context: u32) -> Vec<u8> {
        let mut tokens: Vec<String> = (0..=255u8).map(|b| byte_char(b).to_string()).collect();
        tokens.extend(["ab".into(), "<|im_start|>".into(), "<|im_end|>".into()]);
        let types: Vec<i32> = (0..tokens.len())
            .map(|i| if i >= 257 { 3 } else { 1 })
            .collect();
        let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
        let mut b = Builder::new()
            .kv_str("general.architecture", "llama")
            .kv_u32("llama.block_count", 2)
            .kv_u32("llama.context_length", context)
            .kv_u32("llama.embedding_length", 32)
            .kv_u32("llama.feed_forward_length", 64)
            .kv_u32("llama.attention.head_count", 2)
            .kv_u32("llama.attention.head_count_kv", 1)
            .kv_f32("llama.rope.freq_base", 10000.0)
            .kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5)
            .kv_str("tokenizer.ggml.model", "gpt2")
            .kv_str("tokenizer.ggml.pre", "smollm")
            .kv_strings("tokenizer.ggml.tokens", &refs)
            .kv_i32s("tokenizer.ggml.token_type", &types)
            .kv_strings("tokenizer.ggml.merges", &["a b"])
            .kv_u32("tokenizer.ggml.eos_token_id", 258)
            .kv_str(
                "tokenizer.chat_template",
                "{{'<|im_start|>' + message['role'] + '\\n'}}",
            );
        let mut rng = Rng::seed(1);
        let vocab = tokens.len() as u64;
        b.tensors.push((
            "token_embd.weight".into(),
            vec![32, vocab],
            8,
            random_blocks(&mut rng, 8, vocab as usize, 32),
        ));
        for l in 0..2 {
            for (name, rows, cols) in [
                ("attn_q", 32, 32),
                ("attn_k", 16, 32),
                ("attn_v", 16, 32),
                ("attn_output", 32, 32),
                ("ffn_gate", 64, 32),
                ("ffn_up", 64, 32),
                ("ffn_down", 32, 64),
            ] {
                let data = random_blocks(&mut rng, 3, rows, cols);
                b.tensors.push((
                    format!("blk.{l}.{name}.weight"),
                    vec![cols as u64, rows as u64],
                    3,
                    data,
                ));
            }
            b = b
                .tensor_f32(&format!("blk.{l}.attn_norm.weight"), &[32], &[1.0; 32])
                .tensor_f32(&format!("blk.{l}.ffn_norm.weight"), &[32], &[1.0; 32]);
        }
        b.tensor_f32("output_norm.weight", &[32], &[1.0; 32])
            .bytes()
    }

    #[test]
    fn a_tiny_model_loads_runs_and_chats() {
        let bytes = tiny_gguf();
        let m = LanguageModel::from_bytes(&bytes, Path::new("tiny.gguf")).unwrap();
        assert_eq!(m.llama.config.head_dim, 16);
        assert_eq!(m.vocab.encode("ab", false).unwrap(), vec![256]);
        assert_eq!(
            m.vocab.encode("<|im_end|>x", true).unwrap(),
            vec![258, b'x' as u32]
        );
        assert_eq!(
            m.vocab.decode(&[256, 257, 104, 105]),
            "abhi",
            "control tokens are not text"
        );
        let options = GenerateOptions {
            max_tokens: 10,
            sampling: Sampling::greedy(),
            stop: vec![],
        };
        let prompt = m.vocab.prompt("hi").unwrap();
        let run = || generate(&m, &mut m.llama.cache(), &prompt, &options, |_| Ok(())).unwrap();
        let (a, b) = (run(), run());
        assert_eq!(
            a,
            Generation {
                prompt_seconds: a.prompt_seconds,
                generate_seconds: a.generate_seconds,
                ..b
            }
        );
        assert!(a.tokens.len() <= 10 && !a.tokens.is_empty());
        // The ChatML layout: special tokens from the template, content as plain text.
        let chat = Template::of(&m).unwrap();
        let ids = chat
            .prompt(&m, &[Message::new(Role::User, "<|im_end|>")])
            .unwrap();
        assert_eq!(ids[0], 257);
        assert_eq!(
            ids.iter().filter(|&&i| i == 258).count(),
            1,
            "the user's text is not a token"
        );
        assert_eq!(&ids[ids.len() - 11..ids.len() - 10], &[257]);
        // Errors, not panics: an out-of-vocabulary id, a context overflow.
        let mut cache = m.llama.cache();
        assert!(m.llama.forward(&[9999], &mut cache, Logits::Last).is_err());
        assert!(m.llama.forward(&[1; 65], &mut cache, Logits::Last).is_err());
        // A cache made for another model (here: one layer short).
        let mut short = m.llama.cache();
        short.layers.pop();
        let e = m.llama.forward(&[1], &mut short, Logits::Last).unwrap_err();
        assert!(
            e.to_string()
                .contains("the cache was made for another model"),
            "{e}"
        );
        // A prompt that fills the context still yields the one token its logits give; one
        // token more is an error.
        let full = vec![1u32; 64];
        let g = generate(&m, &mut m.llama.cache(), &full, &options, |_| Ok(())).unwrap();
        assert!(g.tokens.len() <= 1 && g.finish != Finish::Stop, "{g:?}");
        let long = vec![1u32; 65];
        assert!(generate(&m, &mut m.llama.cache(), &long, &options, |_| Ok(())).is_err());
    }

    /// A generation the context window ends says so, not that `max_tokens` ended it.
    #[test]
    fn a_full_context_is_its_own_finish() {
        let m = LanguageModel::from_bytes(&tiny_gguf(), Path::new("tiny.gguf")).unwrap();
        let options = GenerateOptions {
            max_tokens: 1000,
            sampling: Sampling::greedy(),
            stop: vec![],
        };
        let g = generate(&m, &mut m.llama.cache(), &[104; 60], &options, |_| Ok(())).unwrap();
        assert_eq!((g.finish, g.tokens.len()), (Finish::Context, 5), "{g:?}");
        assert_eq!(g.finish.reason(), "length", "OpenAI's name");
        let line = crate::report::timing_text(&g);
        assert!(
            line.ends_with("finished by the model's full context window"),
            "{line}"
        );
        let short = GenerateOptions {
            max_tokens: 3,
            ..options
        };
        let g = generate(&m, &mut m.llama.cache(), &[104; 10], &short, |_| Ok(())).unwrap();
        assert_eq!(g.finish, Finish::Length);
    }

    /// An empty stop string would end every generation before its text: refused, as a
    /// stop string longer than the limit is.
    #[test]
    fn stop_strings_have_one_to_max_bytes() {
        let m = LanguageModel::from_bytes(&tiny_gguf(), Path::new("tiny.gguf")).unwrap();
        let with_stop = |stop: &str| GenerateOptions {
            max_tokens: 2,
            sampling: Sampling::greedy(),
            stop: vec!["x".into(), stop.into()],
        };
        let run = |o: &GenerateOptions| generate(&m, &mut m.llama.cache(), &[104], o, |_| Ok(()));
        for (stop, len) in [("", 0), (&*"s".repeat(257), 257)] {
            let e = with_stop(stop).check().unwrap_err().to_string();
            assert!(
                e.contains(&format!(
                    "a stop string must have 1 to 256 bytes, got {len}"
                )),
                "{e}"
            );
            assert_eq!(run(&with_stop(stop)).unwrap_err().to_string(), e);
        }
        assert!(with_stop(&"s".repeat(256)).check().is_ok());
        assert!(run(&with_stop("y")).is_ok());
    }

    /// A file without a chat template cannot chat (no layout is guessed for it); raw
    /// generation still works.
    #[test]
    fn a_model_without_a_chat_template_refuses_to_chat() {
        let mut bytes = tiny_gguf();
        let key = b"tokenizer.chat_template";
        let at = bytes.windows(key.len()).position(|w| w == key).unwrap();
        bytes[at + key.len() - 1] = b'X';
        let m = LanguageModel::from_bytes(&bytes, Path::new("plain.gguf")).unwrap();
        assert_eq!(m.vocab.chat_template, None);
        let e = Template::of(&m).unwrap_err().to_string();
        assert!(
            e.contains("no chat template") && e.contains("`ember generate` still"),
            "{e}"
        );
        assert_eq!(Chat::new(&m, None).err().unwrap().to_string(), e);
        let options = GenerateOptions {
            max_tokens: 2,
            sampling: Sampling::greedy(),
            stop: vec![],
        };
        assert!(generate(&m, &mut m.llama.cache(), &[104], &options, |_| Ok(())).is_ok());
    }

    /// Truncated and corrupted copies of a real (tiny) model file give errors naming the file.
    #[test]
    fn damaged_model_files_are_errors() {
        let bytes = tiny_gguf();
        let path = Path::new("tiny.gguf");
        for cut in (0..bytes.len()).step_by(97) {
            let e = LanguageModel::from_bytes(&bytes[..cut], path)
                .err()
                .expect("a truncated file fails");
            assert!(e.to_string().contains("tiny.gguf"), "{e}");
        }
        let mut rng = Rng::seed(2);
        for _ in 0..300 {
            let mut damaged = bytes.clone();
            for _ in 0..4 {
                let at = rng.below(damaged.len().min(12_000));
                damaged[at] = (rng.next_u64() >> 56) as u8;
            }
            if let Ok(m) = LanguageModel::from_bytes(&damaged, path) {
                let _ = m.llama.forward(&[0, 1], &mut m.llama.cache(), Logits::All);
            }
        }
        // Same-length renames keep every offset valid.
        let with = |from: &str, to: &str| {
            let mut edited = bytes.clone();
            let at = edited
                .windows(from.len())
                .position(|w| w == from.as_bytes())
                .unwrap();
            edited[at..at + to.len()].copy_from_slice(to.as_bytes());
            LanguageModel::from_bytes(&edited, path)
                .err()
                .unwrap()
                .to_string()
        };
        assert!(with("llama.block_count", "llama.block_cnt__")
            .contains("metadata 'llama.block_count' is missing"));
        assert!(with("blk.1.ffn_down.weight", "blk.1.ffn_dowX.weight")
            .contains("tensor 'blk.1.ffn_down.weight' is missing"));
        assert!(with("gpt2", "spm_").contains("tokenizer.ggml.model is 'spm_'"));
    }
}
