//! Training a table model on a CSV file: the table read and split (stratified for
//! classification), the model trained and scored on the held-out rows; optionally saved
//! with everything prediction needs, and a report written.

use std::path::{Path, PathBuf};

use super::checks;
use super::outputs::OutputFiles;
use super::table::{self, TableData};
use crate::data::table::Table;
use crate::error::Result;
use crate::model::{split_point, History, Verbosity};
use crate::tabular::{TabularModel, TabularOptions, TabularScores, Task};

/// What to train, on what, and what to write.
#[derive(Clone, Debug)]
pub struct TrainTableOptions {
    /// The CSV file.
    pub file: PathBuf,
    pub options: TabularOptions,
    /// Each `Some` replaces the setting of `options`.
    pub epochs: Option<usize>,
    pub batch_size: Option<usize>,
    pub learning_rate: Option<f32>,
    pub validation_split: Option<f32>,
    /// The fraction of the rows held out for the test.
    pub test_size: f32,
    pub verbose: Verbosity,
    /// Save the trained model to this file (.safetensors).
    pub output: Option<PathBuf>,
    /// Write the history and evaluation into this folder.
    pub report: Option<PathBuf>,
}

/// What [`train_table`] reports as it goes.
pub enum TrainTableEvent<'a> {
    /// The table is read; its target is not yet looked for.
    Read(&'a Table),
    /// The target is found, the rows whose target is missing left out.
    Loaded(&'a TableData),
    /// The rows are split; training starts.
    Split {
        task: Task,
        /// Training rows, those held out for validation among them, and test rows.
        train: usize,
        validation: usize,
        test: usize,
    },
    /// The model is trained.
    Trained {
        model: &'a TabularModel,
        history: &'a History,
    },
    Saved(&'a Path),
    /// The report's files were written.
    Report {
        files: usize,
        dir: &'a Path,
    },
}

impl TrainTableEvent<'_> {
    /// The event as the command line says it, lines ending in newlines (none when there is
    /// nothing to say): `job` is what was asked for.
    pub fn text(&self, job: &TrainTableOptions) -> String {
        match self {
            TrainTableEvent::Read(t) => crate::report::rejected_text(t),
            TrainTableEvent::Loaded(data) => super::table::missing_target_text(data),
            TrainTableEvent::Split {
                task,
                train,
                validation,
                test,
            } => format!(
                "{}: {} of '{}' on {train} rows ({validation} held out for validation), testing on {test} (seed {})\n",
                job.file.display(),
                crate::report::task_name(*task),
                job.options.target,
                job.options.seed
            ),
            TrainTableEvent::Trained { model, history } => {
                let mut out = String::new();
                for (column, reason) in &model.preprocessor.skipped {
                    out += &format!("  not a feature: {column} ({reason})\n");
                }
                out + &format!(
                    "  {} feature columns → {} inputs; trained {}{}\n",
                    model.preprocessor.features.len(),
                    model.preprocessor.width(),
                    crate::report::count(history.epochs.len(), "epoch"),
                    if history.stopped_early {
                        " (early stopping, best weights restored)"
                    } else {
                        ""
                    }
                )
            }
            TrainTableEvent::Saved(output) => format!("Saved the model to {}\n", output.display()),
            TrainTableEvent::Report { files, dir } => {
                format!("Report: {files} files in {}\n", dir.display())
            }
        }
    }
}

/// A trained table model and its scores on the test rows.
pub struct TrainedTable {
    pub model: TabularModel,
    pub history: History,
    pub scores: TabularScores,
}

impl TrainedTable {
    /// What `ember train --csv` ends with: the test rows' scores, then a private model's
    /// guarantee, `Privacy: epsilon = X, delta = D`.
    pub fn closing_text(&self) -> Result<String> {
        let mut text = crate::report::scores_text(&self.scores, "Test");
        if let Some(privacy) = self.model.model.privacy() {
            text += &privacy.guarantee_line()?;
            text.push('\n');
        }
        Ok(text)
    }
}

/// Trains a table model as `job` says; `on_event` hears of each step as it ends. The
/// settings and the files to write are checked before the table is read.
pub fn train_table(
    job: &TrainTableOptions,
    mut on_event: impl FnMut(TrainTableEvent),
) -> Result<TrainedTable> {
    checks::learning_rate(job.learning_rate)?;
    checks::validation_split(job.validation_split)?;
    checks::test_size(job.test_size)?;
    let outputs = OutputFiles {
        output: job.output.clone(),
        checkpoint: None,
        report: job.report.clone(),
    };
    outputs.check(&[&job.file], None)?;
    let mut options = job.options.clone();
    if let Some(epochs) = job.epochs {
        options.epochs = epochs;
    }
    if let Some(batch_size) = job.batch_size {
        options.batch_size = batch_size;
    }
    if let Some(rate) = job.learning_rate {
        options.learning_rate = rate;
    }
    if let Some(split) = job.validation_split {
        options.validation_split = split;
    }
    let options = &options;
    crate::model::check_epochs(options.epochs)?;
    let data = table::load(&job.file, options, |t| on_event(TrainTableEvent::Read(t)))?;
    on_event(TrainTableEvent::Loaded(&data));
    let (train, test) = table::split(&data, job.test_size, options.seed)?;
    on_event(TrainTableEvent::Split {
        task: data.task,
        train: train.len(),
        validation: train.len() - split_point(train.len(), options.validation_split)?,
        test: test.len(),
    });
    let (model, history) = TabularModel::fit(&data.table, &train, data.task, options, job.verbose)?;
    on_event(TrainTableEvent::Trained {
        model: &model,
        history: &history,
    });
    let scores = model.score(&data.table, &test, None)?;
    if let Some(output) = &job.output {
        model.save(output, history.epochs.len())?;
        on_event(TrainTableEvent::Saved(output));
    }
    if let Some(dir) = &job.report {
        let mut files = crate::report::write_history(dir, &history)?;
        files.extend(crate::report::write_evaluation(
            dir,
            &scores,
            scores.confusion_matrix.as_ref(),
        )?);
        on_event(TrainTableEvent::Report {
            files: files.len(),
            dir,
        });
    }
    Ok(TrainedTable {
        model,
        history,
        scores,
    })
}
