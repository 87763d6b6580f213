//! `ember train [MODEL_FILE]`: train on the model file's data, evaluate on its test set.

use std::path::{Path, PathBuf};

use clap::Args;
use ember::{Error, ModelSpec};

#[derive(Args)]
pub struct TrainArgs {
    /// Model file (default: models/mnist-mlp.toml).
    model: Option<PathBuf>,
    /// Data folder, instead of the model file's (for MNIST: the four IDX files, plain or .gz).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Number of epochs, instead of the model file's.
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
}

pub fn run(args: TrainArgs) -> ember::Result<()> {
    super::set_threads(args.threads.map(|n| n as usize))?;
    let path = super::model_path(args.model);
    let mut spec = ModelSpec::from_file(&path)?;
    if let Some(epochs) = args.epochs {
        spec.fit.epochs = epochs as usize;
    }
    if let Some(batch_size) = args.batch_size {
        spec.fit.batch_size = batch_size as usize;
    }
    if let Some(seed) = args.seed {
        spec.fit.seed = seed;
    }
    let data_spec = spec.data.clone().ok_or_else(|| Error::Spec {
        path: path.clone(),
        line: None,
        field: "data".into(),
        message: "the model file has no [data] section to train on".into(),
    })?;
    let data = match &args.data {
        Some(dir) => data_spec.load_from(dir)?,
        None => data_spec.load(path.parent().unwrap_or(Path::new(".")))?,
    };
    let mut model = spec.build()?;
    let split = spec.fit.validation_split as f64;
    let n = data.x_train.rows();
    let n_train = ((n as f64) * (1.0 - split)).ceil() as usize;
    println!(
        "Training {} on {n_train} samples, validating on {}, testing on {} ({} threads, seed {})",
        path.display(),
        n - n_train,
        data.x_test.rows(),
        ember::num_threads(),
        spec.fit.seed
    );
    model.fit(&data.x_train, &data.y_train, &spec.fit.options())?;
    let test = model.evaluate(&data.x_test, &data.y_test, spec.fit.batch_size)?;
    println!("Test loss: {:.4}", test.loss);
    match test.accuracy {
        Some(accuracy) => println!("Test accuracy: {accuracy:.4}"),
        None => println!("(compile with metrics = [\"accuracy\"] to report accuracy)"),
    }
    Ok(())
}
