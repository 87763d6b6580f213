//! `ember serve`: saved Ember models behind HTTP, speaking the protocols clients already use —
//! the Open Inference Protocol (KServe v2), a TensorFlow-Serving-style REST API with
//! explanations, OpenAI embeddings and chat completions, FAQ answers (with replies from a
//! language model), recommendations — with dynamic batching, Prometheus metrics, hot reload
//! and a web playground.

mod batch;
mod chat;
mod chunks;
mod error;
mod explain;
mod faq;
mod generation;
mod log;
mod metrics;
mod openai;
mod playground;
mod recommend;
mod registry;
mod request;
mod served;
mod server;
mod v1;
mod v2;

pub use error::ApiError;
pub use server::{serve, ServeOptions};
