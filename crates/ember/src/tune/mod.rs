//! Hyperparameter search (`ember tune`): a model file's `[tune]` section names the fields to
//! search and how; trials train copies of the file with other values, and the best one is
//! trained again, saved and tested once.
//!
//! ```toml
//! [tune]
//! algorithm = "hyperband"       # random | grid | tpe | hyperband
//! objective = "val_accuracy"    # any logged metric
//! direction = "maximize"
//! max_trials = 20               # also max_seconds, max_epochs (the per-trial budget)
//!
//! [tune.space]
//! "layers[0].units" = { choice = [64, 128, 256, 512] }
//! "compile.optimizer.learning_rate" = { log_uniform = [0.0001, 0.01] }
//! "layers[1]" = { optional = true }   # a layer present or not
//! ```

pub mod hyperband;
pub mod report;
pub mod sampler;
pub mod search;
pub mod space;
pub mod study;
pub mod tpe;
pub mod trainers;
pub mod tuning;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use sampler::Algorithm;
pub use search::{Event, Run, SearchTimes, Trainer};
pub use space::{Distribution, Param, Space, Value};
pub use study::{FinalRecord, Study, StudyHeader, TrialRecord, TrialState};
pub use tuning::{tune_model_file, tune_table, Outcome, TableSplit, TuneOptions};

use crate::error::{Error, Result};

/// Whether the objective is better high or low.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Maximize,
    Minimize,
}

/// The largest grid a search lists (a million points).
const MAX_GRID: u64 = 1_000_000;
/// The most trials a study may ask for.
pub(crate) const MAX_TRIALS: usize = 1_000_000;
/// The longest time limit a study may have.
const MAX_SECONDS: f64 = 1e9;
/// The most epochs a trial may be given (and Hyperband's largest factor).
const MAX_EPOCHS: usize = 1_000_000;

/// The `[tune]` section as written (the space stays a table until it is checked).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TuneSection {
    #[serde(default = "default_algorithm")]
    algorithm: Algorithm,
    objective: Option<String>,
    direction: Option<Direction>,
    #[serde(default = "default_trials")]
    max_trials: usize,
    max_seconds: Option<f64>,
    max_epochs: Option<usize>,
    /// Hyperband's halving rate: a rung keeps 1/factor of its trials.
    #[serde(default = "default_factor")]
    factor: usize,
    /// The sampler's seed (trials train with the file's own fit.seed).
    #[serde(default)]
    seed: u64,
    space: toml::Table,
}

fn default_algorithm() -> Algorithm {
    Algorithm::Random
}
fn default_trials() -> usize {
    20
}
fn default_factor() -> usize {
    3
}

/// A checked `[tune]` section.
#[derive(Clone, Debug, PartialEq)]
pub struct TuneSettings {
    pub algorithm: Algorithm,
    /// The logged metric to optimise (val_accuracy, val_loss, …).
    pub objective: String,
    pub direction: Direction,
    pub max_trials: usize,
    /// No trial starts after this many seconds (running ones finish).
    pub max_seconds: Option<f64>,
    /// Epochs per trial (Hyperband: the most a trial gets); None: the file's fit.epochs.
    pub max_epochs: Option<usize>,
    /// The file's own epochs, when max_epochs is not given.
    pub fit_epochs: usize,
    pub factor: usize,
    pub seed: u64,
    pub space: Space,
}

impl TuneSettings {
    /// Reads a `[tune]` section. `logged` are the metrics trials log (the objective must
    /// be one); errors are (field, message).
    pub fn parse(
        section: &toml::Table,
        logged: &[&str],
        fit_epochs: usize,
    ) -> std::result::Result<TuneSettings, (String, String)> {
        let raw: TuneSection =
            serde_path_to_error::deserialize(toml::Value::Table(section.clone())).map_err(|e| {
                let path = e.path().to_string();
                let field = match path.as_str() {
                    "." => "tune".to_string(),
                    p => format!("tune.{p}"),
                };
                (field, e.into_inner().message().trim().to_string())
            })?;
        let objective = match raw.objective {
            Some(o) => o,
            None if logged.contains(&"val_accuracy") => "val_accuracy".into(),
            None if logged.contains(&"val_loss") => "val_loss".into(),
            None => "loss".into(),
        };
        if !logged.contains(&objective.as_str()) {
            return Err((
                "tune.objective".into(),
                format!(
                    "'{objective}' is not logged by this model (it logs: {})",
                    logged.join(", ")
                ),
            ));
        }
        let direction = raw.direction.unwrap_or(
            // Accuracies and scikit-learn's scorers (losses negated) are better high.
            match objective.contains("accuracy")
                || crate::metrics::Scoring::from_name(&objective).is_ok()
            {
                true => Direction::Maximize,
                false => Direction::Minimize,
            },
        );
        if !(1..=MAX_TRIALS).contains(&raw.max_trials) {
            return Err((
                "tune.max_trials".into(),
                format!("must be from 1 to {MAX_TRIALS}, got {}", raw.max_trials),
            ));
        }
        if let Some(s) = raw.max_seconds.filter(|s| !(*s > 0.0 && *s <= MAX_SECONDS)) {
            return Err((
                "tune.max_seconds".into(),
                format!("must be a positive number of at most {MAX_SECONDS} (30 years), got {s}"),
            ));
        }
        if let Some(e) = raw.max_epochs.filter(|e| !(1..=MAX_EPOCHS).contains(e)) {
            return Err((
                "tune.max_epochs".into(),
                format!("must be from 1 to {MAX_EPOCHS}, got {e}"),
            ));
        }
        if !(2..=MAX_EPOCHS).contains(&raw.factor) {
            return Err((
                "tune.factor".into(),
                format!("must be from 2 to {MAX_EPOCHS}, got {}", raw.factor),
            ));
        }
        let space = Space::parse(&raw.space)?;
        if raw.algorithm == Algorithm::Grid {
            match sampler::grid_size(&space) {
                Err(name) => {
                    return Err((
                        format!("tune.space.\"{name}\""),
                        "a grid search needs countable values: use choice or int, not uniform or log_uniform".into(),
                    ))
                }
                Ok(n) if n > MAX_GRID => {
                    return Err((
                        "tune.space".into(),
                        format!("the grid has {n} points, more than {MAX_GRID}: use random or tpe"),
                    ))
                }
                Ok(_) => {}
            }
        }
        Ok(TuneSettings {
            algorithm: raw.algorithm,
            objective,
            direction,
            max_trials: raw.max_trials,
            max_seconds: raw.max_seconds,
            max_epochs: raw.max_epochs,
            fit_epochs,
            factor: raw.factor,
            seed: raw.seed,
            space,
        })
    }

    /// Epochs a trial trains (Hyperband: the most it trains).
    pub fn budget(&self) -> usize {
        self.max_epochs.unwrap_or(self.fit_epochs).max(1)
    }

    /// Whether `a` is a better objective value than `b`.
    pub fn better(&self, a: f64, b: f64) -> bool {
        match self.direction {
            Direction::Maximize => a > b,
            Direction::Minimize => a < b,
        }
    }
}

/// The study's best trial: the best objective at its last epoch, the lowest number on ties.
pub fn best_trial<'a>(study: &'a Study, settings: &TuneSettings) -> Option<&'a TrialRecord> {
    let mut best: Option<&TrialRecord> = None;
    for t in study.trials.values() {
        let Some(v) = t.value() else { continue };
        if best
            .and_then(TrialRecord::value)
            .is_none_or(|b| settings.better(v, b))
        {
            best = Some(t);
        }
    }
    best
}

/// The model file as a TOML table, without its `[tune]` section (which is returned apart).
pub fn split_file(text: &str, path: &Path) -> Result<(toml::Table, Option<toml::Table>)> {
    let mut doc: toml::Table = toml::from_str(text).map_err(|e| Error::Spec {
        path: path.to_path_buf(),
        line: e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1),
        field: "syntax".into(),
        message: e.message().trim().to_string(),
    })?;
    let tune = match doc.remove("tune") {
        Some(toml::Value::Table(t)) => Some(t),
        Some(_) => {
            return Err(Error::Spec {
                path: path.to_path_buf(),
                line: None,
                field: "tune".into(),
                message: "must be a table: [tune]".into(),
            })
        }
        None => None,
    };
    Ok((doc, tune))
}
