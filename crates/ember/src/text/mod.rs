//! Text: tokenization and pretrained transformer encoders loaded from a Hugging Face /
//! sentence-transformers folder.
//!
//! - [`tokenizer`]: `tokenizer.json` through the `tokenizers` crate, with sentence-transformers'
//!   truncation and no fixed padding;
//! - [`bert`]: a BERT-family encoder (`config.json`, `model.safetensors`) on Ember's layers;
//! - [`sentence`]: the sentence-embedding pipeline of `modules.json` (transformer, pooling,
//!   normalization) and batched encoding;
//! - [`documents`]: text folders (one subfolder per class) or a CSV column, e-mails reduced to
//!   what they say;
//! - [`features`]: cached pretrained document vectors;
//! - [`classifier`]: text classifiers on those features (or TF-IDF), trained, saved and used;
//! - [`search`]: FAQ search over question embeddings.

pub mod bert;
pub mod classifier;
pub mod documents;
pub mod features;
pub mod search;
pub mod sentence;
pub mod tokenizer;

pub use crate::data::tfidf::TfIdf;
pub use crate::spec::TextFeatures;
pub use bert::{BertConfig, BertEncoder};
pub use classifier::{TextClassifier, TextTraining, TrainedText};
pub use documents::{read_csv_documents, read_text_folder, ClassFolders, Documents};
pub use search::FaqIndex;
pub use sentence::{Pooling, SentenceEncoder};
pub use tokenizer::TextTokenizer;
