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
    CsvLogger, EarlyStopping, LearningRateScheduler, Mode, ReduceLrOnPlateau, Schedule,
    TerminateOnNan,
};
use crate::train::Callback;

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
/// [`crate::io::ModelCheckpoint`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCheckpointConfig {
    /// `{epoch}` is replaced by the epoch number.
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

impl CallbackConfig {
    /// A fresh callback, or None for a checkpoint: saving is [`crate::io`]'s, which builds it
    /// (see `io::callbacks_of`).
    pub fn to_callback(&self) -> Option<Box<dyn Callback>> {
        Some(match self {
            CallbackConfig::EarlyStopping(c) => Box::new(c.clone()),
            CallbackConfig::ModelCheckpoint(_) => return None,
            CallbackConfig::ReduceLrOnPlateau(c) => Box::new(c.clone()),
            CallbackConfig::LearningRateScheduler(c) => Box::new(match c.initial_learning_rate {
                Some(lr) => LearningRateScheduler::starting_at(c.schedule.clone(), lr),
                None => LearningRateScheduler::new(c.schedule.clone()),
            }),
            CallbackConfig::CsvLogger(c) => Box::new(c.clone()),
            CallbackConfig::TerminateOnNan(c) => Box::new(c.clone()),
        })
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
            _ => Ok(()),
        }
    }
}
