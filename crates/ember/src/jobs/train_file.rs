//! Training a model file: its spec (or a checkpoint to resume) with the caller's changes,
//! its data read and checked against the model, the model fitted with the file's callbacks
//! (and a checkpoint every epoch), then saved, reported and assessed on the test set.

use std::path::{Path, PathBuf};

use super::checks;
use super::outputs::OutputFiles;
use crate::callbacks::ModelCheckpoint;
use crate::data::dataset::{DataSpec, Dataset};
use crate::error::{Error, Result};
use crate::io;
use crate::model::{split_point, Assessment, Callback, FitOptions, History, Model, Verbosity};
use crate::spec::{CallbackConfig, ModelSpec};
use crate::{Metric, Optimizer};

/// The model file used when none is given: the Keras MNIST reference script.
pub const DEFAULT_MODEL: &str = "models/mnist-mlp.toml";

/// The reference model file, built in: without a model file, training and summaries work
/// from any folder (training then reads `data/mnist` there, or the data folder given).
const REFERENCE_MODEL: &str = include_str!("../../../../models/mnist-mlp.toml");

/// The model file `given`, or the default: models/mnist-mlp.toml where it exists, else the
/// built-in copy of it (named by that path).
pub fn read_model_file(given: Option<PathBuf>) -> Result<(ModelSpec, PathBuf)> {
    let defaulted = given.is_none();
    let path = given.unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL));
    if defaulted && !path.exists() {
        return Ok((ModelSpec::parse(REFERENCE_MODEL, &path)?, path));
    }
    Ok((ModelSpec::from_file(&path)?, path))
}

/// The Keras summary table of a model file or a saved model (default: as
/// [`read_model_file`] finds it); what a FAQ index, a sentence encoder, a language model or
/// a recommender holds, in a line.
pub fn summary(given: Option<PathBuf>) -> Result<String> {
    let defaulted = given.is_none();
    let path = given.unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL));
    if defaulted && !path.exists() {
        return read_model_file(None)?.0.summary();
    }
    if crate::saved::SavedModel::holds_no_network(&path)? {
        let saved = crate::saved::SavedModel::load(&path)?;
        if let Some(line) = crate::report::saved::description(&saved, None) {
            return Ok(format!("{}: {line}\n", path.display()));
        }
    }
    io::summary_of(&path)
}

/// Where training starts.
pub enum Start {
    /// A model file, parsed, read from `path` (relative data folders are taken from its
    /// folder).
    File { spec: Box<ModelSpec>, path: PathBuf },
    /// A checkpoint or saved model, trained on from where it stopped.
    Resume(PathBuf),
}

/// What to train and how; every `Some` replaces the model file's setting.
pub struct TrainFileOptions {
    pub start: Start,
    /// The data folder, instead of the model file's.
    pub data: Option<PathBuf>,
    /// The final epoch's number.
    pub epochs: Option<usize>,
    pub batch_size: Option<usize>,
    pub seed: Option<u64>,
    pub validation_split: Option<f32>,
    pub optimizer: Option<Optimizer>,
    pub metrics: Option<Vec<Metric>>,
    /// The optimizer's rate; a resumed model goes on from its saved state at this rate.
    pub learning_rate: Option<f32>,
    /// The per-epoch output (default: the fit options' default).
    pub verbose: Option<Verbosity>,
    pub outputs: OutputFiles,
}

/// What [`train_file`] reports as it goes.
pub enum TrainFileEvent<'a> {
    /// Images of the data set that could not be read, left out, each with the reason.
    Skipped(&'a [(PathBuf, String)]),
    /// The model has already been trained for the epochs asked for: none will run.
    AlreadyTrained {
        epochs_done: usize,
    },
    /// Training starts (or resumes, after `epochs_done` epochs).
    Started {
        epochs_done: usize,
        train: usize,
        validation: usize,
        test: usize,
        seed: u64,
    },
    /// A callback ended training after this epoch.
    StoppedEarly {
        epoch: usize,
    },
    Saved(&'a Path),
    /// The report's files were written.
    Report {
        files: usize,
        dir: &'a Path,
    },
}

impl TrainFileEvent<'_> {
    /// The event as the command line says it: the skipped images as a warning (for
    /// stderr), the rest a line each; `source` names the model file or checkpoint.
    pub fn text(&self, source: &Path) -> String {
        match *self {
            TrainFileEvent::Skipped(skipped) => crate::report::skipped_text(skipped),
            TrainFileEvent::AlreadyTrained { epochs_done } => format!(
                "{} has already been trained for {epochs_done} epochs; pass --epochs N (N > {epochs_done}) to train further\n",
                source.display()
            ),
            TrainFileEvent::Started {
                epochs_done,
                train,
                validation,
                test,
                seed,
            } => format!(
                "{} {} on {train} samples, validating on {validation}, testing on {test} ({}, seed {seed})\n",
                if epochs_done > 0 { "Resuming" } else { "Training" },
                source.display(),
                crate::report::threads_text(crate::num_threads()),
            ),
            TrainFileEvent::StoppedEarly { epoch } => {
                format!("Training stopped early after epoch {epoch}\n")
            }
            TrainFileEvent::Saved(file) => format!("Saved the model to {}\n", file.display()),
            TrainFileEvent::Report { files, dir } => {
                format!("Report: {files} files in {}\n", dir.display())
            }
        }
    }
}

/// A trained model and its assessment on the test set.
pub struct TrainedFile {
    pub model: Model,
    pub spec: ModelSpec,
    pub history: History,
    pub assessment: Assessment,
}

impl TrainedFile {
    /// What `ember train` ends with: the test set's assessment, then a private model's
    /// guarantee, `Privacy: epsilon = X, delta = D`.
    pub fn closing_text(&self) -> Result<String> {
        let mut text = crate::report::assessment_text(&self.assessment, &[], false);
        if let Some(privacy) = self.model.privacy() {
            text += &privacy.guarantee_line()?;
            text.push('\n');
        }
        Ok(text)
    }
}

/// Trains as `job` says; `on_event` hears of each step as it happens.
pub fn train_file(
    job: TrainFileOptions,
    mut on_event: impl FnMut(TrainFileEvent),
) -> Result<TrainedFile> {
    checks::learning_rate(job.learning_rate)?;
    checks::validation_split(job.validation_split)?;
    let (mut spec, model, epochs_done, source) =
        match job.start {
            Start::Resume(file) => {
                if job.optimizer.is_some() || job.metrics.is_some() {
                    return Err(Error::invalid(format!(
                    "{} cannot change a resumed model: it goes on with the optimizer and metrics \
                     it was compiled with (train a model file to choose others)",
                    if job.optimizer.is_some() { "the optimizer" } else { "the metrics" }
                )));
                }
                let checkpoint = io::load(&file)?;
                let epochs = checkpoint.epochs_done;
                (checkpoint.spec, Some(checkpoint.model), epochs, file)
            }
            Start::File { spec, path } => (*spec, None, 0, path),
        };
    let resumed = model.is_some().then_some(source.as_path());
    if let Some(epochs) = job.epochs {
        crate::model::check_epochs(epochs)?;
        spec.fit.epochs = epochs;
    }
    if let Some(batch_size) = job.batch_size {
        spec.fit.batch_size = batch_size;
    }
    if let Some(seed) = job.seed {
        spec.fit.seed = seed;
    }
    if let Some(split) = job.validation_split {
        spec.fit.validation_split = split;
    }
    if let Some(optimizer) = job.optimizer {
        spec.compile.optimizer = optimizer;
    }
    if let Some(metrics) = job.metrics {
        spec.compile.metrics = metrics;
    }
    // The changed file must still make sense (a callback watching val_accuracy needs it).
    spec.check(&source)?;
    let (mut data_spec, data_dir) = data_section(&spec, &source, job.data.as_deref())?;
    job.outputs.check(&[&source, &data_dir], resumed)?;
    let data = read_data(&mut data_spec, &data_dir, epochs_done == 0)?;
    if !data.skipped.is_empty() {
        on_event(TrainFileEvent::Skipped(&data.skipped));
    }
    spec.data = Some(data_spec);
    if let Some(rate) = job.learning_rate {
        spec.compile.optimizer.set_learning_rate(rate);
    }
    let mut model = match model {
        Some(m) => m,
        None => {
            fix_schedule_starts(&mut spec);
            spec.build()?
        }
    };
    if let Some(rate) = job.learning_rate {
        model.set_learning_rate(rate)?;
    }

    // Labels that do not fit the model are errors now, naming the data, not after training.
    if let Some(classes) = model.classes() {
        data.check_labels(classes)?;
    }
    for (y, which) in [(&data.y_train, "training"), (&data.y_test, "test")] {
        model.check_targets(
            &[y],
            &format!("the {which} labels in {}", data_dir.display()),
        )?;
    }
    let n = data.x_train.rows();
    let n_train = split_point(n, spec.fit.validation_split)?;
    on_event(match epochs_done >= spec.fit.epochs {
        true => TrainFileEvent::AlreadyTrained { epochs_done },
        false => TrainFileEvent::Started {
            epochs_done,
            train: n_train,
            validation: n - n_train,
            test: data.x_test.rows(),
            seed: spec.fit.seed,
        },
    });

    let mut callbacks: Vec<Box<dyn Callback>> = crate::callbacks::from_spec(&spec);
    if let Some(file) = &job.outputs.checkpoint {
        callbacks.push(Box::new(ModelCheckpoint::new(file).with_context(
            spec.fit.clone(),
            spec.data.clone(),
            spec.callbacks.clone(),
        )));
    }
    let mut hooks: Vec<&mut dyn Callback> = callbacks
        .iter_mut()
        .map(|c| c.as_mut() as &mut dyn Callback)
        .collect();
    let options = FitOptions {
        initial_epoch: epochs_done,
        verbose: job.verbose.unwrap_or_default(),
        ..spec.fit.options()
    };
    let history = model.fit_with_callbacks(&data.x_train, &data.y_train, &options, &mut hooks)?;
    drop(hooks);
    let epochs_now = history.last().map_or(epochs_done, |e| e.epoch);
    if history.stopped_early {
        on_event(TrainFileEvent::StoppedEarly { epoch: epochs_now });
    }
    if let Some(file) = &job.outputs.output {
        io::save_with(
            file,
            &model,
            &spec.fit,
            spec.data.as_ref(),
            &spec.callbacks,
            epochs_now,
        )?;
        on_event(TrainFileEvent::Saved(file));
    }
    let classes = spec.data.as_ref().map_or(&[][..], |d| &d.classes[..]);
    let assessment = model
        .assess(&data.x_test, &data.y_test, spec.fit.batch_size, 5)?
        .named(classes);
    if let Some(dir) = &job.outputs.report {
        let mut files = crate::report::write_history(dir, &history)?;
        files.extend(crate::report::write_evaluation(
            dir,
            &assessment,
            assessment.confusion_matrix.as_ref(),
        )?);
        on_event(TrainFileEvent::Report {
            files: files.len(),
            dir,
        });
    }
    Ok(TrainedFile {
        model,
        spec,
        history,
        assessment,
    })
}

/// The model file's data section and the folder to read it from: `override_dir`, else the
/// section's folder (a relative one taken from the model file's folder).
pub fn data_section(
    spec: &ModelSpec,
    source: &Path,
    override_dir: Option<&Path>,
) -> Result<(DataSpec, PathBuf)> {
    let data_spec = spec.data.clone().ok_or_else(|| Error::Spec {
        path: source.to_path_buf(),
        line: None,
        field: "data".into(),
        message: "there is no [data] section; pass --data DIR with a data set".into(),
    })?;
    let dir = match override_dir {
        Some(dir) => dir.to_path_buf(),
        None => source
            .parent()
            .unwrap_or(Path::new("."))
            .join(&data_spec.dir),
    };
    Ok((data_spec, dir))
}

/// Reads the data set from `dir` and records in `data_spec` what prediction needs to read
/// new inputs as these were read (with the inputs' range, for a model trained from scratch).
pub fn read_data(data_spec: &mut DataSpec, dir: &Path, from_scratch: bool) -> Result<Dataset> {
    let data = data_spec.load_from(dir)?;
    data_spec.record_read(&data, dir);
    if from_scratch {
        data_spec.record_input_range(&data.x_train);
    }
    Ok(data)
}

/// Learning-rate schedules start from the optimizer's rate at the start of training; record
/// it in their configuration so that a resumed run (or a trial trained on at the next rung)
/// continues the same curve.
pub fn fix_schedule_starts(spec: &mut ModelSpec) {
    let lr = spec.compile.optimizer.learning_rate();
    for callback in &mut spec.callbacks {
        if let CallbackConfig::LearningRateScheduler(s) = callback {
            s.initial_learning_rate.get_or_insert(lr);
        }
    }
}
