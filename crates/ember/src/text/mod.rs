//! Text: tokenization and pretrained transformer encoders loaded from a Hugging Face /
//! sentence-transformers folder.
//!
//! - [`tokenizer`]: `tokenizer.json` through the `tokenizers` crate, with sentence-transformers'
//!   truncation and no fixed padding;
//! - [`bert`]: a BERT-family encoder (`config.json`, `model.safetensors`) on Ember's layers;
//! - [`sentence`]: the sentence-embedding pipeline of `modules.json` (transformer, pooling,
//!   normalization) and batched encoding.

pub mod bert;
pub mod sentence;
pub mod tokenizer;

pub use bert::{BertConfig, BertEncoder};
pub use sentence::{Pooling, SentenceEncoder};
pub use tokenizer::TextTokenizer;
