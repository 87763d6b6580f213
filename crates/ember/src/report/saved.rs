//! What a saved model that is not a network holds, in one line: a FAQ index, a sentence
//! encoder, a language model or a recommender (a network's is its Keras summary table). The
//! same line from `ember summary` and the server's `GET /v1/models`; it names no file or
//! folder but a FAQ index's encoder folder by its last name.

use std::path::Path;

use crate::saved::SavedModel;
use crate::text::SentenceEncoder;

/// The line for `saved`, or None for the kinds with a network inside. A FAQ index names
/// `encoder` (the folder it is served with) or else the one it was built with.
pub fn description(saved: &SavedModel, encoder: Option<&Path>) -> Option<String> {
    Some(match saved {
        SavedModel::Faq(index) => format!(
            "FAQ index of {} questions, embedded by {}",
            index.questions.len(),
            folder_name(encoder.unwrap_or(&index.encoder))
        ),
        SavedModel::Recommender(r) => super::recommend::summary_text(r),
        SavedModel::Encoder(e) => encoder_text(e),
        SavedModel::Language(m) => {
            let c = &m.llama.config;
            format!(
                "{} language model: {} layers, hidden {}, {} attention heads ({} key-value), vocabulary {}, context {}",
                c.architecture, c.layers, c.hidden, c.heads, c.kv_heads, c.vocab, c.context
            )
        }
        SavedModel::Network(_) | SavedModel::Table(_) | SavedModel::Text(_) => return None,
    })
}

/// A folder's last name (`all-minilm-l6-v2`), never its path.
fn folder_name(dir: &Path) -> String {
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    name(dir)
        .or_else(|| std::fs::canonicalize(dir).ok().as_deref().and_then(name))
        .unwrap_or_else(|| "its sentence encoder".to_string())
}

fn encoder_text(e: &SentenceEncoder) -> String {
    let c = &e.encoder.config;
    format!(
        "sentence encoder: {} layers, {} heads, {}-dimensional embeddings{}, up to {} tokens",
        c.num_hidden_layers,
        c.num_attention_heads,
        c.hidden_size,
        if e.normalize { " (unit length)" } else { "" },
        e.tokenizer.max_length()
    )
}
