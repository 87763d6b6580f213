//! Reading request bodies: the body within its limit, JSON parsed with errors that say where,
//! and the numbers of a (possibly nested) JSON array.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// The body, or why it could not be read (413 beyond the size limit).
pub fn body(body: Result<Bytes, BytesRejection>) -> ApiResult<Bytes> {
    body.map_err(|rejection| {
        let status = rejection.status();
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
            _ => "invalid_body",
        };
        ApiError::new(status, code, rejection.body_text())
    })
}

/// The body as JSON of type `T`; malformed JSON or a wrong field is a 400 saying where.
pub fn json<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> ApiResult<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        let code = match e.classify() {
            serde_json::error::Category::Data => "invalid_request",
            _ => "invalid_json",
        };
        ApiError::new(StatusCode::BAD_REQUEST, code, format!("the body: {e}"))
    })
}

/// The numbers of `value` — a number, or arrays of them nested to any depth — in row-major
/// order, into `out`; at most `limit` of them (more is an error, found without reading on).
pub fn numbers(value: &Value, field: &str, limit: usize, out: &mut Vec<f64>) -> ApiResult<()> {
    match value {
        Value::Number(n) => {
            if out.len() >= limit {
                return Err(ApiError::invalid(format!(
                    "{field}: more than the {limit} values expected"
                )));
            }
            // serde_json refuses numbers beyond f64 while parsing; every number is an f64.
            out.push(n.as_f64().unwrap_or(f64::NAN));
            Ok(())
        }
        Value::Array(items) => {
            for item in items {
                numbers(item, field, limit, out)?;
            }
            Ok(())
        }
        other => Err(ApiError::invalid(format!(
            "{field}: expected numbers, found {}",
            type_name(other)
        ))),
    }
}

/// JSON's name for a value's type, for error messages.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `top_k` from a request, 1 to 1,000 (default `default`).
pub fn top_k(value: Option<&Value>, default: usize) -> ApiResult<usize> {
    match value {
        None | Some(Value::Null) => Ok(default),
        Some(v) => match v.as_u64() {
            Some(k @ 1..=1000) => Ok(k as usize),
            _ => Err(ApiError::invalid(format!(
                "top_k must be a whole number from 1 to 1000, not {v}"
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_flattens_nested_arrays_and_stops_at_the_limit() {
        let v: Value = serde_json::from_str("[[1, 2], [3, [4]]]").unwrap();
        let mut out = Vec::new();
        numbers(&v, "x", 4, &mut out).unwrap();
        assert_eq!(out, vec![1.0, 2.0, 3.0, 4.0]);
        let e = numbers(&v, "x", 3, &mut Vec::new()).unwrap_err();
        assert!(e.message.contains("more than the 3"), "{}", e.message);
        let e = numbers(
            &serde_json::json!([1, "a"]),
            "instances[0]",
            9,
            &mut Vec::new(),
        )
        .unwrap_err();
        assert_eq!(e.message, "instances[0]: expected numbers, found a string");
    }

    #[test]
    fn json_errors_say_where_and_what() {
        let e = json::<Value>(b"{\"a\": ").unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (400, "invalid_json"));
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct R {
            query: String,
        }
        let e = json::<R>(b"{\"query\": 3}").unwrap_err();
        assert_eq!(e.code, "invalid_request");
        assert!(e.message.contains("invalid type"), "{}", e.message);
        assert_eq!(top_k(None, 3).unwrap(), 3);
        assert!(top_k(Some(&serde_json::json!(0)), 3).is_err());
        assert!(top_k(Some(&serde_json::json!(2.5)), 3).is_err());
    }
}
