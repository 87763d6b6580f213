//! Recommendations (`POST /v1/recommend/{name}`): a user's top-k items with `{"user": ID}`,
//! the reasons beside each with `"explain": true`, or the items closest to one with `{"item":
//! ID}` — the lists `ember recommend top` and `ember recommend similar` print.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path as UrlPath, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ember::recommend::Recommendation;
use ember::SavedModel;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::request;
use crate::server::AppState;

/// How many items a list holds unless `k` says otherwise (`ember recommend top`'s default).
const DEFAULT_K: usize = 10;
/// The most items one list may hold (as `ember recommend top -k` takes).
const MAX_K: u64 = 10_000;

#[derive(Deserialize)]
struct RecommendRequest {
    #[serde(default)]
    user: Option<Value>,
    #[serde(default)]
    item: Option<Value>,
    #[serde(default)]
    k: Option<Value>,
    /// For a user: each item's reasons, the user's liked items closest to it.
    #[serde(default)]
    explain: bool,
}

pub async fn recommend(
    State(state): State<Arc<AppState>>,
    UrlPath(name): UrlPath<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let served = state.registry.get(&name)?;
    let SavedModel::Recommender(model) = &served.model else {
        return Err(ApiError::invalid(format!(
            "model '{name}' is a {} model, not a recommender",
            served.kind_name()
        )));
    };
    let body = request::body(body)?;
    let request: RecommendRequest = request::json(&body)?;
    let k = count(request.k.as_ref())?;
    let (user, item) = (
        id(request.user.as_ref(), "user")?,
        id(request.item.as_ref(), "item")?,
    );
    let model = model.clone();
    // Scoring every item is a pass over the catalogue: off the async threads.
    tokio::task::spawn_blocking(move || match (user, item) {
        (Some(user), None) => {
            let list = model
                .top(&user, k, request.explain)
                .map_err(ApiError::from_ember)?;
            Ok(Json(list).into_response())
        }
        (None, Some(item)) if request.explain => Err(ApiError::invalid(format!(
            "explain: reasons are given for a user's list, not for the items closest to '{item}'"
        ))),
        (None, Some(item)) => {
            let items = model.similar(&item, k).map_err(ApiError::from_ember)?;
            Ok(Json(Similar { item, items }).into_response())
        }
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "give either \"user\" (their top-k items) or \"item\" (the items closest to it), not both",
        )),
        (None, None) => Err(ApiError::invalid(
            "give \"user\" (their top-k items) or \"item\" (the items closest to it)",
        )),
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
}

/// The items closest to one. Scores are written as f32s, as the command line writes them.
#[derive(Serialize)]
struct Similar {
    item: String,
    items: Vec<Recommendation>,
}

/// A user or item id: a string, or a whole number written as one (`196` for `"196"`).
fn id(value: Option<&Value>, field: &str) -> ApiResult<Option<String>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => Ok(Some(n.to_string())),
        Some(Value::Number(n)) => Err(ApiError::invalid(format!(
            "{field}: an id, as a string or a whole number, not {n}"
        ))),
        Some(other) => Err(ApiError::invalid(format!(
            "{field}: an id, as a string or a whole number, not {}",
            request::type_name(other)
        ))),
    }
}

/// `k` from a request, 1 to [`MAX_K`] (default [`DEFAULT_K`]).
fn count(value: Option<&Value>) -> ApiResult<usize> {
    match value {
        None | Some(Value::Null) => Ok(DEFAULT_K),
        Some(v) => match v.as_u64() {
            Some(k @ 1..=MAX_K) => Ok(k as usize),
            _ => Err(ApiError::invalid(format!(
                "k must be a whole number from 1 to {MAX_K}, not {v}"
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_are_strings_or_whole_numbers_and_k_is_bounded() {
        assert_eq!(
            id(Some(&json!(196)), "user").unwrap().as_deref(),
            Some("196")
        );
        assert_eq!(
            id(Some(&json!("a b")), "user").unwrap().as_deref(),
            Some("a b")
        );
        assert_eq!(id(None, "user").unwrap(), None);
        let e = id(Some(&json!(1.5)), "item").unwrap_err();
        assert_eq!(
            e.message,
            "item: an id, as a string or a whole number, not 1.5"
        );
        let e = id(Some(&json!([1])), "user").unwrap_err();
        assert!(e.message.ends_with("not an array"), "{}", e.message);
        assert_eq!(count(None).unwrap(), 10);
        assert_eq!(count(Some(&json!(3))).unwrap(), 3);
        assert!(count(Some(&json!(0))).is_err());
        assert!(count(Some(&json!(10_001))).is_err());
    }
}
