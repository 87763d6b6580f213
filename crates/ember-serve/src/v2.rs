//! The Open Inference Protocol (KServe v2, as Triton and MLServer speak it): health, server
//! and model metadata, readiness and `infer` on tensors, in JSON or with the binary tensor
//! data extension (`Inference-Header-Content-Length`) that `tritonclient[http]` uses. A
//! network's input tensor is what `predict` gives the network, after the saved scaling.

use std::path::Path;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ember::Tensor;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::batch::Rows;
use crate::error::{ApiError, ApiResult};
use crate::request;
use crate::served::Served;
use crate::server::AppState;
use ember::SavedModel;

/// The header giving the JSON part's length when binary tensor data follows it.
const HEADER_LENGTH: &str = "inference-header-content-length";
/// The only version of a model there is.
const VERSION: &str = "1";

pub async fn server_metadata() -> Json<Value> {
    Json(json!({
        "name": "ember",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": ["binary_tensor_data"],
    }))
}

pub async fn live() -> Json<Value> {
    Json(json!({ "live": true }))
}

/// Ready as soon as it listens: every model is loaded before.
pub async fn ready() -> Json<Value> {
    Json(json!({ "ready": true }))
}

fn check_version(version: Option<&str>) -> ApiResult<()> {
    match version {
        None | Some(VERSION) => Ok(()),
        Some(v) => Err(ApiError::not_found(
            "unknown_version",
            format!("no version '{v}' (each model has version {VERSION})"),
        )),
    }
}

/// A tensor's name, datatype and shape (-1: any length).
fn tensor_meta(name: &str, datatype: &str, sample: &[usize]) -> Value {
    let mut shape = vec![-1i64];
    shape.extend(sample.iter().map(|&d| d as i64));
    json!({ "name": name, "datatype": datatype, "shape": shape })
}

/// The model's input and output tensors: (input, output) metadata.
fn io_meta(served: &Served) -> ApiResult<(Value, Value)> {
    if let SavedModel::Encoder(e) = &served.model {
        return Ok((
            tensor_meta("text", "BYTES", &[]),
            tensor_meta("embedding", "FP32", &[e.dim()]),
        ));
    }
    let model = served.network().ok_or_else(|| {
        let name = &served.name;
        let what = match &served.model {
            SavedModel::Language(_) => format!(
                "a language model: POST /v1/chat/completions with {{\"model\": \"{name}\", \"messages\": …}} answers it"
            ),
            SavedModel::Recommender(_) => format!(
                "a recommender: POST /v1/recommend/{name} with {{\"user\": …}} answers it"
            ),
            _ => format!("a FAQ index: POST /v1/faq/{name}/ask answers its questions"),
        };
        ApiError::not_found("not_a_tensor_model", format!("'{name}' is {what}"))
    })?;
    let input = &model.inputs()[0];
    let output = model.output_names().first().cloned().unwrap_or_default();
    Ok((
        tensor_meta(&input.name, "FP32", &input.shape),
        tensor_meta(&output, "FP32", model.output_shape()),
    ))
}

pub async fn model_metadata(
    State(state): State<Arc<AppState>>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Json<Value>> {
    metadata(&state, &name, None)
}

pub async fn version_metadata(
    State(state): State<Arc<AppState>>,
    UrlPath((name, version)): UrlPath<(String, String)>,
) -> ApiResult<Json<Value>> {
    metadata(&state, &name, Some(&version))
}

fn metadata(state: &AppState, name: &str, version: Option<&str>) -> ApiResult<Json<Value>> {
    let served = state.registry.get(name)?;
    check_version(version)?;
    let (input, output) = io_meta(&served)?;
    Ok(Json(json!({
        "name": served.name,
        "versions": [VERSION],
        "platform": format!("ember_{}", served.kind_name()),
        "inputs": [input],
        "outputs": [output],
    })))
}

pub async fn model_ready(
    State(state): State<Arc<AppState>>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Json<Value>> {
    let served = state.registry.get(&name)?;
    Ok(Json(json!({ "name": served.name, "ready": true })))
}

pub async fn version_ready(
    State(state): State<Arc<AppState>>,
    UrlPath((name, version)): UrlPath<(String, String)>,
) -> ApiResult<Json<Value>> {
    check_version(Some(&version))?;
    model_ready(State(state), UrlPath(name)).await
}

#[derive(Deserialize)]
struct InferRequest {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    inputs: Vec<InferInput>,
    #[serde(default)]
    outputs: Option<Vec<RequestedOutput>>,
}

#[derive(Deserialize)]
struct InferInput {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    #[serde(default)]
    data: Option<Value>,
}

#[derive(Deserialize)]
struct RequestedOutput {
    name: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
}

/// The protocol's datatypes, as far as a model here takes them.
#[derive(Clone, Copy, Debug, PartialEq)]
enum DataType {
    Int(u32),
    UInt(u32),
    Fp32,
    Fp64,
    Bytes,
}

impl DataType {
    fn parse(name: &str, field: &str) -> ApiResult<DataType> {
        Ok(match name {
            "INT8" => DataType::Int(8),
            "INT16" => DataType::Int(16),
            "INT32" => DataType::Int(32),
            "INT64" => DataType::Int(64),
            "UINT8" => DataType::UInt(8),
            "UINT16" => DataType::UInt(16),
            "UINT32" => DataType::UInt(32),
            "UINT64" => DataType::UInt(64),
            "FP32" => DataType::Fp32,
            "FP64" => DataType::Fp64,
            "BYTES" => DataType::Bytes,
            other => {
                return Err(ApiError::invalid(format!(
                    "{field}.datatype: '{other}' is not supported (FP32, FP64, INT8–INT64, \
                     UINT8–UINT64; BYTES for texts)"
                )))
            }
        })
    }

    /// Bytes per element in binary data (BYTES has none fixed).
    fn size(self) -> usize {
        match self {
            DataType::Int(bits) | DataType::UInt(bits) => bits as usize / 8,
            DataType::Fp32 => 4,
            DataType::Fp64 => 8,
            DataType::Bytes => 0,
        }
    }

    /// Whether `v` is a value of this type.
    fn holds(self, v: f64) -> bool {
        let whole = v.fract() == 0.0;
        match self {
            DataType::Int(bits) => whole && v.abs() <= 2f64.powi(bits as i32 - 1),
            DataType::UInt(bits) => whole && v >= 0.0 && v < 2f64.powi(bits as i32),
            DataType::Fp32 | DataType::Fp64 => true,
            DataType::Bytes => false,
        }
    }

    /// One element of binary data, little-endian.
    fn decode(self, b: &[u8]) -> f64 {
        let mut a = [0u8; 8];
        a[..b.len()].copy_from_slice(b);
        match self {
            DataType::Int(8) => b[0] as i8 as f64,
            DataType::Int(16) => i16::from_le_bytes([b[0], b[1]]) as f64,
            DataType::Int(32) => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            DataType::Int(_) => i64::from_le_bytes(a) as f64,
            DataType::UInt(_) => u64::from_le_bytes(a) as f64,
            DataType::Fp32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            DataType::Fp64 | DataType::Bytes => f64::from_le_bytes(a),
        }
    }
}

/// The request's JSON part and the binary data after it.
fn split_body<'a>(headers: &HeaderMap, body: &'a [u8]) -> ApiResult<(&'a [u8], &'a [u8])> {
    let Some(value) = headers.get(HEADER_LENGTH) else {
        return Ok((body, &[]));
    };
    let length = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n <= body.len())
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "{HEADER_LENGTH}: not a length within the body's {} bytes",
                body.len()
            ))
        })?;
    Ok(body.split_at(length))
}

/// An input's binary data size, from its parameters.
fn binary_size(parameters: &Option<Map<String, Value>>, field: &str) -> ApiResult<Option<usize>> {
    match parameters.as_ref().and_then(|p| p.get("binary_data_size")) {
        None => Ok(None),
        Some(v) => v.as_u64().map(|n| Some(n as usize)).ok_or_else(|| {
            ApiError::invalid(format!("{field}.parameters.binary_data_size: not a length"))
        }),
    }
}

/// Elements a shape holds; negative or overflowing dimensions are errors.
fn elements(shape: &[i64], field: &str) -> ApiResult<usize> {
    shape.iter().try_fold(1usize, |n, &d| {
        usize::try_from(d)
            .ok()
            .and_then(|d| n.checked_mul(d))
            .ok_or_else(|| ApiError::invalid(format!("{field}.shape: {shape:?} is not a shape")))
    })
}

pub async fn infer(
    State(state): State<Arc<AppState>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    run_infer(&state, &name, &headers, body).await
}

pub async fn version_infer(
    State(state): State<Arc<AppState>>,
    UrlPath((name, version)): UrlPath<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    check_version(Some(&version))?;
    run_infer(&state, &name, &headers, body).await
}

async fn run_infer(
    state: &AppState,
    name: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let served = state.registry.get(name)?;
    let body = request::body(body)?;
    let (json_part, binary) = split_body(headers, &body)?;
    let request: InferRequest = request::json(json_part)?;
    let (input_meta, output_meta) = io_meta(&served)?;
    let [input] = request.inputs.as_slice() else {
        return Err(ApiError::invalid(format!(
            "inputs: the model takes one input, '{}', not {}",
            input_meta["name"].as_str().unwrap_or_default(),
            request.inputs.len()
        )));
    };
    let field = "inputs[0]";
    if input.name != input_meta["name"] {
        return Err(ApiError::invalid(format!(
            "{field}.name: the model's input is '{}', not '{}'",
            input_meta["name"].as_str().unwrap_or_default(),
            input.name
        )));
    }
    let datatype = DataType::parse(&input.datatype, field)?;
    let count = elements(&input.shape, field)?;
    let rows = usize::try_from(*input.shape.first().unwrap_or(&0)).unwrap_or(0);
    if input.shape.is_empty() || rows == 0 {
        return Err(ApiError::invalid(format!(
            "{field}.shape: {:?} holds no samples (the first dimension is the batch)",
            input.shape
        )));
    }
    state.check_instances(rows)?;
    let data = match binary_size(&input.parameters, field)? {
        Some(size) => {
            if size > binary.len() {
                return Err(ApiError::invalid(format!(
                    "{field}: {size} bytes of binary data announced, {} sent",
                    binary.len()
                )));
            }
            // One input: its data is the first `size` bytes.
            Data::Binary(&binary[..size])
        }
        None => Data::Json(input.data.as_ref().ok_or_else(|| {
            ApiError::invalid(format!(
                "{field}: no data (neither \"data\" nor binary_data_size)"
            ))
        })?),
    };
    let rows_in = if let SavedModel::Encoder(_) = served.model {
        if datatype != DataType::Bytes || !(input.shape.len() == 1 || input.shape[1..] == [1]) {
            return Err(ApiError::invalid(format!(
                "{field}: an encoder takes texts, BYTES of shape [n] (got {} {:?})",
                input.datatype, input.shape
            )));
        }
        Rows::Texts(texts(&data, rows, field)?)
    } else {
        let expected: Vec<i64> = input_meta["shape"]
            .as_array()
            .map(|s| s[1..].iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        if input.shape[1..] != expected[..] {
            return Err(ApiError::invalid(format!(
                "{field}.shape: {:?}, the model takes [n, {}]",
                input.shape,
                expected
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let values = numbers(&data, datatype, count, field)?;
        let shape: Vec<usize> = input.shape.iter().map(|&d| d as usize).collect();
        let x = Tensor::new(&shape, values).map_err(ApiError::from_ember)?;
        if let SavedModel::Network(network) = &served.model {
            let data = network.data(&served.source).map_err(ApiError::from_ember)?;
            data.check_prepared_range(&x, Path::new(field))
                .map_err(ApiError::from_ember)?;
        }
        Rows::Tensor(x)
    };
    let out = served.batcher.submit(rows_in).await?;
    respond(&request, &served, &output_meta, &out)
}

enum Data<'a> {
    Json(&'a Value),
    Binary(&'a [u8]),
}

/// A tensor input's values, checked to be of its datatype, `count` of them, finite.
fn numbers(data: &Data, datatype: DataType, count: usize, field: &str) -> ApiResult<Vec<f32>> {
    if datatype == DataType::Bytes {
        return Err(ApiError::invalid(format!(
            "{field}.datatype: this model takes numbers (FP32 or an integer type), not BYTES"
        )));
    }
    let values: Vec<f64> = match data {
        Data::Json(value) => {
            let mut values = Vec::with_capacity(count.min(1 << 20));
            request::numbers(value, &format!("{field}.data"), count, &mut values)?;
            if let Some(v) = values.iter().find(|&&v| !datatype.holds(v)) {
                return Err(ApiError::invalid(format!(
                    "{field}.data: {v} is not a {datatype:?} value"
                )));
            }
            values
        }
        Data::Binary(bytes) => {
            if bytes.len() != count * datatype.size() {
                return Err(ApiError::invalid(format!(
                    "{field}: {} bytes of binary data, the shape needs {}",
                    bytes.len(),
                    count * datatype.size()
                )));
            }
            bytes
                .chunks(datatype.size())
                .map(|b| datatype.decode(b))
                .collect()
        }
    };
    if values.len() != count {
        return Err(ApiError::invalid(format!(
            "{field}.data: {} values, the shape holds {count}",
            values.len()
        )));
    }
    let values: Vec<f32> = values.into_iter().map(|v| v as f32).collect();
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(ApiError::invalid(format!(
            "{field}.data[{i}]: not a finite number (in FP32)"
        )));
    }
    Ok(values)
}

/// A BYTES input's texts: JSON strings, or binary elements each a 4-byte little-endian
/// length and its bytes.
fn texts(data: &Data, count: usize, field: &str) -> ApiResult<Vec<String>> {
    let texts: Vec<String> = match data {
        Data::Json(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Array(inner) if inner.len() == 1 && inner[0].is_string() => {
                    Ok(inner[0].as_str().unwrap_or_default().to_string())
                }
                other => Err(ApiError::invalid(format!(
                    "{field}.data: expected strings, found {}",
                    request::type_name(other)
                ))),
            })
            .collect::<ApiResult<_>>()?,
        Data::Json(other) => {
            return Err(ApiError::invalid(format!(
                "{field}.data: expected an array of strings, found {}",
                request::type_name(other)
            )))
        }
        Data::Binary(mut bytes) => {
            let mut texts = Vec::new();
            while !bytes.is_empty() {
                let (length, rest) = bytes.split_at(4.min(bytes.len()));
                let length = <[u8; 4]>::try_from(length)
                    .map(|l| u32::from_le_bytes(l) as usize)
                    .ok()
                    .filter(|&l| l <= rest.len())
                    .ok_or_else(|| {
                        ApiError::invalid(format!("{field}: truncated BYTES element"))
                    })?;
                texts.push(String::from_utf8_lossy(&rest[..length]).into_owned());
                bytes = &rest[length..];
            }
            texts
        }
    };
    if texts.len() != count {
        return Err(ApiError::invalid(format!(
            "{field}.data: {} texts, the shape holds {count}",
            texts.len()
        )));
    }
    Ok(texts)
}

/// The answer: the output tensor in JSON, or as binary data after the JSON when asked.
fn respond(
    request: &InferRequest,
    served: &Served,
    output_meta: &Value,
    out: &Tensor,
) -> ApiResult<Response> {
    let output_name = output_meta["name"].as_str().unwrap_or_default();
    let flag = |p: &Option<Map<String, Value>>, key: &str| {
        p.as_ref().and_then(|p| p.get(key)).and_then(Value::as_bool)
    };
    let mut binary = flag(&request.parameters, "binary_data_output").unwrap_or(false);
    if let Some(wanted) = &request.outputs {
        for (i, o) in wanted.iter().enumerate() {
            if o.name != output_name {
                return Err(ApiError::invalid(format!(
                    "outputs[{i}].name: the model's output is '{output_name}', not '{}'",
                    o.name
                )));
            }
            binary = flag(&o.parameters, "binary_data").unwrap_or(binary);
        }
    }
    let mut output = json!({
        "name": output_name,
        "datatype": "FP32",
        "shape": out.shape(),
    });
    let bytes: Vec<u8> = match binary {
        true => out.data().iter().flat_map(|v| v.to_le_bytes()).collect(),
        false => Vec::new(),
    };
    if binary {
        output["parameters"] = json!({ "binary_data_size": bytes.len() });
    } else {
        output["data"] = json!(out.data());
    }
    let mut answer = json!({
        "model_name": served.name,
        "model_version": VERSION,
        "outputs": [output],
    });
    if let Some(id) = &request.id {
        answer["id"] = json!(id);
    }
    if !binary {
        return Ok(Json(answer).into_response());
    }
    let mut body = serde_json::to_vec(&answer).map_err(|e| ApiError::internal(e.to_string()))?;
    let json_length = body.len();
    body.extend_from_slice(&bytes);
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::HeaderName::from_static(HEADER_LENGTH),
                json_length.to_string(),
            ),
        ],
        Body::from(body),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datatypes_check_their_values_and_decode_little_endian() {
        let u8t = DataType::parse("UINT8", "x").unwrap();
        assert!(u8t.holds(255.0) && !u8t.holds(256.0) && !u8t.holds(-1.0) && !u8t.holds(0.5));
        let i16t = DataType::parse("INT16", "x").unwrap();
        assert_eq!(i16t.decode(&(-300i16).to_le_bytes()), -300.0);
        assert_eq!(DataType::Fp32.decode(&1.5f32.to_le_bytes()), 1.5);
        assert!(DataType::parse("FP16", "inputs[0]")
            .unwrap_err()
            .message
            .contains("FP16"));
        assert_eq!(elements(&[2, 3], "x").unwrap(), 6);
        assert!(elements(&[-1, 3], "x").is_err());
        assert!(elements(&[i64::MAX, i64::MAX], "x").is_err());
    }

    #[test]
    fn bytes_elements_are_length_prefixed() {
        let mut b = Vec::new();
        for t in ["hi", "there"] {
            b.extend_from_slice(&(t.len() as u32).to_le_bytes());
            b.extend_from_slice(t.as_bytes());
        }
        assert_eq!(
            texts(&Data::Binary(&b), 2, "x").unwrap(),
            vec!["hi", "there"]
        );
        assert!(texts(&Data::Binary(&b[..b.len() - 1]), 2, "x").is_err());
    }
}
