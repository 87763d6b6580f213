//! A GGUF model's tokenizer, built from its metadata: byte-level BPE (`tokenizer.ggml.model =
//! gpt2`) with the file's tokens and merges, the pre-tokenizer its `tokenizer.ggml.pre` names,
//! and its control tokens (`<|im_start|>` …) as special tokens. The encoding is the
//! `tokenizers` crate's; decoding maps each token back to its bytes.

use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

use crate::error::{Error, Result};
use crate::gguf::{Array, Gguf};

/// llama.cpp's token types.
const CONTROL: i64 = 3;
const USER_DEFINED: i64 = 4;

/// The pre-tokenizer regular expressions of llama.cpp's `llama-vocab.cpp`, by the names GGUF
/// files give them.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// A tokenizer and detokenizer for one model.
pub struct Vocab {
    /// Parses special tokens written in the text.
    special: Tokenizer,
    /// Reads them as plain text.
    plain: Tokenizer,
    /// Each token's bytes (a control token's text).
    pieces: Vec<Vec<u8>>,
    control: Vec<bool>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    /// Whether prompts start with `bos`.
    pub add_bos: bool,
    /// The tokens that end a generation.
    end_of_generation: Vec<u32>,
    /// The file's Jinja chat template, if it has one.
    pub chat_template: Option<String>,
}

impl Vocab {
    /// The tokenizer of `gguf`.
    pub fn from_gguf(g: &Gguf) -> Result<Vocab> {
        let bad = |m: String| Error::data(&g.path, m);
        let model = g.str("tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(bad(format!(
                "tokenizer.ggml.model is '{model}'; Ember reads byte-level BPE tokenizers ('gpt2': SmolLM2, Qwen2.5, Llama 3)"
            )));
        }
        let tokens = match g.array("tokenizer.ggml.tokens")? {
            Array::Strings(t) if !t.is_empty() => t,
            _ => return Err(bad("tokenizer.ggml.tokens is not a list of strings".into())),
        };
        let types: Vec<i64> = match g.get("tokenizer.ggml.token_type") {
            None => vec![1; tokens.len()],
            Some(_) => match g.array("tokenizer.ggml.token_type")? {
                Array::Ints(t) if t.len() == tokens.len() => t.clone(),
                _ => {
                    return Err(bad(format!(
                        "tokenizer.ggml.token_type is not a list of {} integers",
                        tokens.len()
                    )))
                }
            },
        };
        let merges = match g.array("tokenizer.ggml.merges")? {
            Array::Strings(m) => m,
            _ => return Err(bad("tokenizer.ggml.merges is not a list of strings".into())),
        };
        let merges = merges
            .iter()
            .enumerate()
            .map(|(i, m)| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| {
                        bad(format!(
                            "tokenizer.ggml.merges[{i}] ('{m}') is not two tokens"
                        ))
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut vocab = tokenizers::models::bpe::Vocab::default();
        for (i, t) in tokens.iter().enumerate() {
            if vocab.insert(t.clone(), i as u32).is_some() {
                return Err(bad(format!(
                    "tokenizer.ggml.tokens[{i}] ('{t}') appears twice"
                )));
            }
        }
        let pre = g
            .get("tokenizer.ggml.pre")
            .and_then(|v| v.as_str())
            .unwrap_or("default");
        let (pre_tokenizer, ignore_merges): (PreTokenizerWrapper, bool) = match pre {
            "default" | "gpt2" | "gpt-2" | "mpt" | "olmo" | "jais" => (ByteLevel::new(false, true, true).into(), false),
            "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva" => (
                Sequence::new(vec![Digits::new(true).into(), ByteLevel::new(false, true, true).into()]).into(),
                false,
            ),
            "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "pixtral" => (split_then_bytes(LLAMA3_SPLIT)?, true),
            "qwen2" | "deepseek-r1-qwen" => (split_then_bytes(QWEN2_SPLIT)?, false),
            other => {
                return Err(bad(format!(
                    "tokenizer.ggml.pre '{other}' is not supported (Ember knows gpt2, smollm, llama3 and qwen2)"
                )))
            }
        };
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .ignore_merges(ignore_merges)
            .build()
            .map_err(|e| bad(format!("cannot build the tokenizer: {e}")))?;
        let mut special = Tokenizer::new(bpe);
        special.with_pre_tokenizer(Some(pre_tokenizer));
        let added: Vec<AddedToken> = tokens
            .iter()
            .zip(&types)
            .filter(|(_, &t)| t == CONTROL || t == USER_DEFINED)
            .map(|(s, _)| AddedToken::from(s.clone(), true))
            .collect();
        special.add_special_tokens(&added);
        let mut plain = special.clone();
        plain.set_encode_special_tokens(true);

        let control: Vec<bool> = types.iter().map(|&t| t == CONTROL).collect();
        let pieces = tokens
            .iter()
            .zip(&types)
            .map(|(t, &kind)| {
                if kind == CONTROL || kind == USER_DEFINED {
                    t.as_bytes().to_vec()
                } else {
                    byte_level_bytes(t)
                }
            })
            .collect();
        let id = |key: &str| -> Result<Option<u32>> {
            match g.get(key) {
                None => Ok(None),
                Some(_) => {
                    let v = g.u64(key)?;
                    if v as usize >= tokens.len() {
                        return Err(bad(format!(
                            "{key} is {v}, past the vocabulary of {}",
                            tokens.len()
                        )));
                    }
                    Ok(Some(v as u32))
                }
            }
        };
        let (bos, eos, eot) = (
            id("tokenizer.ggml.bos_token_id")?,
            id("tokenizer.ggml.eos_token_id")?,
            id("tokenizer.ggml.eot_token_id")?,
        );
        // As llama.cpp does, the control tokens that close a turn end generation too.
        let mut end_of_generation: Vec<u32> = eos.into_iter().chain(eot).collect();
        for name in [
            "<|im_end|>",
            "<|endoftext|>",
            "<|eot_id|>",
            "<|end_of_text|>",
            "<|end|>",
            "<end_of_turn>",
        ] {
            if let Some(&i) = special.get_vocab(true).get(name) {
                if control[i as usize] && !end_of_generation.contains(&i) {
                    end_of_generation.push(i);
                }
            }
        }
        Ok(Vocab {
            special,
            plain,
            pieces,
            control,
            bos,
            eos,
            add_bos: g
                .get("tokenizer.ggml.add_bos_token")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
            end_of_generation,
            chat_template: g
                .get("tokenizer.chat_template")
                .and_then(|v| v.as_str())
                .map(str::to_string),
        })
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.pieces.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// The ids of `text`; with `special`, control tokens written in it (`<|im_start|>`) are
    /// read as those tokens, as llama.cpp's `parse_special` does, otherwise as plain text.
    pub fn encode(&self, text: &str, special: bool) -> Result<Vec<u32>> {
        let tokenizer = if special { &self.special } else { &self.plain };
        let encoding = tokenizer
            .encode_fast(text, false)
            .map_err(|e| Error::invalid(format!("cannot tokenize: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// A raw prompt's ids: the beginning-of-text token if the model wants one, then `text`
    /// with its special tokens parsed.
    pub fn prompt(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids: Vec<u32> = self.bos.filter(|_| self.add_bos).into_iter().collect();
        ids.extend(self.encode(text, true)?);
        Ok(ids)
    }

    /// The id of the token spelled `token` (a special token's name).
    pub fn id(&self, token: &str) -> Option<u32> {
        self.special.token_to_id(token)
    }

    /// The bytes token `id` stands for; a control token gives its name only with `special`.
    pub fn piece(&self, id: u32, special: bool) -> &[u8] {
        match self.pieces.get(id as usize) {
            Some(p) if special || !self.control[id as usize] => p,
            _ => &[],
        }
    }

    /// The text of `ids` (control tokens left out), invalid UTF-8 replaced.
    pub fn decode(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids
            .iter()
            .flat_map(|&i| self.piece(i, false).iter().copied())
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Whether token `id` ends a generation (end of text, end of turn).
    pub fn is_end(&self, id: u32) -> bool {
        self.end_of_generation.contains(&id)
    }
}

fn split_then_bytes(pattern: &str) -> Result<PreTokenizerWrapper> {
    let split = Split::new(
        SplitPattern::Regex(pattern.into()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .map_err(|e| Error::invalid(format!("the pre-tokenizer's pattern: {e}")))?;
    Ok(Sequence::new(vec![
        split.into(),
        ByteLevel::new(false, true, false).into(),
    ])
    .into())
}

/// GPT-2's byte-level alphabet read back: each character of a token stands for one byte.
fn byte_level_bytes(token: &str) -> Vec<u8> {
    token
        .chars()
        .map(|c| {
            let c = c as u32;
            match c {
                33..=126 | 161..=172 | 174..=255 => c as u8,
                256..=323 => {
                    // The bytes GPT-2 moved out of the printable range, in order.
                    let shifted =
                        (0u8..=255).filter(|b| !matches!(b, 33..=126 | 161..=172 | 174..=255));
                    shifted.clone().nth((c - 256) as usize).unwrap_or(b'?')
                }
                _ => b'?',
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_alphabet_reads_back() {
        // 'Ġ' (U+0120) is the space, 'Ċ' (U+010A) the newline, 'ĉ' the tab.
        assert_eq!(byte_level_bytes("Ġhello"), b" hello");
        assert_eq!(byte_level_bytes("ĊĉĠ"), b"\n\t ");
        assert_eq!(byte_level_bytes("Ā"), [0u8]);
        // UTF-8 bytes of 'é' (C3 A9) are both in the printable range.
        assert_eq!(byte_level_bytes("Ã©"), "é".as_bytes());
        assert_eq!(byte_level_bytes("ł"), [0xA0u8], "the no-break space");
        assert_eq!(
            byte_level_bytes("Ń"),
            [0xADu8],
            "the soft hyphen, the last one moved"
        );
    }
}
