//! `ember train [MODEL_FILE]`: train on the model file's data, evaluate on its test set;
//! optionally save, checkpoint every epoch, resume, and write a report.

use std::path::{Path, PathBuf};

use clap::Args;
use ember::jobs::outputs::OutputFiles;
use ember::jobs::train_file::{train_file, Start, TrainFileEvent, TrainFileOptions};
use ember::jobs::train_text::TextSource;
use ember::report::per_class_assessment_text;

#[derive(Args)]
pub struct TrainArgs {
    /// Model file (default: models/mnist-mlp.toml).
    model: Option<PathBuf>,
    /// Data folder, instead of the model file's (for MNIST: the four IDX files, plain or .gz).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Number of epochs, 1 to 100000 (the final epoch's number, when resuming).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    epochs: Option<u64>,
    /// Batch size, 1 to 16777216, instead of the model file's.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=16_777_216))]
    batch_size: Option<u64>,
    /// Seed for weight initialisation and shuffling, instead of the model file's.
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    threads: super::Threads,
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
    /// With --csv, --text-dir or --image-dir: the fraction of the rows, documents or
    /// images held out for the test, stratified by class (default: 0.2).
    #[arg(long, value_name = "FRACTION")]
    test_size: Option<f32>,
    /// The optimizer's learning rate, instead of the model file's or the table model's (for
    /// a text classifier, its MLP head's: with --hidden N).
    #[arg(long, value_name = "RATE")]
    learning_rate: Option<f32>,
    /// Keras's verbose: 0 silent, 1 a progress bar per epoch, 2 one line per epoch (default:
    /// a bar on a terminal, lines otherwise, for a model file; silent for a table).
    #[arg(long, value_name = "0|1|2", value_parser = clap::value_parser!(u8).range(0..=2))]
    verbose: Option<u8>,
    /// `-q`, given to any subcommand (main.rs): no per-epoch output (--verbose 0).
    #[arg(skip)]
    pub quiet: bool,
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
    #[arg(long, value_delimiter = ',', value_parser = ["accuracy", "none"], conflicts_with = "resume")]
    metrics: Option<Vec<String>>,
    /// Train a convnet on a folder of images, one subfolder of PNG / JPEG files per class,
    /// without a model file: the classes, image size and colour mode are read from the
    /// images (a train/ and a test/ folder of that form are the training and test images).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["model", "resume", "data", "csv", "text_dir"])]
    image_dir: Option<PathBuf>,
    /// With --image-dir: print the model file written for the folder (to edit, and train
    /// with `ember train FILE`) instead of training it.
    #[arg(long, requires = "image_dir")]
    print_model_file: bool,
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

pub fn run(args: TrainArgs) -> ember::Result<()> {
    super::set_threads(args.threads)?;
    refuse_unused(&args)?;
    let text_options = || super::text::TrainText {
        test_size: args.test_size.unwrap_or(0.2),
        seed: args.seed.unwrap_or(1),
        epochs: args.epochs.map(|e| e as usize),
        output: args.output.as_deref(),
        learning_rate: args.learning_rate,
    };
    if let (Some(file), Some(column)) = (&args.csv, &args.text.text_column) {
        let target = args.table.target.as_deref().ok_or_else(|| {
            ember::Error::invalid("--text-column needs --target COLUMN (the class column)")
        })?;
        let source = TextSource::Table {
            file: file.clone(),
            text_column: column.clone(),
            target: target.to_string(),
        };
        return super::text::train(&args.text, source, text_options());
    }
    if let Some(file) = &args.csv {
        return run_table(file, &args);
    }
    if let Some(dir) = &args.text.text_dir {
        let source = super::text::folder(dir, &args.text)?;
        return super::text::train(&args.text, source, text_options());
    }
    if let Some(dir) = &args.image_dir {
        return run_images(dir, &args);
    }
    let start = match &args.resume {
        Some(file) => Start::Resume(file.clone()),
        None => {
            let (spec, path) = ember::jobs::train_file::read_model_file(args.model.clone())?;
            Start::File {
                spec: Box::new(spec),
                path,
            }
        }
    };
    let source = match &start {
        Start::Resume(path) | Start::File { path, .. } => path.clone(),
    };
    let job = TrainFileOptions {
        start,
        data: args.data.clone(),
        epochs: args.epochs.map(|e| e as usize),
        batch_size: args.batch_size.map(|b| b as usize),
        seed: args.seed,
        validation_split: args.validation_split,
        optimizer: args.optimizer.map(OptimizerName::optimizer),
        metrics: args
            .metrics
            .as_deref()
            .map(ember::jobs::checks::metrics)
            .transpose()?,
        learning_rate: args.learning_rate,
        verbose: ember::Verbosity::from_flags(args.quiet, args.verbose)?,
        outputs: outputs(&args),
    };
    let trained = train_file(job, |event| match event {
        TrainFileEvent::Skipped(_) => eprint!("{}", event.text(&source)),
        _ => print!("{}", event.text(&source)),
    })?;
    print!("{}", trained.closing_text()?);
    Ok(())
}

/// The files this run writes.
fn outputs(args: &TrainArgs) -> OutputFiles {
    OutputFiles {
        output: args.output.clone(),
        checkpoint: args.checkpoint.clone(),
        report: args.report.clone(),
    }
}

/// Refuses flags that would do nothing in this mode of training (a model file, a table, a
/// text classifier), naming them: no flag is accepted and ignored.
fn refuse_unused(args: &TrainArgs) -> ember::Result<()> {
    let text_csv = args.csv.is_some() && args.text.text_column.is_some();
    let table = args.csv.is_some() && !text_csv;
    let text_dir = args.text.text_dir.is_some();
    let image_dir = args.image_dir.is_some();
    let model_file = !table && !text_csv && !text_dir && !image_dir;
    if args.print_model_file {
        let outputs = [
            ("--output", args.output.is_some()),
            ("--checkpoint", args.checkpoint.is_some()),
            ("--report", args.report.is_some()),
            ("--verbose", args.verbose.is_some()),
            ("--quiet", args.quiet),
            ("--threads", args.threads.threads.is_some()),
        ];
        let says =
            "does nothing with --print-model-file: it prints the model file and trains nothing";
        ember::jobs::checks::refuse_given(&outputs, says)?;
    }
    let mode = if table {
        "a table model (--csv without --text-column)"
    } else if text_csv {
        "a text classifier on a table's column"
    } else if text_dir {
        "a text classifier on a folder"
    } else if image_dir {
        "a convnet on an image folder"
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
    if table || model_file || image_dir {
        unused.extend(args.text.given());
    }
    if text_csv {
        unused.extend(args.text.given().into_iter().filter(|&f| f == "--class"));
    }
    let (text, split) = (text_csv || text_dir, args.validation_split.is_some());
    unused.extend(ember::jobs::checks::given(&[
        ("--optimizer", !model_file && args.optimizer.is_some()),
        ("--metrics", !model_file && args.metrics.is_some()),
        ("--test-size", model_file && args.test_size.is_some()),
        ("--batch-size", text && args.batch_size.is_some()),
        ("--validation-split", text && split),
        ("--report", text && args.report.is_some()),
        ("--verbose", text && args.verbose.is_some()),
    ]));
    ember::jobs::checks::unused_flags(mode, &unused)
}

/// `ember train --csv FILE --target COLUMN`: a table model, scored on a held-out split.
fn run_table(file: &Path, args: &TrainArgs) -> ember::Result<()> {
    use ember::jobs::train_table::{train_table, TrainTableOptions};

    let job = TrainTableOptions {
        file: file.to_path_buf(),
        options: args.table.options(file, args.seed)?,
        epochs: args.epochs.map(|e| e as usize),
        batch_size: args.batch_size.map(|b| b as usize),
        learning_rate: args.learning_rate,
        validation_split: args.validation_split,
        test_size: args.test_size.unwrap_or(0.2),
        verbose: ember::Verbosity::from_flags(args.quiet, args.verbose)?
            .unwrap_or(ember::Verbosity::Silent),
        output: args.output.clone(),
        report: args.report.clone(),
    };
    let trained = train_table(&job, |event| print!("{}", event.text(&job)))?;
    print!("{}", trained.closing_text()?);
    Ok(())
}

/// `ember train --image-dir DIR`: a convnet written for the folder's images and trained as
/// a model file; or, with --print-model-file, that model file printed.
fn run_images(dir: &Path, args: &TrainArgs) -> ember::Result<()> {
    use ember::jobs::train_images::{
        image_model_file, train_image_folder, ImageFolderSettings, TrainImagesEvent,
        TrainImagesOptions,
    };

    let settings = ImageFolderSettings {
        epochs: args.epochs.map(|e| e as usize),
        batch_size: args.batch_size.map(|b| b as usize),
        seed: args.seed,
        validation_split: args.validation_split,
        learning_rate: args.learning_rate,
        test_size: args.test_size,
    };
    if args.print_model_file {
        print!("{}", image_model_file(dir, &settings)?.text);
        return Ok(());
    }
    let job = TrainImagesOptions {
        dir: dir.to_path_buf(),
        settings,
        verbose: ember::Verbosity::from_flags(args.quiet, args.verbose)?,
        outputs: outputs(args),
    };
    let trained = train_image_folder(job, |event| match event {
        TrainImagesEvent::Training(TrainFileEvent::Skipped(_)) => eprint!("{}", event.text(dir)),
        _ => print!("{}", event.text(dir)),
    })?;
    let assessment = trained.trained.assessment.clone().named(&trained.classes);
    print!("{}", per_class_assessment_text(&assessment));
    Ok(())
}
