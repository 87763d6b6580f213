//! Tokenization from a Hugging Face `tokenizer.json`.

use std::path::Path;

use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

use crate::error::{Error, Result};

/// A `tokenizer.json` tokenizer that truncates at `max_length` tokens (special tokens
/// included) and never pads: the settings sentence-transformers applies, whatever the file
/// itself says (all-MiniLM-L6-v2's file asks for padding and truncation at 128).
pub struct TextTokenizer {
    inner: Tokenizer,
    max_length: usize,
}

impl TextTokenizer {
    pub fn from_file(path: &Path, max_length: usize) -> Result<Self> {
        let json = crate::read::text(path, crate::read::Limit::TOKENIZER)?;
        let mut inner: Tokenizer = json
            .parse()
            .map_err(|e| Error::data(path, format!("cannot read the tokenizer: {e}")))?;
        inner.with_padding(None::<PaddingParams>);
        inner
            .with_truncation(Some(TruncationParams {
                max_length,
                ..TruncationParams::default()
            }))
            .map_err(|e| Error::data(path, format!("cannot set truncation: {e}")))?;
        Ok(TextTokenizer { inner, max_length })
    }

    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// The token ids of `text`, with the special tokens the file's template adds, truncated
    /// at `max_length`. A long text is not tokenized whole to keep its first tokens (a 9 MB
    /// line would take a gigabyte): growing prefixes cut at whitespace are, until one gives
    /// `max_length` tokens. The result is the same, since BERT-style tokenizers split words at
    /// whitespace and tokenize each word alone ([`TextTokenizer::encode_whole`] is the
    /// reference).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        // Tokens rarely run past 16 bytes; start there and grow fourfold.
        let mut limit = self.max_length.saturating_mul(16).max(4096);
        while limit < text.len() {
            let mut end = limit;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            if let Some(cut) = text[..end].rfind(char::is_whitespace) {
                let ids = self.encode_whole(&text[..cut])?;
                if ids.len() >= self.max_length {
                    return Ok(ids);
                }
            }
            limit = limit.saturating_mul(4);
        }
        self.encode_whole(text)
    }

    /// The token ids of the whole of `text`, tokenized at once, then truncated.
    pub fn encode_whole(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode(text, true)
            .map_err(|e| Error::invalid(format!("cannot tokenize: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The token strings of `text` (for inspection).
    pub fn tokens(&self, text: &str) -> Result<Vec<String>> {
        let encoding = self
            .inner
            .encode(text, true)
            .map_err(|e| Error::invalid(format!("cannot tokenize: {e}")))?;
        Ok(encoding.get_tokens().to_vec())
    }

    /// The id of the padding token (`[PAD]`), 0 when the file names none.
    pub fn pad_id(&self) -> u32 {
        self.inner.token_to_id("[PAD]").unwrap_or(0)
    }
}
