//! The friendly REST API, in TensorFlow Serving's shape: `GET /v1/models`, `GET
//! /v1/models/{name}` and `POST /v1/models/{name}:predict` with `{"instances": [...]}`, each
//! instance what its kind of model takes — raw sample values, `{"b64": image}`, a table row
//! of raw column values, a text.

use std::path::Path;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path as UrlPath, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use ember::data::preprocess::{Feature, Target};
use ember::data::table::{parse_number, Table};
use ember::prediction::{check_threshold, classify, Outcome};
use ember::saved::NetworkModel;
use ember::spec::DataSpec;
use ember::tabular::TabularModel;
use ember::Tensor;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::batch::{concat_rows, Rows};
use crate::error::{ApiError, ApiResult};
use crate::request;
use crate::served::Served;
use crate::server::AppState;
use ember::SavedModel;

/// `GET /v1/models`: every model with its kind, summary and input schema; also in the shape
/// of OpenAI's model list (`object`, `data[].id`), so its clients can list them.
pub async fn list(State(state): State<Arc<AppState>>) -> Json<Value> {
    let models: Vec<Value> = state
        .registry
        .all()
        .iter()
        .map(|m| {
            json!({
                "id": m.name,
                "object": "model",
                "owned_by": "ember",
                "name": m.name,
                "kind": m.kind_name(),
                "summary": m.summary(),
                "input": m.input_schema(),
            })
        })
        .collect();
    Json(json!({ "object": "list", "data": models }))
}

/// `GET /v1/models/{name}`: TensorFlow Serving's model status (and OpenAI's model object).
pub async fn status(
    State(state): State<Arc<AppState>>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Json<Value>> {
    let served = state.registry.get(&name)?;
    // TensorFlow Serving's status, with OpenAI's model fields for its `models.retrieve`.
    Ok(Json(json!({
        "id": served.name,
        "object": "model",
        "owned_by": "ember",
        "model_version_status": [{
            "version": "1",
            "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""}
        }]
    })))
}

#[derive(serde::Deserialize)]
struct FlatRequest {
    instances: Vec<Vec<f32>>,
    #[serde(default)]
    top_k: Option<Value>,
    #[serde(default)]
    threshold: Option<Value>,
}

#[derive(serde::Deserialize)]
struct PredictRequest<'a> {
    #[serde(borrow)]
    instances: Vec<&'a RawValue>,
    #[serde(default)]
    top_k: Option<Value>,
    #[serde(default)]
    threshold: Option<Value>,
}

/// `{"predictions": [...]}`, each prediction's keys in the order `ember predict --json`
/// writes them (a `Value` would sort them).
#[derive(serde::Serialize)]
struct Predictions<T> {
    predictions: Vec<T>,
}

/// `POST /v1/models/{name}:predict`.
pub async fn predict(
    State(state): State<Arc<AppState>>,
    UrlPath(target): UrlPath<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    if let Some(name) = target.strip_suffix(":explain") {
        return Ok(crate::explain::explain(&state, name, body)
            .await?
            .into_response());
    }
    let Some(name) = target.strip_suffix(":predict") else {
        return Err(ApiError::not_found(
            "unknown_route",
            format!("POST /v1/models/{target}: the routes are POST /v1/models/NAME:predict and NAME:explain"),
        ));
    };
    let served = state.registry.get(name)?;
    let body = request::body(body)?;
    // The common request to a network, flat arrays of numbers, in one pass into floats.
    if let SavedModel::Network(network) = &served.model {
        if let Ok(flat) = serde_json::from_slice::<FlatRequest>(&body) {
            state.check_instances(flat.instances.len())?;
            let decision = Decision::read(flat.top_k.as_ref(), flat.threshold.as_ref())?;
            let data = network.data(&served.source).map_err(ApiError::from_ember)?;
            let rows = flat
                .instances
                .into_iter()
                .enumerate()
                .map(|(i, values)| sample_tensor(network, data, values, &format!("instances[{i}]")))
                .collect::<ApiResult<Vec<Tensor>>>()?;
            let x = concat_rows(&rows).map_err(ApiError::from_ember)?;
            let predictions = classify_network(&served, x, decision, &data.classes).await?;
            return Ok(Json(Predictions { predictions }).into_response());
        }
    }
    let request: PredictRequest = request::json(&body)?;
    let raw = &request.instances;
    state.check_instances(raw.len())?;
    let decision = Decision::read(request.top_k.as_ref(), request.threshold.as_ref())?;
    // Each instance is parsed by what its model takes: a network's numbers straight into
    // floats (no tree of JSON values per pixel), others as JSON values.
    let values = || -> ApiResult<Vec<Value>> {
        raw.iter()
            .map(|r| serde_json::from_str(r.get()).map_err(|e| ApiError::invalid(e.to_string())))
            .collect()
    };
    let predictions = match &served.model {
        SavedModel::Network(network) => {
            let x = network_rows(network, &served, raw)?;
            let data = network.data(&served.source).map_err(ApiError::from_ember)?;
            classify_network(&served, x, decision, &data.classes).await?
        }
        SavedModel::Table(table) => {
            let x = table_rows(table, &values()?)?;
            let out = served.batcher.submit(Rows::Tensor(x)).await?;
            table_predictions(table, &out, decision)?
        }
        SavedModel::Text(classifier) => {
            let out = served
                .batcher
                .submit(Rows::Texts(texts(&values()?)?))
                .await?;
            classifications(&out, decision, &classifier.spec.classes)?
        }
        SavedModel::Encoder(_) => {
            let out = served
                .batcher
                .submit(Rows::Texts(texts(&values()?)?))
                .await?;
            let embeddings: Vec<Value> = out
                .data()
                .chunks(out.row_len().max(1))
                .map(|row| json!({ "embedding": row }))
                .collect();
            return Ok(Json(Predictions {
                predictions: embeddings,
            })
            .into_response());
        }
        SavedModel::Faq(_) => {
            return Err(ApiError::invalid(format!(
                "'{name}' is a FAQ index: POST /v1/faq/{name}/ask with {{\"query\": …}}"
            )))
        }
        SavedModel::Language(_) => {
            return Err(ApiError::invalid(format!(
                "'{name}' is a language model: POST /v1/chat/completions with {{\"model\": \"{name}\", \"messages\": …}}"
            )))
        }
        SavedModel::Recommender(_) => {
            return Err(ApiError::invalid(format!(
                "'{name}' is a recommender: POST /v1/recommend/{name} with {{\"user\": …}} or {{\"item\": …}}"
            )))
        }
    };
    Ok(Json(Predictions { predictions }).into_response())
}

/// A network's prepared rows through its batcher, as classifications.
async fn classify_network(
    served: &Served,
    x: Tensor,
    decision: Decision,
    classes: &[String],
) -> ApiResult<Vec<Outcome>> {
    let out = served.batcher.submit(Rows::Tensor(x)).await?;
    classifications(&out, decision, classes)
}

/// How a request asks its classes decided: `"top_k"` of them listed (3 unless asked), and a
/// binary classifier's `"threshold"` on its positive class, as `ember predict --top-k
/// --threshold` take them.
#[derive(Clone, Copy)]
struct Decision {
    top_k: Option<usize>,
    threshold: Option<f32>,
}

impl Decision {
    fn read(top_k: Option<&Value>, threshold: Option<&Value>) -> ApiResult<Decision> {
        let top_k = match top_k {
            None | Some(Value::Null) => None,
            given => Some(request::top_k(given, 3)?),
        };
        let threshold = match threshold {
            None | Some(Value::Null) => None,
            Some(v) => {
                let t = v.as_f64().map_or(f32::NAN, |t| t as f32);
                Some(check_threshold(t).map_err(|_| {
                    ApiError::invalid(format!(
                        "threshold must be a probability between 0 and 1, not {v}"
                    ))
                })?)
            }
        };
        Ok(Decision { top_k, threshold })
    }
}

/// Each instance of a network: raw sample values (nested or flat, as the data files hold
/// them: MNIST pixels 0–255) or `{"b64": PNG or JPEG}`, prepared as the training data was.
pub(crate) fn network_rows(
    network: &NetworkModel,
    served: &Served,
    instances: &[&RawValue],
) -> ApiResult<Tensor> {
    let data = network.data(&served.source).map_err(ApiError::from_ember)?;
    let sample = data.sample_shape();
    let numel: usize = sample.iter().product();
    let mut rows = Vec::with_capacity(instances.len());
    for (i, raw) in instances.iter().enumerate() {
        let field = format!("instances[{i}]");
        // The common case first: a flat array of numbers, read straight into floats.
        if let Ok(values) = serde_json::from_str::<Vec<f32>>(raw.get()) {
            rows.push(sample_tensor(network, data, values, &field)?);
            continue;
        }
        let instance: Value = serde_json::from_str(raw.get())
            .map_err(|e| ApiError::invalid(format!("{field}: {e}")))?;
        let x = match &instance {
            Value::Object(o) => {
                let Some(Value::String(text)) = o.get("b64") else {
                    return Err(ApiError::invalid(format!(
                        "{field}: an object instance is an image, {{\"b64\": \"<PNG or JPEG>\"}}"
                    )));
                };
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(text.trim())
                    .map_err(|e| ApiError::invalid(format!("{field}.b64: not base64 ({e})")))?;
                if !(bytes.starts_with(b"\x89PNG") || bytes.starts_with(&[0xFF, 0xD8, 0xFF])) {
                    return Err(ApiError::invalid(format!(
                        "{field}.b64: not a PNG or JPEG image"
                    )));
                }
                network
                    .read_input_bytes(&bytes, Path::new(&field), data)
                    .map_err(ApiError::from_ember)?
            }
            Value::Array(_) => {
                let mut values = Vec::with_capacity(numel);
                request::numbers(&instance, &field, numel, &mut values)?;
                let values = values.into_iter().map(|v| v as f32).collect();
                sample_tensor(network, data, values, &field)?
            }
            other => {
                return Err(ApiError::invalid(format!(
                    "{field}: expected an array of numbers or {{\"b64\": image}}, found {}",
                    request::type_name(other)
                )))
            }
        };
        rows.push(x);
    }
    concat_rows(&rows).map_err(ApiError::from_ember)
}

/// One sample's raw values as the network's prepared input (1, …).
fn sample_tensor(
    network: &NetworkModel,
    data: &DataSpec,
    values: Vec<f32>,
    field: &str,
) -> ApiResult<Tensor> {
    let sample = data.sample_shape();
    let numel: usize = sample.iter().product();
    if values.len() != numel {
        return Err(ApiError::invalid(format!(
            "{field}: {} values, the model's samples have {numel} ({sample:?})",
            values.len()
        )));
    }
    let mut shape = vec![1];
    shape.extend_from_slice(&sample);
    let raw = Tensor::new(&shape, values).map_err(ApiError::from_ember)?;
    network
        .prepare(raw, Path::new(field), data)
        .map_err(ApiError::from_ember)
}

/// Each instance of a table model: an object of raw column values (numbers, strings,
/// booleans; null or absent where missing), prepared by the saved preprocessing. A column the
/// model does not know is an error, unless the model left it out on purpose (an identifier,
/// the target).
fn table_rows(table: &TabularModel, instances: &[Value]) -> ApiResult<Tensor> {
    let rows: Vec<usize> = (0..instances.len()).collect();
    table
        .preprocessor
        .transform(&table_instances(table, instances)?, &rows)
        .map_err(ApiError::from_ember)
}

/// The instances of a table model as a table of its columns, checked as [`table_rows`] says.
pub(crate) fn table_instances(table: &TabularModel, instances: &[Value]) -> ApiResult<Table> {
    let pre = &table.preprocessor;
    let columns: Vec<(&str, bool)> = pre
        .features
        .iter()
        .map(|f| match f {
            Feature::Numeric { column, .. } => (column.as_str(), true),
            Feature::Categorical { column, .. } => (column.as_str(), false),
        })
        .collect();
    let target = match &pre.target {
        Target::Classes { column, .. } | Target::Regression { column, .. } => column.as_str(),
    };
    let mut cells: Vec<Vec<Option<String>>> =
        vec![Vec::with_capacity(instances.len()); columns.len()];
    for (i, instance) in instances.iter().enumerate() {
        let field = format!("instances[{i}]");
        let Value::Object(row) = instance else {
            return Err(ApiError::invalid(format!(
                "{field}: expected an object of column values, found {}",
                request::type_name(instance)
            )));
        };
        if let Some(unknown) = row.keys().find(|k| {
            k.as_str() != target
                && !columns.iter().any(|(c, _)| c == k)
                && !pre.skipped.iter().any(|(c, _)| c == *k)
        }) {
            let known: Vec<&str> = columns.iter().map(|(c, _)| *c).collect();
            return Err(ApiError::invalid(format!(
                "{field}: the model has no column '{unknown}' (columns: {})",
                known.join(", ")
            )));
        }
        for (c, &(column, numeric)) in columns.iter().enumerate() {
            let cell = match row.get(column) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                Some(Value::Bool(b)) => Some(b.to_string()),
                Some(other) => {
                    return Err(ApiError::invalid(format!(
                        "{field}.{column}: expected a number, a string or null, found {}",
                        request::type_name(other)
                    )))
                }
            };
            if let (true, Some(text)) = (numeric, &cell) {
                if parse_number(text).is_none() {
                    return Err(ApiError::invalid(format!(
                        "{field}.{column}: '{text}' is not a finite number"
                    )));
                }
            }
            cells[c].push(cell);
        }
    }
    let names = columns.iter().map(|(c, _)| c.to_string()).collect();
    let lines = (1..=instances.len() as u64).collect();
    Ok(Table::from_columns(
        Path::new("instances"),
        names,
        cells,
        lines,
    ))
}

/// Each instance of a text model: a string.
fn texts(instances: &[Value]) -> ApiResult<Vec<String>> {
    instances
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::String(s) => Ok(s.clone()),
            other => Err(ApiError::invalid(format!(
                "instances[{i}]: expected a string, found {}",
                request::type_name(other)
            ))),
        })
        .collect()
}

/// A network's output rows as classifications; an output that is not finite (an input far
/// beyond the training data) is an error naming the instance. A threshold needs two classes.
fn classifications(
    out: &Tensor,
    decision: Decision,
    classes: &[String],
) -> ApiResult<Vec<Outcome>> {
    let width = out.row_len().max(1);
    if let Some(t) = decision.threshold {
        let n = if width == 1 { 2 } else { width };
        if n != 2 {
            return Err(ApiError::invalid(format!(
                "threshold {t} decides between two classes; this model has {n}"
            )));
        }
    }
    let top_k = decision.top_k.unwrap_or(3);
    out.data()
        .chunks(width)
        .enumerate()
        .map(|(i, row)| {
            if row.iter().any(|v| !v.is_finite()) {
                return Err(ApiError::invalid(format!(
                    "instances[{i}]: the model's output is not a finite number (an input far \
                     outside the range it was trained on?)"
                )));
            }
            let class = classify(row, top_k, classes);
            Ok(Outcome::Class(match decision.threshold {
                Some(t) => class.at_threshold(t, classes),
                None => class,
            }))
        })
        .collect()
}

fn table_predictions(
    table: &TabularModel,
    out: &Tensor,
    decision: Decision,
) -> ApiResult<Vec<Outcome>> {
    match &table.preprocessor.target {
        Target::Classes { labels, .. } => classifications(out, decision, labels),
        Target::Regression { .. } if decision.top_k.is_some() || decision.threshold.is_some() => {
            Err(ApiError::invalid(
                "top_k and threshold decide classes; this table model is a regression, which predicts a value",
            ))
        }
        Target::Regression { .. } => Ok(table.outcomes(out, 1)),
    }
}
