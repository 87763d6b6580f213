//! Text: tokenization and pretrained transformer encoders loaded from a Hugging Face /
//! sentence-transformers folder.
//!
//! - [`tokenizer`]: `tokenizer.json` through the `tokenizers` crate, with sentence-transformers'
//!   truncation and no fixed padding;
//! - [`bert`]: a BERT-family encoder (`config.json`, `model.safetensors`) on Ember's layers;
//! - [`sentence`]: the sentence-embedding pipeline of `modules.json` (transformer, pooling,
//!   normalization) and batched encoding;
//! - [`documents`]: text folders (one subfolder per class), e-mails reduced to what they say;
//! - [`features`]: document vectors for classifiers (cached embeddings, or TF-IDF).

pub mod bert;
pub mod documents;
pub mod features;
pub mod search;
pub mod sentence;
pub mod tokenizer;

pub use bert::{BertConfig, BertEncoder};
pub use documents::{read_text_folder, ClassFolders, Documents};
pub use features::{TextFeatures, TfIdf};
pub use search::FaqIndex;
pub use sentence::{Pooling, SentenceEncoder};
pub use tokenizer::TextTokenizer;
