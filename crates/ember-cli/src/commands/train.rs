//! `ember train [MODEL_FILE]`: train on the model file's data, evaluate on its test set;
//! optionally save, checkpoint every epoch, resume, and write a report.

use std::path::{Path, PathBuf};

use clap::Args;
use ember::callbacks::ModelCheckpoint;
use ember::spec::CallbackConfig;
use ember::train::Callback;
use ember::{io, report, ModelSpec};

#[derive(Args)]
pub struct TrainArgs {
    /// Model file (default: models/mnist-mlp.toml).
    model: Option<PathBuf>,
    /// Data folder, instead of the model file's (for MNIST: the four IDX files, plain or .gz).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Number of epochs (the final epoch's number, when resuming).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    epochs: Option<u64>,
    /// Batch size, instead of the model file's.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    batch_size: Option<u64>,
    /// Seed for weight initialisation and shuffling, instead of the model file's.
    #[arg(long)]
    seed: Option<u64>,
    /// Threads for the numeric kernels (default: EMBER_NUM_THREADS, else all cores).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    threads: Option<u64>,
    /// Save the trained model to this file (.safetensors).
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Save a resumable checkpoint to this file after every epoch.
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// Continue training from a checkpoint or saved model, instead of a model file.
    #[arg(long, value_name = "FILE", conflicts_with = "model")]
    resume: Option<PathBuf>,
    /// Write the history, learning curves and confusion matrix into this folder.
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// Train on a table instead of a model file: a CSV file, with --target.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["model", "resume", "checkpoint", "data"])]
    csv: Option<PathBuf>,
    /// With --csv or --text-dir: the fraction of the rows or documents held out for the
    /// test, stratified by class (default: 0.2).
    #[arg(long, value_name = "FRACTION")]
    test_size: Option<f32>,
    /// The optimizer's learning rate, instead of the model file's or the table model's (for
    /// a text classifier, its MLP head's: with --hidden N).
    #[arg(long, value_name = "RATE")]
    learning_rate: Option<f32>,
    /// Keras's verbose: 0 silent, 1 a progress bar per epoch, 2 one line per epoch (default:
    /// a bar on a terminal, lines otherwise, for a model file; silent for a table).
    #[arg(long, value_name = "0|1|2", value_parser = clap::value_parser!(u8).range(0..=2), conflicts_with = "quiet")]
    verbose: Option<u8>,
    /// No per-epoch output (--verbose 0).
    #[arg(long, short)]
    quiet: bool,
    /// The fraction of the training rows held out for validation (Keras's validation_split:
    /// the last rows), instead of the model file's or the table model's.
    #[arg(long, value_name = "FRACTION")]
    validation_split: Option<f32>,
    /// The optimizer, by its Keras name, with Keras's default settings, instead of the model
    /// file's (--learning-rate sets its rate).
    #[arg(long, value_enum)]
    optimizer: Option<OptimizerName>,
    /// The metrics to log each epoch besides the loss, comma-separated, instead of the model
    /// file's: accuracy, or none.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        value_name = "accuracy|none",
        conflicts_with = "resume"
    )]
    metrics: Option<Vec<MetricName>>,
    #[command(flatten)]
    table: super::table::TableArgs,
    #[command(flatten)]
    pub text: super::text::TextArgs,
}

/// Keras's optimizer identifiers.
#[derive(Clone, Copy, clap::ValueEnum)]
enum OptimizerName {
    Sgd,
    Adam,
    Rmsprop,
}

impl OptimizerName {
    /// The optimizer with Keras's defaults.
    fn optimizer(self) -> ember::Optimizer {
        match self {
            OptimizerName::Sgd => ember::Optimizer::Sgd(ember::Sgd::default()),
            OptimizerName::Adam => ember::Optimizer::Adam(ember::Adam::default()),
            OptimizerName::Rmsprop => ember::Optimizer::Rmsprop(ember::RmsProp::default()),
        }
    }
}

/// Keras's metric names that a model file can log.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum MetricName {
    Accuracy,
    /// No metric besides the loss.
    None,
}

pub fn run(args: TrainArgs) -> ember::Result<()> {
    super::set_threads(args.threads)?;
    refuse_unused(&args)?;
    if let Some(file) = &args.csv {
        check_outputs(&args, &[file])?;
    } else if let Some(dir) = &args.text.text_dir {
        let mut inputs = vec![dir.as_path()];
        inputs.extend(args.text.encoder.as_deref());
        check_outputs(&args, &inputs)?;
    }
    if let (Some(file), Some(column)) = (&args.csv, &args.text.text_column) {
        let target = args.table.target.as_deref().ok_or_else(|| {
            ember::Error::invalid("--text-column needs --target COLUMN (the class column)")
        })?;
        let docs = ember::text::read_csv_documents(
            file,
            column,
            target,
            &ember::text::documents::document_csv_options(),
        )?;
        let options = super::text::TrainText {
            dir: file,
            test_size: args.test_size.unwrap_or(0.2),
            seed: args.seed.unwrap_or(1),
            epochs: args.epochs.map(|e| e as usize),
            output: args.output.as_deref(),
            learning_rate: args.learning_rate,
        };
        return super::text::train_documents(&args.text, docs, options);
    }
    if let Some(file) = &args.csv {
        return run_table(file, &args);
    }
    if let Some(dir) = &args.text.text_dir {
        let options = super::text::TrainText {
            dir,
            test_size: args.test_size.unwrap_or(0.2),
            seed: args.seed.unwrap_or(1),
            epochs: args.epochs.map(|e| e as usize),
            output: args.output.as_deref(),
            learning_rate: args.learning_rate,
        };
        return super::text::train(&args.text, options);
    }
    let (mut spec, mut model, epochs_done, source) = match &args.resume {
        Some(file) => {
            let checkpoint = io::load(file)?;
            (
                checkpoint.spec,
                Some(checkpoint.model),
                checkpoint.epochs_done,
                file.clone(),
            )
        }
        None => {
            let (spec, path) = super::read_spec(args.model.clone())?;
            (spec, None, 0, path)
        }
    };
    if let Some(epochs) = args.epochs {
        spec.fit.epochs = epochs as usize;
    }
    if let Some(batch_size) = args.batch_size {
        spec.fit.batch_size = batch_size as usize;
    }
    if let Some(seed) = args.seed {
        spec.fit.seed = seed;
    }
    if let Some(split) = args.validation_split {
        spec.fit.validation_split = split;
    }
    if let Some(name) = args.optimizer {
        spec.compile.optimizer = name.optimizer();
    }
    if let Some(metrics) = &args.metrics {
        if metrics.len() > 1 && metrics.contains(&MetricName::None) {
            return Err(ember::Error::invalid(
                "--metrics none means no metric: it cannot be listed with others",
            ));
        }
        spec.compile.metrics = match metrics.contains(&MetricName::Accuracy) {
            true => vec![ember::Metric::Accuracy],
            false => Vec::new(),
        };
    }
    // The changed file must still make sense (a callback watching val_accuracy needs it).
    spec.check(&source)?;
    let mut data_spec = super::data_spec(&spec, &source)?;
    let base = source.parent().unwrap_or(Path::new("."));
    let data_dir = args
        .data
        .clone()
        .unwrap_or_else(|| base.join(&data_spec.dir));
    check_outputs(&args, &[&source, &data_dir])?;
    let data = super::load_data(&data_spec, args.data.as_deref(), base)?;
    super::report_skipped(&data.skipped);
    // Record what prediction needs to read new inputs as these were read.
    data_spec.record_read(&data, &data_dir);
    if epochs_done == 0 {
        data_spec.record_input_range(&data.x_train);
    }
    spec.data = Some(data_spec);
    if let Some(rate) = args.learning_rate {
        spec.compile.optimizer.set_learning_rate(rate);
    }
    let mut model = match model.take() {
        Some(m) => m,
        None => {
            fix_schedule_starts(&mut spec);
            spec.build()?
        }
    };
    if let Some(rate) = args.learning_rate {
        // A resumed model goes on from its saved optimizer state at the new rate.
        model.set_learning_rate(rate)?;
    }

    // Labels that do not fit the model are errors now, naming the data, not after training.
    for (y, which) in [(&data.y_train, "training"), (&data.y_test, "test")] {
        model.check_targets(
            &[y],
            &format!("the {which} labels in {}", data_dir.display()),
        )?;
    }
    let n = data.x_train.rows();
    let n_train = ember::train::split_point(n, spec.fit.validation_split)?;
    if epochs_done >= spec.fit.epochs {
        println!(
            "{} has already been trained for {epochs_done} epochs; pass --epochs N (N > {epochs_done}) to train further",
            source.display()
        );
    } else {
        let verb = if epochs_done > 0 {
            "Resuming"
        } else {
            "Training"
        };
        println!(
            "{verb} {} on {n_train} samples, validating on {}, testing on {} ({}, seed {})",
            source.display(),
            n - n_train,
            data.x_test.rows(),
            super::threads_text(ember::num_threads()),
            spec.fit.seed
        );
    }

    let mut callbacks: Vec<Box<dyn Callback>> = ember::callbacks::from_spec(&spec);
    if let Some(file) = &args.checkpoint {
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
    let options = ember::FitOptions {
        initial_epoch: epochs_done,
        verbose: verbosity(&args).unwrap_or_default(),
        ..spec.fit.options()
    };
    let history = model.fit_with_callbacks(&data.x_train, &data.y_train, &options, &mut hooks)?;
    drop(hooks);
    let epochs_now = history.last().map_or(epochs_done, |e| e.epoch);
    if history.stopped_early {
        println!("Training stopped early after epoch {epochs_now}");
    }
    if let Some(file) = &args.output {
        io::save_with(
            file,
            &model,
            &spec.fit,
            spec.data.as_ref(),
            &spec.callbacks,
            epochs_now,
        )?;
        println!("Saved the model to {}", file.display());
    }
    let assessment = model.assess(&data.x_test, &data.y_test, spec.fit.batch_size, 5)?;
    if let Some(dir) = &args.report {
        let mut files = report::write_history(dir, &history)?;
        files.extend(report::write_evaluation(
            dir,
            &assessment,
            assessment.confusion_matrix.as_ref(),
        )?);
        println!("Report: {} files in {}", files.len(), dir.display());
    }
    super::print_assessment(&assessment, false);
    Ok(())
}

/// The per-epoch output asked for by --verbose or --quiet, if any.
fn verbosity(args: &TrainArgs) -> Option<ember::Verbosity> {
    use ember::Verbosity;
    match (args.quiet, args.verbose) {
        (true, _) | (_, Some(0)) => Some(Verbosity::Silent),
        (_, Some(1)) => Some(Verbosity::ProgressBar),
        (_, Some(_)) => Some(Verbosity::EpochLines),
        (false, None) => None,
    }
}

/// Refuses flags that would do nothing in this mode of training (a model file, a table, a
/// text classifier), naming them: no flag is accepted and ignored.
fn refuse_unused(args: &TrainArgs) -> ember::Result<()> {
    let text_csv = args.csv.is_some() && args.text.text_column.is_some();
    let table = args.csv.is_some() && !text_csv;
    let text_dir = args.text.text_dir.is_some();
    let model_file = !table && !text_csv && !text_dir;
    let mode = if table {
        "a table model (--csv without --text-column)"
    } else if text_csv {
        "a text classifier on a table's column"
    } else if text_dir {
        "a text classifier on a folder"
    } else {
        "a model file"
    };
    let mut unused: Vec<&str> = Vec::new();
    if !table {
        let mut table_flags = args.table.given();
        // A text column's class is the table's --target.
        table_flags.retain(|&f| !(text_csv && f == "--target"));
        unused.extend(table_flags);
        unused.extend(args.table.csv.given());
    }
    if table || model_file {
        unused.extend(args.text.given());
    }
    if text_csv {
        unused.extend(args.text.given().into_iter().filter(|&f| f == "--class"));
    }
    if args.resume.is_some() && (args.optimizer.is_some() || args.metrics.is_some()) {
        return Err(ember::Error::invalid(format!(
            "{} cannot change a resumed model: it goes on with the optimizer and metrics it was \
             compiled with (train a model file to choose others)",
            if args.optimizer.is_some() {
                "--optimizer"
            } else {
                "--metrics"
            }
        )));
    }
    if !model_file && args.optimizer.is_some() {
        unused.push("--optimizer");
    }
    if !model_file && args.metrics.is_some() {
        unused.push("--metrics");
    }
    if model_file && args.test_size.is_some() {
        unused.push("--test-size");
    }
    if (text_csv || text_dir) && args.batch_size.is_some() {
        unused.push("--batch-size");
    }
    if (text_csv || text_dir) && args.validation_split.is_some() {
        unused.push("--validation-split");
    }
    if (text_csv || text_dir) && args.report.is_some() {
        unused.push("--report");
    }
    if (text_csv || text_dir) && (args.verbose.is_some() || args.quiet) {
        unused.push(if args.quiet { "--quiet" } else { "--verbose" });
    }
    if let Some(flag) = unused.first() {
        return Err(ember::Error::invalid(format!(
            "{flag} does nothing when training {mode}{}",
            match unused.len() {
                1 => String::new(),
                n => format!(" (nor do {})", unused[1..n].join(", ")),
            }
        )));
    }
    if let Some(rate) = args.learning_rate.filter(|r| !(r.is_finite() && *r > 0.0)) {
        return Err(ember::Error::invalid(format!(
            "--learning-rate must be a positive number, got {rate}"
        )));
    }
    if let Some(split) = args.validation_split.filter(|s| !(0.0..1.0).contains(s)) {
        return Err(ember::Error::invalid(format!(
            "--validation-split must be in [0, 1), got {split}"
        )));
    }
    if let Some(size) = args.test_size.filter(|s| !(*s > 0.0 && *s < 1.0)) {
        return Err(ember::Error::invalid(format!(
            "--test-size must be in (0, 1), got {size}"
        )));
    }
    Ok(())
}

/// Refuses, before any data is read or any epoch run, an output, checkpoint or report
/// folder that could not be written at the end, or that would overwrite one of `inputs`
/// (the model file or resumed checkpoint, the data folder, the table, the text folder).
/// A checkpoint may be the file being resumed: that is how a killed run goes on.
fn check_outputs(args: &TrainArgs, inputs: &[&Path]) -> ember::Result<()> {
    if let Some(file) = &args.output {
        ember::atomic::check_output(file, inputs)?;
    }
    if let Some(file) = &args.checkpoint {
        let resumed = args.resume.as_deref();
        let others: Vec<&Path> = inputs
            .iter()
            .copied()
            .filter(|&p| Some(p) != resumed)
            .collect();
        ember::atomic::check_output(file, &others)?;
    }
    if let Some(dir) = &args.report {
        ember::atomic::check_output_dir(dir)?;
    }
    Ok(())
}

/// Learning-rate schedules start from the optimizer's rate at the start of training; record
/// it in their configuration so that a resumed run continues the same curve.
fn fix_schedule_starts(spec: &mut ModelSpec) {
    let lr = spec.compile.optimizer.learning_rate();
    for callback in &mut spec.callbacks {
        if let CallbackConfig::LearningRateScheduler(s) = callback {
            s.initial_learning_rate.get_or_insert(lr);
        }
    }
}

/// `ember train --csv FILE --target COLUMN`: a table model, scored on a held-out split.
fn run_table(file: &Path, args: &TrainArgs) -> ember::Result<()> {
    use super::table;
    use ember::spec::{FitSpec, TableSpec};
    use ember::tabular::TabularModel;

    let mut options = args.table.options(file, args.seed)?;
    let seed = options.seed;
    if let Some(epochs) = args.epochs {
        options.epochs = epochs as usize;
    }
    if let Some(rate) = args.learning_rate {
        options.learning_rate = rate;
    }
    if let Some(split) = args.validation_split {
        options.validation_split = split;
    }
    if let Some(batch_size) = args.batch_size {
        options.batch_size = batch_size as usize;
    }
    let data = table::load(&file.to_path_buf(), &options)?;
    let (train, test) = table::split(&data, args.test_size.unwrap_or(0.2), seed)?;
    println!(
        "{}: {} of '{}' on {} rows ({} held out for validation), testing on {} (seed {seed})",
        file.display(),
        table::task_name(data.task),
        options.target,
        train.len(),
        train.len() - ember::train::split_point(train.len(), options.validation_split)?,
        test.len()
    );
    let (model, history) = TabularModel::fit(
        &data.table,
        &train,
        data.task,
        &options,
        verbosity(args).unwrap_or(ember::Verbosity::Silent),
    )?;
    for (column, reason) in &model.preprocessor.skipped {
        println!("  not a feature: {column} ({reason})");
    }
    println!(
        "  {} feature columns → {} inputs; trained {} epochs{}",
        model.preprocessor.features.len(),
        model.preprocessor.width(),
        history.epochs.len(),
        if history.stopped_early {
            " (early stopping, best weights restored)"
        } else {
            ""
        }
    );
    let scores = model.score(&data.table, &test)?;
    let epochs = history.epochs.len();
    if let Some(output) = &args.output {
        let fit = FitSpec {
            epochs: options.epochs,
            batch_size: options.batch_size,
            validation_split: options.validation_split,
            shuffle: true,
            seed,
        };
        let mut spec = ModelSpec::from_model(&model.model, fit, None)?;
        spec.table = Some(TableSpec {
            file: super::absolute(file),
            task: data.task,
            options: options.clone(),
            preprocessor: model.preprocessor.clone(),
        });
        io::save(output, &model.model, &spec, epochs)?;
        println!("Saved the model to {}", output.display());
    }
    if let Some(dir) = &args.report {
        let mut files = report::write_history(dir, &history)?;
        files.extend(report::write_evaluation(
            dir,
            &scores,
            scores.confusion_matrix.as_ref(),
        )?);
        println!("Report: {} files in {}", files.len(), dir.display());
    }
    table::print_scores(&scores, "Test");
    Ok(())
}
