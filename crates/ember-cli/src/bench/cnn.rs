//! `ember bench cnn`: seconds per epoch of a convnet model file (the Keras "simple MNIST
//! convnet" by default) and, in the same run, of the same network in PyTorch on the CPU
//! (`bench/mnist_cnn.py`, run with `--python`), at the same thread count.

use std::path::Path;

use ember::{ModelSpec, Verbosity};

use super::{list, median, peak_rss_mb, BenchArgs};

/// What the PyTorch script prints.
#[derive(serde::Deserialize)]
struct TorchRun {
    epoch_seconds: Vec<f64>,
    val_accuracy: f64,
    threads: usize,
    torch: String,
}

pub fn run(args: &BenchArgs) -> ember::Result<()> {
    let epochs = args.epochs.unwrap_or(3) as usize;
    let mut spec = ModelSpec::from_file(&args.model)?;
    spec.fit.epochs = epochs;
    spec.fit.seed = args.seed;
    let data_spec = crate::commands::data_spec(&spec, &args.model)?;
    let data = data_spec.load_from(&args.data)?;
    let mut model = spec.build()?;
    println!(
        "{}: {epochs} epochs each side, batch {}, {} thread(s), seed {}",
        args.model.display(),
        spec.fit.batch_size,
        args.threads,
        args.seed
    );
    let options = ember::FitOptions {
        verbose: Verbosity::Silent,
        ..spec.fit.options()
    };
    let history = model.fit(&data.x_train, &data.y_train, &options)?;
    let ours: Vec<f64> = history.epochs.iter().map(|e| e.seconds).collect();
    let ours_val = history.last().and_then(|e| e.val_accuracy).unwrap_or(0.0);
    let rss = peak_rss_mb();

    let theirs = match &args.python {
        Some(python) => Some(run_torch(
            python,
            &args.data,
            epochs,
            args.threads,
            args.seed,
        )?),
        None => None,
    };

    println!();
    println!("{:<28} {:>10} {:>10}", "", "s/epoch", "val_acc");
    println!("{:<28} {:>10.2} {:>10.4}", "Ember", median(&ours), ours_val);
    if let Some(t) = &theirs {
        println!(
            "{:<28} {:>10.2} {:>10.4}",
            format!("PyTorch {}", t.torch),
            median(&t.epoch_seconds),
            t.val_accuracy
        );
        println!(
            "ratio Ember / PyTorch (median s/epoch): {:.3}",
            median(&ours) / median(&t.epoch_seconds)
        );
    }
    println!("Ember epochs (s): {}", list(&ours));
    match &theirs {
        Some(t) => println!(
            "PyTorch epochs (s): {} ({} thread(s))",
            list(&t.epoch_seconds),
            t.threads
        ),
        None => println!(
            "PyTorch: not timed; pass --python PATH (a virtual environment with torch, see bench/README.md)"
        ),
    }
    if let Some(mb) = rss {
        println!("peak RSS after Ember training: {mb:.0} MB");
    }
    Ok(())
}

/// Runs bench/mnist_cnn.py with `python` and reads its JSON line.
fn run_torch(
    python: &Path,
    data: &Path,
    epochs: usize,
    threads: u64,
    seed: u64,
) -> ember::Result<TorchRun> {
    super::run_python(
        python,
        "mnist_cnn.py",
        &[
            ("--data", data.to_string_lossy().into_owned()),
            ("--epochs", epochs.to_string()),
            ("--threads", threads.to_string()),
            ("--seed", seed.to_string()),
        ],
    )
}
