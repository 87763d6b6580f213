//! Training and evaluation reports for people: the history as CSV and JSON, loss and accuracy
//! curves, and the confusion matrix, as PNG and SVG (every file written atomically); and the
//! text the command line prints, so that every front end says the same.

mod assessment;
mod bars;
mod generation;
pub(crate) mod plot;
pub mod recommend;
pub mod saved;
mod tables;
mod tune;

pub use assessment::{assessment_text, per_class_assessment_text, skipped_text};
pub use bars::Bars;
pub use generation::{loaded_text, timing_text, widened_json};
pub use tables::{
    inspect_text, preview, rejected_text, scores_text, table_evaluation_text, task_name,
};
pub use tune::{
    outcome_text, tune_event_text, tune_file_text, tune_table_text, tuned_table_text,
    tuned_test_text,
};

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::atomic::write_atomically;
use crate::error::{Error, Result};

/// `n` things, singular for one: `1 epoch`, `2 epochs` (`noun` the singular; an `s` added).
pub fn count(n: usize, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}
use crate::metrics::ConfusionMatrix;
use crate::model::History;

/// "1 thread", "2 threads".
pub fn threads_text(n: usize) -> String {
    let threads = match n {
        1 => "1 thread".into(),
        n => format!("{n} threads"),
    };
    // In a data-parallel job: "2 processes × 1 thread".
    match crate::distributed::world().size() {
        1 => threads,
        size => format!("{size} processes × {threads}"),
    }
}

/// Writes history.csv, history.json and the loss (and accuracy) curves into `dir`.
/// Returns the files written.
pub fn write_history(dir: &Path, history: &History) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut written = Vec::new();
    let mut names = history.metric_names();
    names.push("learning_rate");
    let mut csv = format!("epoch,{}\n", names.join(","));
    for log in &history.epochs {
        let values: Vec<String> = names
            .iter()
            .map(|n| metric(history, log.epoch, n).to_string())
            .collect();
        csv += &format!("{},{}\n", log.epoch, values.join(","));
    }
    written.push(write(dir, "history.csv", csv.as_bytes())?);
    let json = serde_json::json!({
        "epoch": history.epochs.iter().map(|e| e.epoch).collect::<Vec<_>>(),
        "metrics": names.iter().map(|n| (n.to_string(), serde_json::json!(history.metric(n)))).collect::<serde_json::Map<String, serde_json::Value>>(),
        "seconds": history.epochs.iter().map(|e| e.seconds).collect::<Vec<_>>(),
        "stopped_early": history.stopped_early,
    });
    written.push(write(dir, "history.json", json_bytes(&json)?.as_slice())?);
    if history.epochs.is_empty() {
        return Ok(written);
    }
    let epochs: Vec<f64> = history.epochs.iter().map(|e| e.epoch as f64).collect();
    for (name, label) in [("loss", "Loss"), ("accuracy", "Accuracy")] {
        let train = history.metric(name);
        if train.is_empty() {
            continue;
        }
        let validation = history.metric(&format!("val_{name}"));
        let mut series = vec![plot::Series {
            name: "training",
            values: train,
        }];
        if !validation.is_empty() {
            series.push(plot::Series {
                name: "validation",
                values: validation,
            });
        }
        let chart = plot::Curves {
            title: format!("{label} per epoch"),
            y_label: label.to_lowercase(),
            epochs: epochs.clone(),
            series,
            rising: name == "accuracy",
        };
        let (png, svg) = chart.render()?;
        written.push(write(dir, &format!("{name}.png"), &png)?);
        written.push(write(dir, &format!("{name}.svg"), svg.as_bytes())?);
    }
    Ok(written)
}

/// Writes confusion_matrix.png / .svg and `evaluation.json` (any serialisable summary).
pub fn write_evaluation(
    dir: &Path,
    summary: &impl Serialize,
    confusion: Option<&ConfusionMatrix>,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut written = vec![write(dir, "evaluation.json", &json_bytes(summary)?)?];
    if let Some(cm) = confusion {
        let (png, svg) = plot::render_confusion(cm)?;
        written.push(write(dir, "confusion_matrix.png", &png)?);
        written.push(write(dir, "confusion_matrix.svg", svg.as_bytes())?);
    }
    Ok(written)
}

fn metric(history: &History, epoch: usize, name: &str) -> f64 {
    let index = history
        .epochs
        .iter()
        .position(|e| e.epoch == epoch)
        .unwrap_or(0);
    history.metric(name).get(index).copied().unwrap_or(f64::NAN)
}

/// Pretty JSON and a newline, as the command line prints it.
pub fn pretty_json(value: &impl Serialize) -> Result<String> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::invalid(format!("cannot write JSON: {e}")))?;
    Ok(text + "\n")
}

pub(crate) fn json_bytes(value: &impl Serialize) -> Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::invalid(format!("cannot write JSON: {e}")))?;
    bytes.push(b'\n');
    Ok(bytes)
}

pub(crate) fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf> {
    let path = dir.join(name);
    write_atomically(&path, bytes)?;
    Ok(path)
}
