//! Explanations (`POST /v1/models/{name}:explain`, KServe v1's verb): the instances a
//! `:predict` takes, for a network or a table model, and a `method`, answered with the JSON
//! `ember explain --json` prints — the same job, on the request's instances instead of files.

use std::path::PathBuf;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::Json;
use ember::explain::Method;
use ember::jobs::explain::{explain_instances, ExplainOptions, Instances};
use ember::SavedModel;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::server::AppState;
use crate::v1::{network_rows, table_instances};
use crate::{generation, request};

/// Instances one request may ask to explain: each costs many passes through the model.
const MAX_EXPLAINED: usize = 64;

#[derive(Deserialize)]
struct ExplainRequest<'a> {
    #[serde(borrow)]
    instances: Vec<&'a RawValue>,
    /// `ember explain --method`'s names (default integrated-gradients).
    #[serde(default)]
    method: Option<String>,
    /// The class to explain, by name or number (default: each instance's predicted class).
    #[serde(default)]
    target: Option<Value>,
    #[serde(default)]
    steps: Option<usize>,
    #[serde(default)]
    baseline: Option<String>,
    #[serde(default)]
    blur_sigma: Option<f32>,
    #[serde(default)]
    samples: Option<usize>,
    #[serde(default)]
    noise: Option<f32>,
    #[serde(default)]
    seed: Option<u32>,
    #[serde(default)]
    layer: Option<String>,
}

/// `POST /v1/models/{name}:explain` (the `:predict` handler passes it on).
pub async fn explain(
    state: &AppState,
    name: &str,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let served = state.registry.get(name)?;
    let body = request::body(body)?;
    let request: ExplainRequest = request::json(&body)?;
    let raw = &request.instances;
    state.check_instances(raw.len())?;
    if raw.len() > MAX_EXPLAINED {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_instances",
            format!(
                "{} instances to explain in one request; at most {MAX_EXPLAINED}",
                raw.len()
            ),
        ));
    }
    let method = request.method.as_deref().unwrap_or("integrated-gradients");
    let method =
        Method::parse(method).map_err(|e| ApiError::invalid(format!("method: {}", bare(&e))))?;
    let instances = match &served.model {
        SavedModel::Network(network) => Instances::Samples(network_rows(network, &served, raw)?),
        SavedModel::Table(table) => {
            let values = raw
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    serde_json::from_str(r.get())
                        .map_err(|e| ApiError::invalid(format!("instances[{i}]: {e}")))
                })
                .collect::<ApiResult<Vec<Value>>>()?;
            Instances::Rows(table_instances(table, &values)?)
        }
        other => {
            return Err(ApiError::invalid(format!(
                "'{name}' is a {} model: :explain explains networks and table models",
                other.kind()
            )))
        }
    };
    // The model is named by its served name: messages never show the server's files.
    let mut options = ExplainOptions::new(PathBuf::from(name), Vec::new(), method);
    options.target = match request.target {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "target: a class name or number, not {}",
                request::type_name(&other)
            )))
        }
    };
    options.steps = request.steps;
    options.baseline = request.baseline;
    options.blur_sigma = request.blur_sigma;
    options.samples = request.samples;
    options.noise = request.noise;
    options.seed = request.seed;
    options.layer = request.layer;
    let model = served.model.clone();
    // Many passes through the model: on a blocking thread, as many at once as generations.
    let answer =
        generation::run(move |_| explain_instances(&model, instances, "instances", &options))
            .await?
            .map_err(|e| ApiError::invalid(request_fields(&e.detail(), method.name())))?;
    Ok(Json(answer))
}

/// A library message about `ember explain`'s flags in the request's terms: `--blur-sigma
/// does nothing with --method saliency` reads `"blur_sigma" does nothing with "method":
/// "saliency"`.
fn request_fields(message: &str, method: &str) -> String {
    let mut out = message.replace(
        &format!("--method {method}"),
        &format!("\"method\": \"{method}\""),
    );
    for field in [
        "steps",
        "baseline",
        "blur-sigma",
        "samples",
        "noise",
        "seed",
        "layer",
        "target",
    ] {
        out = out.replace(
            &format!("--{field}"),
            &format!("\"{}\"", field.replace('-', "_")),
        );
    }
    out
}

/// A library error's message without its kind's prefix.
fn bare(error: &ember::Error) -> String {
    let text = error.to_string();
    text.strip_prefix("invalid argument: ")
        .unwrap_or(&text)
        .to_string()
}
