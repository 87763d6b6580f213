//! `CallbackConfig`: callbacks as model-file tables.
//!
//! ```toml
//! [[callbacks]]
//! type = "early_stopping"
//! monitor = "val_loss"
//! patience = 3
//! restore_best_weights = true
//!
//! [[callbacks]]
//! type = "learning_rate_scheduler"
//! schedule = { type = "cosine", epochs = 10 }
//! ```

use serde::{Deserialize, Serialize};

use std::path::PathBuf;

use crate::callbacks::{
    CsvLogger, EarlyStopping, Mode, ReduceLrOnPlateau, Schedule, TerminateOnNan,
};

/// One `[[callbacks]]` table, tagged by `type`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CallbackConfig {
    EarlyStopping(EarlyStopping),
    ModelCheckpoint(ModelCheckpointConfig),
    ReduceLrOnPlateau(ReduceLrOnPlateau),
    LearningRateScheduler(SchedulerConfig),
    CsvLogger(CsvLogger),
    TerminateOnNan(TerminateOnNan),
}

/// The model-file form of a learning-rate scheduler.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerConfig {
    pub schedule: Schedule,
    /// The rate the schedule starts from (default: the optimizer's learning rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_learning_rate: Option<f32>,
}

/// `[[callbacks]] type = "model_checkpoint"`: Keras `ModelCheckpoint(filepath,
/// monitor="val_loss", save_best_only=False, mode="auto")`; the callback is
/// [`crate::callbacks::ModelCheckpoint`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCheckpointConfig {
    /// A template, as in Keras: `{epoch}` or `{epoch:03d}` is replaced by the epoch number,
    /// `{val_loss}` or `{val_loss:.4f}` (any logged metric) by its value (see
    /// [`fill_template`]).
    pub filepath: PathBuf,
    #[serde(default = "val_loss")]
    pub monitor: String,
    #[serde(default)]
    pub save_best_only: bool,
    #[serde(default)]
    pub mode: Mode,
}

fn val_loss() -> String {
    "val_loss".into()
}

impl ModelCheckpointConfig {
    pub fn new(filepath: impl Into<PathBuf>) -> Self {
        ModelCheckpointConfig {
            filepath: filepath.into(),
            monitor: val_loss(),
            save_best_only: false,
            mode: Mode::Auto,
        }
    }
}

/// One `{…}` field of a checkpoint path: a name and Python's format for it.
#[derive(Debug, PartialEq)]
struct Field<'a> {
    name: &'a str,
    zero: bool,
    width: usize,
    /// Digits after the point (`.4f`); None for an integer (`d`) or no format.
    precision: Option<usize>,
}

/// Splits a checkpoint path into literal text and fields, or says what is wrong.
fn template_parts(template: &str) -> Result<Vec<Result<&str, Field<'_>>>, String> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        if let Some(close) = rest[..open].find('}') {
            return Err(format!("an unmatched '}}' at '{}'", &rest[close..]));
        }
        parts.push(Ok(&rest[..open]));
        let close = rest[open..]
            .find('}')
            .map(|c| open + c)
            .ok_or_else(|| format!("an unclosed '{{' at '{}'", &rest[open..]))?;
        let inside = &rest[open + 1..close];
        let (name, spec) = inside.split_once(':').unwrap_or((inside, ""));
        let bad = || {
            format!(
                "'{{{inside}}}' is not a field this path can take ({{epoch}}, {{epoch:03d}}, \
                 {{val_loss:.4f}}: a name and an optional 0, width, and d or .Nf)"
            )
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(bad());
        }
        let zero = spec.starts_with('0');
        let spec = spec.strip_prefix('0').unwrap_or(spec);
        let digits = spec.chars().take_while(char::is_ascii_digit).count();
        let width = match digits {
            0 => 0,
            _ => spec[..digits].parse().map_err(|_| bad())?,
        };
        let precision = match &spec[digits..] {
            "" | "d" => None,
            f => {
                let p = f
                    .strip_prefix('.')
                    .and_then(|f| f.strip_suffix('f'))
                    .ok_or_else(bad)?;
                Some(p.parse().map_err(|_| bad())?)
            }
        };
        if width > 64 || precision.is_some_and(|p| p > 17) {
            return Err(bad());
        }
        parts.push(Err(Field {
            name,
            zero,
            width,
            precision,
        }));
        rest = &rest[close + 1..];
    }
    if let Some(close) = rest.find('}') {
        return Err(format!("an unmatched '}}' at '{}'", &rest[close..]));
    }
    parts.push(Ok(rest));
    Ok(parts)
}

/// Fills a checkpoint path template (Keras's `ModelCheckpoint(filepath)`): `{epoch}` with the
/// epoch number and `{name}` with the value `value(name)` of a logged metric, each with an
/// optional Python format (`{epoch:03d}`, `{val_loss:.4f}`). An unknown name or a malformed
/// field is an error naming it.
pub fn fill_template(
    template: &str,
    epoch: usize,
    value: impl Fn(&str) -> Option<f64>,
) -> Result<String, String> {
    let mut out = String::new();
    for part in template_parts(template)? {
        match part {
            Ok(text) => out.push_str(text),
            Err(field) => {
                let text = match (field.name, field.precision) {
                    ("epoch", None) => epoch.to_string(),
                    ("epoch", Some(p)) => format!("{:.*}", p, epoch as f64),
                    (name, precision) => {
                        let v = value(name).ok_or_else(|| {
                            format!("'{{{name}}}' names no metric this training logs")
                        })?;
                        match precision {
                            Some(p) => format!("{v:.p$}"),
                            None => v.to_string(),
                        }
                    }
                };
                let pad = field.width.saturating_sub(text.chars().count());
                let fill = if field.zero { '0' } else { ' ' };
                match (field.zero, text.strip_prefix('-')) {
                    (true, Some(digits)) => {
                        out.push('-');
                        out.extend(std::iter::repeat_n(fill, pad));
                        out.push_str(digits);
                    }
                    _ => {
                        out.extend(std::iter::repeat_n(fill, pad));
                        out.push_str(&text);
                    }
                }
            }
        }
    }
    Ok(out)
}

impl CallbackConfig {
    /// The metric the callback watches, if it watches one (a checkpoint only when it saves
    /// the best).
    pub fn monitor(&self) -> Option<&str> {
        match self {
            CallbackConfig::EarlyStopping(c) => Some(&c.monitor),
            CallbackConfig::ReduceLrOnPlateau(c) => Some(&c.monitor),
            CallbackConfig::ModelCheckpoint(c) if c.save_best_only => Some(&c.monitor),
            _ => None,
        }
    }

    /// Checks the callback against the metrics training will log (`logged`: "loss",
    /// "accuracy", "val_loss", …): a monitor or a checkpoint path field that names another
    /// never fires, so it is an error; returns (field, message).
    pub fn check_metrics(&self, logged: &[&str]) -> Result<(), (&'static str, String)> {
        let known = |name: &str| name == "learning_rate" || logged.contains(&name);
        if let Some(monitor) = self.monitor().filter(|m| !known(m)) {
            let hint = match monitor.strip_prefix("val_") {
                Some(_) if !logged.iter().any(|m| m.starts_with("val_")) => {
                    " (val_ metrics need fit.validation_split > 0)"
                }
                _ => "",
            };
            return Err((
                "monitor",
                format!(
                    "'{monitor}' is never logged; this training logs {}, learning_rate{hint}",
                    logged.join(", ")
                ),
            ));
        }
        if let CallbackConfig::ModelCheckpoint(c) = self {
            let path = c.filepath.to_string_lossy();
            fill_template(&path, 1, |name| known(name).then_some(0.0))
                .map_err(|m| ("filepath", m))?;
        }
        Ok(())
    }

    /// Checks values that parse but make no sense; returns the message.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            CallbackConfig::ReduceLrOnPlateau(c) if !(c.factor > 0.0 && c.factor < 1.0) => {
                Err(format!("factor must be in (0, 1), got {}", c.factor))
            }
            CallbackConfig::ModelCheckpoint(c) if c.filepath.as_os_str().is_empty() => {
                Err("filepath must not be empty".into())
            }
            CallbackConfig::CsvLogger(c) if c.filename.as_os_str().is_empty() => {
                Err("filename must not be empty".into())
            }
            CallbackConfig::LearningRateScheduler(SchedulerConfig {
                schedule: Schedule::Step { every: 0, .. },
                ..
            }) => Err("schedule.every must be at least 1".into()),
            CallbackConfig::LearningRateScheduler(SchedulerConfig {
                schedule: Schedule::Cosine { epochs: 0, .. },
                ..
            }) => Err("schedule.epochs must be at least 1".into()),
            CallbackConfig::LearningRateScheduler(SchedulerConfig {
                schedule:
                    Schedule::Step { factor: rate, .. }
                    | Schedule::Exponential { rate }
                    | Schedule::Cosine { min_lr: rate, .. },
                ..
            }) if !(rate.is_finite() && *rate >= 0.0) => Err(format!(
                "the schedule's factor, rate or min_lr must be a finite number ≥ 0, got {rate}"
            )),
            CallbackConfig::ModelCheckpoint(c) => {
                template_parts(&c.filepath.to_string_lossy())
                    .map_err(|m| format!("filepath: {m}"))?;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_paths_fill_in_as_keras_does() {
        let logs = |name: &str| match name {
            "val_loss" => Some(0.123456),
            "loss" => Some(-2.5),
            _ => None,
        };
        for (template, filled) in [
            ("m-{epoch}.safetensors", "m-7.safetensors"),
            ("m-{epoch:03d}.safetensors", "m-007.safetensors"),
            ("m-{epoch:3d}", "m-  7"),
            ("{epoch:02d}-{val_loss:.2f}", "07-0.12"),
            ("{val_loss:.4f}", "0.1235"),
            ("{loss:06.2f}", "-02.50"),
            ("{val_loss}", "0.123456"),
            ("plain.safetensors", "plain.safetensors"),
        ] {
            assert_eq!(
                fill_template(template, 7, logs).unwrap(),
                filled,
                "{template}"
            );
        }
        for (template, says) in [
            ("m-{epoch", "unclosed '{'"),
            ("m-}{epoch}", "unmatched '}'"),
            ("m-{epoch:x}", "not a field"),
            ("m-{epoch:.f}", "not a field"),
            ("m-{}", "not a field"),
            ("m-{a b}", "not a field"),
            ("m-{accuracy}", "'{accuracy}' names no metric"),
        ] {
            let err = fill_template(template, 1, logs).unwrap_err();
            assert!(err.contains(says), "{template}: {err}");
        }
    }
}
