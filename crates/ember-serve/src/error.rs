//! Every error the server answers: `{"error": {"code", "message"}}` with its HTTP status; a
//! 4xx for the client's mistakes, a 5xx only when the server itself cannot answer.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    /// A stable machine-readable name: `invalid_json`, `unknown_model`, …
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// The request is well-formed HTTP but its content is wrong (shape, type, value).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_input", message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// The model's queue is full: come back shortly (503 with `Retry-After`).
    pub fn busy(model: &str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "queue_full",
            format!("model '{model}' has too many requests waiting; retry shortly"),
        )
    }

    /// The server failed where the request was fine (a bug: never for bad input).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// A library error met while answering a request: the request's inputs caused it
    /// (wrong shape, values out of range, an undecodable image), so it is the client's.
    /// The code says it is invalid input; the message says what, without the library's
    /// "invalid argument: " in front of it again.
    pub fn from_ember(error: ember::Error) -> Self {
        Self::invalid(error.detail())
    }
}

/// The code and message of the error a response carries, for the request log and for the
/// v2 routes' own error shape.
#[derive(Clone, Debug)]
pub struct ErrorCode(pub &'static str, pub String);

/// Seconds a client told "busy" waits before trying again.
pub const RETRY_AFTER_SECONDS: u32 = 1;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": { "code": self.code, "message": &self.message }
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        response
            .extensions_mut()
            .insert(ErrorCode(self.code, self.message));
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        response
    }
}

/// An error answer in the Open Inference Protocol's shape, `{"error": "<message>"}` (which
/// tritonclient reads as the exception's text), the code beside it; headers kept.
pub fn as_v2_error(response: Response) -> Response {
    let Some(ErrorCode(code, message)) = response.extensions().get::<ErrorCode>().cloned() else {
        return response;
    };
    let (mut parts, _) = response.into_parts();
    let body = serde_json::json!({ "error": message, "code": code }).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}

pub type ApiResult<T> = std::result::Result<T, ApiError>;
