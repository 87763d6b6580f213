//! Answers from FAQ indexes (`POST /v1/faq/{name}/ask`): the closest entries and, with
//! `"llm": NAME` naming a served language model, the reply it writes from them, or "I don't
//! know" when none is close enough — the job `ember ask --llm` runs. With `"stream": true`
//! the answer comes as server-sent events: the sources, the reply's pieces, the whole answer,
//! `[DONE]`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path as UrlPath, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ember::jobs::faq::{self, FaqAnswer, FaqEvent, FaqOptions, Reply};
use ember::llm::LanguageModel;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::batch::Rows;
use crate::chat::MAX_TOKENS;
use crate::error::{ApiError, ApiResult};
use crate::generation;
use crate::request;
use crate::server::AppState;
use ember::SavedModel;

#[derive(Deserialize)]
struct AskRequest {
    query: String,
    #[serde(default)]
    top_k: Option<Value>,
    /// The name of a served language model that writes a reply from the entries found.
    #[serde(default)]
    llm: Option<Value>,
    #[serde(default)]
    min_score: Option<f32>,
    #[serde(default)]
    max_tokens: Option<usize>,
    #[serde(default)]
    temperature: Option<f32>,
    #[serde(default)]
    seed: Option<u64>,
    /// Server-sent events: the sources, the reply's pieces as generated, then the whole
    /// answer.
    #[serde(default)]
    stream: bool,
}

pub async fn ask(
    State(state): State<Arc<AppState>>,
    UrlPath(name): UrlPath<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let served = state.registry.get(&name)?;
    let SavedModel::Faq(index) = &served.model else {
        return Err(ApiError::invalid(format!(
            "model '{name}' is a {} model, not a FAQ index",
            served.kind_name()
        )));
    };
    let body = request::body(body)?;
    let request: AskRequest = request::json(&body)?;
    if request.query.trim().is_empty() {
        return Err(ApiError::invalid("query: the question is empty"));
    }
    let defaults = FaqOptions::default();
    let options = FaqOptions {
        top_k: request::top_k(request.top_k.as_ref(), defaults.top_k)?,
        min_score: request.min_score.unwrap_or(defaults.min_score),
        max_tokens: request.max_tokens.unwrap_or(defaults.max_tokens),
        temperature: request.temperature.unwrap_or(defaults.temperature),
        seed: request.seed.unwrap_or(defaults.seed),
    };
    let llm = language_model(&state, request.llm.as_ref())?;
    if llm.is_some() {
        check(&options)?;
    }
    let query = served
        .batcher
        .submit(Rows::Texts(vec![request.query.clone()]))
        .await?;
    let Some((llm_name, model)) = llm else {
        let answer = faq::ask(index, &request.query, query.data(), None, &options, |_| {
            Ok(())
        })
        .map_err(ApiError::from_ember)?;
        let whole = answer_json(&answer, "", options.min_score)?;
        return Ok(match request.stream {
            true => generation::events(finished(whole), None),
            false => Json(whole).into_response(),
        });
    };
    let (index, min_score) = (index.clone(), options.min_score);
    if !request.stream {
        let answer = generation::run(move |cancel| {
            faq::ask(
                &index,
                &request.query,
                query.data(),
                Some(&model),
                &options,
                |_| cancel.check(),
            )
        })
        .await?
        .map_err(ApiError::from_ember)?;
        return Ok(Json(answer_json(&answer, &llm_name, min_score)?).into_response());
    }
    let (sender, receiver) = mpsc::channel::<String>(64);
    let (_, tie) = generation::start(move |cancel| {
        let result = faq::ask(
            &index,
            &request.query,
            query.data(),
            Some(&model),
            &options,
            |event| {
                cancel.check()?;
                let piece = match event {
                    FaqEvent::Sources(entries) => json!({ "answers": entries }),
                    FaqEvent::Text(text) => json!({ "delta": text }),
                };
                // A client that hung up ends the generation.
                sender
                    .blocking_send(piece.to_string())
                    .map_err(|_| ember::Error::invalid("the client went away"))
            },
        );
        let last = result
            .map_err(ApiError::from_ember)
            .and_then(|answer| answer_json(&answer, &llm_name, min_score))
            .unwrap_or_else(|e| json!({"error": {"code": e.code, "message": e.message}}));
        let _ = sender.blocking_send(last.to_string());
        let _ = sender.blocking_send("[DONE]".to_string());
    })
    .await?;
    Ok(generation::events(receiver, Some(tie)))
}

/// The answer as the route returns it whole (and as a stream's last event): the entries
/// alone; with a language model, its reply or "I don't know" beside its sources.
fn answer_json(answer: &FaqAnswer, llm_name: &str, min_score: f32) -> ApiResult<Value> {
    Ok(match &answer.reply {
        None => json!({ "answers": answer.entries }),
        Some(Reply::Generated(g)) => json!({
            "answers": answer.entries,
            "known": true,
            "reply": g.text.trim(),
            "generated_by": llm_name,
            "finish_reason": g.finish.reason(),
            "usage": {
                "prompt_tokens": g.prompt_tokens,
                "completion_tokens": g.tokens.len(),
                "total_tokens": g.prompt_tokens + g.tokens.len(),
            },
        }),
        Some(Reply::Unknown { best_score }) => json!({
            "answers": answer.entries,
            "known": false,
            "reply": faq::unknown_text(*best_score, min_score, "min_score"),
            "best_score": best_score,
        }),
    })
}

/// A stream of one event, the whole answer, then `[DONE]`.
fn finished(whole: Value) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel(2);
    let _ = sender.try_send(whole.to_string());
    let _ = sender.try_send("[DONE]".to_string());
    receiver
}

/// The served language model `llm` names, if any.
fn language_model(
    state: &AppState,
    llm: Option<&Value>,
) -> ApiResult<Option<(String, Arc<LanguageModel>)>> {
    let name = match llm {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(name)) => name,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "llm: the name of a served language model, not {}",
                request::type_name(other)
            )))
        }
    };
    let served = state.registry.get(name).map_err(|e| ApiError {
        message: format!("llm: {}", e.message),
        ..e
    })?;
    match &served.model {
        SavedModel::Language(model) => Ok(Some((served.name.clone(), model.clone()))),
        _ => Err(ApiError::invalid(format!(
            "llm: model '{name}' is a {} model, not a language model",
            served.kind_name()
        ))),
    }
}

/// The reply's settings, named as the request names them.
fn check(options: &FaqOptions) -> ApiResult<()> {
    if !(-1.0..=1.0).contains(&options.min_score) {
        return Err(ApiError::invalid(format!(
            "min_score: a cosine similarity in [-1, 1], not {}",
            options.min_score
        )));
    }
    if options.max_tokens == 0 || options.max_tokens > MAX_TOKENS {
        return Err(ApiError::invalid(format!(
            "max_tokens: between 1 and {MAX_TOKENS}, not {}",
            options.max_tokens
        )));
    }
    options.generation().map_err(ApiError::from_ember)?;
    Ok(())
}
