//! What trials train: a model file on its data set, or a table model on a CSV file's rows.
//! Both read their data once, for every trial.

use std::path::{Path, PathBuf};

use super::search::Trainer;
use crate::data::table::Table;
use crate::error::{Error, Result};
use crate::metrics::Scoring;
use crate::model::{split_point, Callback, FitOptions, Model, Verbosity};
use crate::spec::{CallbackConfig, DataSpec, Dataset, ModelSpec};
use crate::tabular::{TabularModel, TabularOptions, TabularScores, Task};

/// Trials of a model file: its data set, read once.
pub struct ModelFileTrainer {
    /// The model file, for error messages.
    pub path: PathBuf,
    pub data: Dataset,
    /// The `[data]` section, with what prediction needs recorded (classes, input range,
    /// the absolute folder), saved with the best model.
    pub data_spec: DataSpec,
    pub objective: String,
}

/// A model-file trial in training.
pub struct ModelTrial {
    pub spec: ModelSpec,
    pub model: Model,
    pub epochs_done: usize,
}

impl ModelFileTrainer {
    /// The trial's model file, parsed and checked like any model file.
    pub fn spec_of(&self, config: &toml::Table) -> Result<ModelSpec> {
        let text = toml::to_string(config)
            .map_err(|e| Error::invalid(format!("cannot write the trial's model file: {e}")))?;
        let mut spec = ModelSpec::parse(&text, &self.path).map_err(without_line)?;
        spec.data = Some(self.data_spec.clone());
        crate::jobs::train_file::fix_schedule_starts(&mut spec);
        Ok(spec)
    }

    /// The objective of the model as it is now, on the validation split, when it is a
    /// validation metric.
    fn validation_objective(&self, trial: &ModelTrial) -> Result<Option<f64>> {
        let n = self.data.x_train.rows();
        let at = split_point(n, trial.spec.fit.validation_split)?;
        if at == n {
            return Ok(None);
        }
        let x = self.data.x_train.slice_rows(at, n)?;
        let y = self.data.y_train.slice_rows(at, n)?;
        let evaluation = trial.model.evaluate(&x, &y, trial.spec.fit.batch_size)?;
        Ok(match self.objective.as_str() {
            "val_loss" => Some(evaluation.loss),
            "val_accuracy" => evaluation.accuracy,
            _ => None,
        })
    }

    /// The test set's loss and (when compiled with it) accuracy.
    pub fn test(&self, trial: &ModelTrial) -> Result<crate::model::Evaluation> {
        trial.model.evaluate(
            &self.data.x_test,
            &self.data.y_test,
            trial.spec.fit.batch_size,
        )
    }

    /// Saves a trained trial as `ember train --output` would.
    pub fn save(&self, trial: &ModelTrial, file: &Path) -> Result<()> {
        let mut fit = trial.spec.fit.clone();
        fit.epochs = trial.epochs_done;
        crate::io::save_with(
            file,
            &trial.model,
            &fit,
            trial.spec.data.as_ref(),
            &trial.spec.callbacks,
            trial.epochs_done,
        )
    }
}

impl Trainer for ModelFileTrainer {
    type State = ModelTrial;

    fn start(&self, config: &toml::Table) -> Result<ModelTrial> {
        let spec = self.spec_of(config)?;
        let model = spec.build()?;
        if let Some(classes) = model.classes() {
            self.data.check_labels(classes)?;
        }
        model.check_targets(&[&self.data.y_train], "the training labels")?;
        Ok(ModelTrial {
            spec,
            model,
            epochs_done: 0,
        })
    }

    fn epochs_done(&self, trial: &ModelTrial) -> usize {
        trial.epochs_done
    }

    fn train(&self, trial: &mut ModelTrial, epochs: usize) -> Result<Vec<f64>> {
        let options = FitOptions {
            epochs,
            initial_epoch: trial.epochs_done,
            verbose: Verbosity::Silent,
            ..trial.spec.fit.options()
        };
        // The file's callbacks, but none that writes a file: every trial would write the
        // same one (the user's), parallel trials at once.
        let mut run = trial.spec.clone();
        run.callbacks.retain(|c| {
            !matches!(
                c,
                CallbackConfig::ModelCheckpoint(_) | CallbackConfig::CsvLogger(_)
            )
        });
        let mut callbacks: Vec<Box<dyn Callback>> = crate::callbacks::from_spec(&run);
        let mut hooks: Vec<&mut dyn Callback> = callbacks
            .iter_mut()
            .map(|c| c.as_mut() as &mut dyn Callback)
            .collect();
        let history = trial.model.fit_with_callbacks(
            &self.data.x_train,
            &self.data.y_train,
            &options,
            &mut hooks,
        )?;
        trial.epochs_done = history.last().map_or(trial.epochs_done, |e| e.epoch);
        let mut values = history.metric(&self.objective);
        // Early stopping that restored the best weights leaves the model scoring what the
        // best epoch did, not the last: the trial's value is the model's.
        let restored =
            history.stopped_early
                && trial.spec.callbacks.iter().any(
                    |c| matches!(c, CallbackConfig::EarlyStopping(e) if e.restore_best_weights),
                );
        if let (true, Some(last)) = (restored, values.last_mut()) {
            if let Some(value) = self.validation_objective(trial)? {
                *last = value;
            }
        }
        Ok(values)
    }
}

/// A trial's model file is written by the search: the line of an error in it means nothing
/// to the user, whose file is laid out otherwise; the field says where.
pub fn without_line(error: Error) -> Error {
    match error {
        Error::Spec {
            path,
            field,
            message,
            ..
        } => Error::Spec {
            path,
            line: None,
            field,
            message,
        },
        other => other,
    }
}

/// Trials of a table model: the table, its training and test rows, read and split once.
pub struct TableTrainer {
    pub table: Table,
    pub train_rows: Vec<usize>,
    pub test_rows: Vec<usize>,
    pub task: Task,
    pub objective: String,
}

/// A table trial: its options, and once trained its model.
pub struct TableTrial {
    pub options: TabularOptions,
    pub model: Option<TabularModel>,
}

impl TableTrainer {
    /// The metrics a table model logs, then scikit-learn's scorers that fit its task
    /// (measured on the validation rows after each epoch when one is the objective).
    pub fn logged(task: Task) -> Vec<&'static str> {
        let mut logged = match task {
            Task::Regression => vec!["loss", "val_loss"],
            _ => vec!["loss", "accuracy", "val_loss", "val_accuracy"],
        };
        let scorers = Scoring::for_task(task == Task::Regression, task == Task::Binary);
        logged.extend(scorers.map(Scoring::name));
        logged
    }

    /// Held-out scores of a trained trial on the test rows.
    pub fn test(&self, trial: &TableTrial) -> Result<TabularScores> {
        let model = trial
            .model
            .as_ref()
            .ok_or_else(|| Error::invalid("the trial has not been trained"))?;
        model.score(&self.table, &self.test_rows, None)
    }
}

impl Trainer for TableTrainer {
    type State = TableTrial;

    fn start(&self, config: &toml::Table) -> Result<TableTrial> {
        let options: TabularOptions =
            toml::Value::Table(config.clone())
                .try_into()
                .map_err(|e: toml::de::Error| {
                    Error::invalid(format!("the trial's table options: {}", e.message().trim()))
                })?;
        Ok(TableTrial {
            options,
            model: None,
        })
    }

    /// None that training goes on from: every stretch starts again.
    fn epochs_done(&self, _: &TableTrial) -> usize {
        0
    }

    /// Trains from the start each time (table models are small): early stopping restores
    /// the best epoch's weights, so the values end at that epoch.
    fn train(&self, trial: &mut TableTrial, epochs: usize) -> Result<Vec<f64>> {
        let mut options = trial.options.clone();
        options.epochs = epochs;
        let scoring = Scoring::from_name(&self.objective).ok();
        let (mut model, history, scored) = TabularModel::fit_scored(
            &self.table,
            &self.train_rows,
            self.task,
            &options,
            Verbosity::Silent,
            scoring,
        )?;
        // Saved with the trial's options: its epochs are the budget, not this stretch's.
        model.options = trial.options.clone();
        let mut values = match scoring {
            Some(_) => scored,
            None => history.metric(&self.objective),
        };
        if history.stopped_early {
            let losses = history.metric("val_loss");
            let best = (0..losses.len())
                .reduce(|b, i| if losses[i] < losses[b] { i } else { b })
                .unwrap_or(0);
            values.truncate(best + 1);
        }
        trial.model = Some(model);
        Ok(values)
    }
}
