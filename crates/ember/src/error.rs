//! The one error type of the library: every failure names what went wrong and where.

use std::path::PathBuf;

/// Everything that can go wrong in Ember, with enough context to fix it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Two tensors (or a tensor and a layer) disagree on shape.
    #[error("shape mismatch in {op}: {detail}")]
    Shape { op: &'static str, detail: String },

    /// A file could not be opened or read.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A data file was readable but its contents are wrong (bad magic number, truncation, …).
    #[error("{}: {message}", path.display())]
    Data { path: PathBuf, message: String },

    /// A model file is malformed: the field and, when known, the line are named.
    #[error("{}{}: {field}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Spec {
        path: PathBuf,
        line: Option<usize>,
        field: String,
        message: String,
    },

    /// A value given by the caller is out of range or inconsistent.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// Training produced NaN or infinity.
    #[error("non-finite value: {0}")]
    NonFinite(String),
}

/// `Result` with Ember's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn shape(op: &'static str, detail: impl Into<String>) -> Self {
        Error::Shape {
            op,
            detail: detail.into(),
        }
    }

    pub fn data(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Data {
            path: path.into(),
            message: message.into(),
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidArgument(message.into())
    }

    /// The message without its kind's prefix, to be wrapped in a caller's context (an
    /// invalid argument's text alone; every other error as displayed).
    pub fn detail(&self) -> String {
        match self {
            Error::InvalidArgument(message) => message.clone(),
            other => other.to_string(),
        }
    }
}
