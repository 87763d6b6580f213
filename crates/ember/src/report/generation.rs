//! Language models and FAQ answers as the command line prints them: a loaded model, a
//! generation's timings, the entries found for a question.

use std::path::Path;

use crate::error::Result;
use crate::llm::{Finish, Generation, LanguageModel};

/// A loaded model: its name, shape and matrix types, and how long loading took.
pub fn loaded_text(path: &Path, model: &LanguageModel, seconds: f64) -> String {
    let c = &model.llama.config;
    let types: Vec<String> = model
        .llama
        .weight_types()
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    format!(
        "loaded {} ({}, {} layer{}, hidden {}, vocabulary {}; matrices {}) in {seconds:.2}s",
        path.display(),
        model.name.as_deref().unwrap_or(&c.architecture),
        c.layers,
        if c.layers == 1 { "" } else { "s" },
        c.hidden,
        c.vocab,
        types.join(", "),
    )
}

/// The timing line of a generation.
pub fn timing_text(g: &Generation) -> String {
    let rate = |n: usize, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
    format!(
        "prompt: {} tokens in {:.2}s ({:.1} tokens/s); generated: {} tokens in {:.2}s ({:.1} tokens/s); finished by {}",
        g.prompt_tokens,
        g.prompt_seconds,
        rate(g.prompt_tokens, g.prompt_seconds),
        g.tokens.len(),
        g.generate_seconds,
        rate(g.tokens.len(), g.generate_seconds),
        match g.finish {
            Finish::End => "the end token",
            Finish::Stop => "a stop string",
            Finish::Length => "--max-tokens",
            Finish::Context => "the model's full context window",
        }
    )
}

/// Pretty JSON and a newline; scores go through `serde_json::Value`, which writes an f32 as
/// the f64 it widens to, as `ember ask` always has.
pub fn widened_json(value: &impl serde::Serialize) -> Result<String> {
    let value = serde_json::to_value(value)
        .map_err(|e| crate::Error::invalid(format!("cannot write JSON: {e}")))?;
    super::pretty_json(&value)
}
