//! OpenAI-compatible chat completions (`POST /v1/chat/completions`) for language models: the
//! messages laid out in the model's chat template, the reply generated on a blocking thread,
//! returned whole or, with `"stream": true`, as server-sent events of `chat.completion.chunk`
//! objects ending with `data: [DONE]`, as the `openai` client reads them. A request that goes
//! away (hung up, timed out) ends its generation.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ember::llm::{generate, GenerateOptions, LanguageModel, Message, Role, Sampling, Template};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::error::{ApiError, ApiResult};
use crate::generation;
use crate::request;
use crate::server::AppState;
use ember::SavedModel;

/// The most tokens one reply may ask for.
pub(crate) const MAX_TOKENS: usize = 4096;

#[derive(Deserialize)]
struct ChatMessage {
    role: String,
    content: String,
}

#[derive(Deserialize)]
struct ChatRequest {
    model: String,
    messages: Vec<ChatMessage>,
    #[serde(default)]
    max_tokens: Option<usize>,
    #[serde(default)]
    max_completion_tokens: Option<usize>,
    #[serde(default)]
    temperature: Option<f32>,
    #[serde(default)]
    top_p: Option<f32>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    stop: Option<Value>,
    #[serde(default)]
    stream: bool,
    /// Choices to generate: only one is.
    #[serde(default)]
    n: Option<Value>,
}

/// What the request asks for, checked.
struct Plan {
    model: Arc<LanguageModel>,
    name: String,
    prompt: Vec<u32>,
    options: GenerateOptions,
}

fn plan(state: &AppState, body: &[u8]) -> ApiResult<(Plan, bool)> {
    let request: ChatRequest = request::json(body)?;
    let served = state.registry.get(&request.model)?;
    let SavedModel::Language(model) = &served.model else {
        return Err(ApiError::invalid(format!(
            "model '{}' is a {} model, not a language model",
            request.model,
            served.kind_name()
        )));
    };
    match &request.n {
        None | Some(Value::Null) => {}
        Some(n) if n.as_u64() == Some(1) => {}
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "n: only one choice per request is generated (n = 1), not {n}"
            )))
        }
    }
    if request.messages.is_empty() {
        return Err(ApiError::invalid("messages: the conversation is empty"));
    }
    let messages = request
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            Role::parse(&m.role)
                .map(|role| Message::new(role, m.content.clone()))
                .map_err(|e| ApiError::invalid(format!("messages[{i}].role: {}", e.detail())))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let stop = match &request.stop {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) if items.len() <= 4 => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ApiError::invalid("stop: expected strings"))
            })
            .collect::<ApiResult<_>>()?,
        Some(_) => return Err(ApiError::invalid("stop: a string or up to 4 strings")),
    };
    let max_tokens = request
        .max_completion_tokens
        .or(request.max_tokens)
        .unwrap_or(512);
    if max_tokens == 0 || max_tokens > MAX_TOKENS {
        return Err(ApiError::invalid(format!(
            "max_tokens: between 1 and {MAX_TOKENS}, not {max_tokens}"
        )));
    }
    // OpenAI's defaults: temperature 1, top_p 1, no other filter.
    let sampling = Sampling {
        temperature: request.temperature.unwrap_or(1.0),
        top_p: request.top_p.unwrap_or(1.0),
        top_k: 0,
        min_p: 0.0,
        seed: request.seed.unwrap_or(0),
        ..Sampling::default()
    };
    let options = GenerateOptions {
        max_tokens,
        sampling,
        stop,
    };
    options.check().map_err(ApiError::from_ember)?;
    let template = Template::of(model).map_err(ApiError::from_ember)?;
    let prompt = template
        .prompt(model, &messages)
        .map_err(ApiError::from_ember)?;
    let context = model.llama.config.context;
    if prompt.len() > context {
        return Err(ApiError::invalid(format!(
            "messages: {} tokens leave no room in the model's context of {context}",
            prompt.len()
        )));
    }
    Ok((
        Plan {
            model: model.clone(),
            name: served.name.clone(),
            prompt,
            options,
        },
        request.stream,
    ))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn completion_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "chatcmpl-ember-{}-{}",
        now(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

pub async fn completions(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = request::body(body)?;
    // Tokenizing up to the body limit of text is blocking work.
    let (plan, stream) = tokio::task::spawn_blocking(move || plan(&state, &body))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    let (id, created) = (completion_id(), now());
    if !stream {
        let Plan {
            model,
            name,
            prompt,
            options,
        } = plan;
        let g = generation::run(move |cancel| {
            generate(&model, &mut model.llama.cache(), &prompt, &options, |_| {
                cancel.check()
            })
        })
        .await?
        .map_err(ApiError::from_ember)?;
        let completion = g.tokens.len();
        return Ok(Json(json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": name,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": g.text},
                "finish_reason": g.finish.reason(),
            }],
            "usage": {
                "prompt_tokens": g.prompt_tokens,
                "completion_tokens": completion,
                "total_tokens": g.prompt_tokens + completion,
            },
        }))
        .into_response());
    }
    let (sender, receiver) = mpsc::channel::<String>(64);
    let chunk = {
        let (id, name) = (id.clone(), plan.name.clone());
        move |delta: Value, finish: Value| {
            json!({
                "id": id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": name,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            })
            .to_string()
        }
    };
    let (_, tie) = generation::start(move |cancel| {
        let Plan {
            model,
            prompt,
            options,
            ..
        } = plan;
        let _ = sender.blocking_send(chunk(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
        ));
        let result = generate(
            &model,
            &mut model.llama.cache(),
            &prompt,
            &options,
            |text| {
                cancel.check()?;
                // A client that hung up ends the generation.
                sender
                    .blocking_send(chunk(json!({"content": text}), Value::Null))
                    .map_err(|_| ember::Error::invalid("the client went away"))
            },
        );
        let last = match result {
            Ok(g) => chunk(json!({}), json!(g.finish.reason())),
            Err(e) => json!({"error": {"code": "generation_failed", "message": e.to_string()}})
                .to_string(),
        };
        let _ = sender.blocking_send(last);
        let _ = sender.blocking_send("[DONE]".to_string());
    })
    .await?;
    Ok(generation::events(receiver, Some(tie)))
}
