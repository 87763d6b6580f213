//! Sentence embeddings of texts from a pretrained encoder folder (all-MiniLM-L6-v2 and
//! other BERT-family encoders): a line of numbers per text, or JSON.

use std::path::Path;

use crate::error::{Error, Result};
use crate::read::{self, Limit};
use crate::text::SentenceEncoder;

/// The texts given, then the non-empty lines of `file` when given (`-`: standard input).
pub fn texts(given: &[String], file: Option<&Path>) -> Result<Vec<String>> {
    let mut texts = given.to_vec();
    if let Some(file) = file {
        let bytes = match file.as_os_str() == "-" {
            true => read::stdin(Limit::TEXT_LINES)?,
            false => read::file(file, Limit::TEXT_LINES)?,
        };
        texts.extend(
            String::from_utf8_lossy(&bytes)
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string),
        );
    }
    if texts.is_empty() {
        return Err(Error::invalid(
            "no texts to embed: give TEXT arguments or --file FILE",
        ));
    }
    Ok(texts)
}

/// The embeddings of `texts`, batched by `batch_size`: a line of space-separated numbers
/// per text, or `[{"text", "embedding"}]` with `json`.
pub fn embed(encoder: &Path, texts: &[String], batch_size: usize, json: bool) -> Result<String> {
    let encoder = SentenceEncoder::load(encoder)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let embeddings = encoder.encode(&refs, batch_size)?;
    let rows = embeddings.data().chunks(encoder.dim());
    if json {
        let records: Vec<_> = texts
            .iter()
            .zip(rows)
            .map(|(t, e)| serde_json::json!({ "text": t, "embedding": e }))
            .collect();
        let text = serde_json::to_string(&records)
            .map_err(|e| Error::invalid(format!("cannot write JSON: {e}")))?;
        return Ok(text + "\n");
    }
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row.iter().map(|v| format!("{v}")).collect();
        out += &line.join(" ");
        out.push('\n');
    }
    Ok(out)
}
