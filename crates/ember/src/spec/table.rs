//! The `[table]` section of a saved table model: what a table is to be learnt as, and how.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::preprocess::PreprocessOptions;
use crate::data::table::CsvOptions;
use crate::error::{Error, Result};
use crate::model::MAX_EPOCHS;

/// What the model predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Two classes: one sigmoid output, binary cross-entropy.
    Binary,
    /// Several classes: softmax outputs, cross-entropy.
    Multiclass,
    /// A number: one linear output, mean squared error.
    Regression,
}

impl Task {
    /// The task named `value` (binary, multiclass or regression), or why not (`--task`).
    pub fn parse(value: &str) -> std::result::Result<Task, String> {
        match value {
            "binary" => Ok(Task::Binary),
            "multiclass" => Ok(Task::Multiclass),
            "regression" => Ok(Task::Regression),
            _ => Err(format!(
                "'{value}' is not a task: binary, multiclass or regression"
            )),
        }
    }
}

/// Everything that decides how a table becomes a trained model. Defaults: a 64-32 ReLU MLP
/// without dropout or L2, Adam 0.001, batch 32, up to 500 epochs with early stopping
/// (patience 20, best weights restored) on the last 20% of the shuffled training rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TabularOptions {
    pub target: String,
    /// None infers it from the target column.
    pub task: Option<Task>,
    /// Train a regression on log(target) (scores are then on the log scale).
    pub log_target: bool,
    pub csv: CsvOptions,
    pub preprocess: PreprocessOptions,
    pub hidden: Vec<usize>,
    /// Dropout rate after each hidden layer (0: none).
    pub dropout: f32,
    /// L2 penalty on every Dense kernel (Keras `kernel_regularizer=l2(F)`; 0: none).
    pub l2: f32,
    pub learning_rate: f32,
    pub batch_size: usize,
    pub epochs: usize,
    pub patience: usize,
    pub validation_split: f32,
    /// Weight classes inversely to their frequency in the training rows (scikit-learn's
    /// "balanced": n / (classes · count)), for imbalanced targets.
    pub balanced_class_weights: bool,
    pub seed: u64,
    /// Train with DP-SGD (`[privacy]` in the options file, or `ember train --csv … --dp-epsilon
    /// E`): σ is planned for `epochs`, so give the epochs the run needs (early stopping may
    /// end it sooner, at a smaller ε).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privacy: Option<crate::privacy::Privacy>,
}

impl Default for TabularOptions {
    fn default() -> Self {
        TabularOptions {
            target: String::new(),
            task: None,
            log_target: false,
            csv: CsvOptions::default(),
            preprocess: PreprocessOptions::default(),
            hidden: vec![64, 32],
            dropout: 0.0,
            l2: 0.0,
            learning_rate: 0.001,
            batch_size: 32,
            epochs: 500,
            patience: 20,
            validation_split: 0.2,
            balanced_class_weights: false,
            seed: 1,
            privacy: None,
        }
    }
}

impl TabularOptions {
    /// Table-model settings from a TOML file (`ember train --csv … --options FILE`); errors
    /// name the file, line and field.
    pub fn from_file(path: &Path) -> Result<TabularOptions> {
        let text = crate::read::text(path, crate::read::Limit::SETTINGS)?;
        let options: TabularOptions = toml::from_str(&text).map_err(|e| Error::Spec {
            path: path.to_path_buf(),
            line: e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1),
            field: "options".into(),
            message: e.message().trim().to_string(),
        })?;
        if !(1..=MAX_EPOCHS).contains(&options.epochs) {
            return Err(Error::Spec {
                path: path.to_path_buf(),
                line: None,
                field: "epochs".into(),
                message: format!("must be 1 to {MAX_EPOCHS}, got {}", options.epochs),
            });
        }
        if options.hidden.contains(&0)
            || !(1..=crate::model::MAX_BATCH_SIZE).contains(&options.batch_size)
        {
            return Err(Error::Spec {
                path: path.to_path_buf(),
                line: None,
                field: "options".into(),
                message: format!(
                    "hidden sizes must be positive and batch_size 1 to {}",
                    crate::model::MAX_BATCH_SIZE
                ),
            });
        }
        if let Some(Err((field, message))) = options.privacy.as_ref().map(|p| p.validate()) {
            return Err(Error::Spec {
                path: path.to_path_buf(),
                line: None,
                field,
                message,
            });
        }
        Ok(options)
    }
}
