//! OpenAI-compatible embeddings (`POST /v1/embeddings`, so that the `openai` client with a
//! `base_url` works) for sentence encoders.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::batch::Rows;
use crate::error::{ApiError, ApiResult};
use crate::request;
use crate::server::AppState;
use ember::SavedModel;

#[derive(Deserialize)]
struct EmbeddingsRequest {
    model: String,
    input: Value,
    /// "float" (the default) or "base64" (little-endian f32s, as the `openai` client asks).
    #[serde(default)]
    encoding_format: Option<String>,
    /// Only the encoder's own width can be given.
    #[serde(default)]
    dimensions: Option<usize>,
}

pub async fn embeddings(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let body = request::body(body)?;
    let request: EmbeddingsRequest = request::json(&body)?;
    let served = state.registry.get(&request.model)?;
    let SavedModel::Encoder(encoder) = &served.model else {
        return Err(ApiError::invalid(format!(
            "model '{}' is a {} model, not a sentence encoder",
            request.model,
            served.kind_name()
        )));
    };
    let texts: Vec<String> = match &request.input {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(ApiError::invalid(format!(
                    "input[{i}]: expected a string, found {}",
                    request::type_name(other)
                ))),
            })
            .collect::<ApiResult<_>>()?,
        other => {
            return Err(ApiError::invalid(format!(
                "input: expected a string or a non-empty array of strings, found {}",
                request::type_name(other)
            )))
        }
    };
    state.check_instances(texts.len())?;
    if let Some(d) = request.dimensions.filter(|&d| d != encoder.dim()) {
        return Err(ApiError::invalid(format!(
            "dimensions: this encoder gives {} dimensions, not {d}",
            encoder.dim()
        )));
    }
    let base64 = match request.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "encoding_format: 'float' or 'base64', not '{other}'"
            )))
        }
    };
    let mut tokens = 0;
    for text in &texts {
        tokens += encoder
            .tokenizer
            .encode(text)
            .map_err(ApiError::from_ember)?
            .len();
    }
    let out = served.batcher.submit(Rows::Texts(texts)).await?;
    let data: Vec<Value> = out
        .data()
        .chunks(out.row_len().max(1))
        .enumerate()
        .map(|(index, row)| {
            let embedding = match base64 {
                true => {
                    let bytes: Vec<u8> = row.iter().flat_map(|v| v.to_le_bytes()).collect();
                    json!(base64::engine::general_purpose::STANDARD.encode(bytes))
                }
                false => json!(row),
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "model": served.name,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })))
}
