//! `ember bench privacy`: seconds per DP-SGD epoch of a private model file (models/mnist-dp.toml
//! by default) and, in the same run, of the same network, data, batch size, optimizer,
//! clipping norm and noise multiplier under Opacus on PyTorch (bench/privacy_opacus.py, run
//! with `--python`), at the same thread count. Each side times the first `--epochs` epochs of
//! the recipe, with the σ the recipe's planned epochs call for.

use std::path::Path;

use ember::{Error, ModelSpec, Optimizer, Verbosity};

use super::{list, median, BenchArgs};

/// What the Opacus script prints.
#[derive(serde::Deserialize)]
struct OpacusRun {
    epoch_seconds: Vec<f64>,
    test_accuracy: f64,
    epsilon: f64,
    threads: usize,
    torch: String,
    opacus: String,
}

pub fn run(args: &BenchArgs) -> ember::Result<()> {
    let epochs = args.epochs.unwrap_or(2) as usize;
    let file = args
        .model
        .clone()
        .unwrap_or_else(|| "models/mnist-dp.toml".into());
    let mut spec = ModelSpec::from_file(&file)?;
    let (data_spec, dir) = ember::jobs::train_file::data_section(&spec, &file, Some(&args.data))?;
    let data = data_spec.load_from(&dir)?;
    let planned = spec.fit.epochs;
    let rows = ember::model::split_point(data.x_train.rows(), spec.fit.validation_split)?;
    let q = (spec.fit.batch_size as f64 / rows as f64).min(1.0);
    let privacy = spec.privacy.as_mut().ok_or_else(|| {
        Error::invalid(format!(
            "bench privacy: {} has no [privacy] section",
            file.display()
        ))
    })?;
    // The recipe's σ (found for its planned epochs), of which only `epochs` are timed.
    let sigma = privacy.resolve_noise(q, planned)?;
    privacy.target_epsilon = None;
    let (clip, delta) = (privacy.max_grad_norm, privacy.delta);
    let Optimizer::Sgd(sgd) = &spec.compile.optimizer else {
        return Err(Error::invalid(
            "bench privacy: the Opacus side runs SGD (with momentum): the model file's optimizer must be sgd",
        ));
    };
    let (lr, momentum) = (sgd.learning_rate, sgd.momentum);
    spec.fit.epochs = epochs;
    spec.fit.seed = args.seed;
    let mut model = spec.build()?;
    println!(
        "{}: {epochs} of its {planned} epochs each side, batch {} (q = {q:.5}), σ {sigma:.4}, \
         clipping norm {clip}, SGD {lr} momentum {momentum}, {} thread(s), seed {}",
        file.display(),
        spec.fit.batch_size,
        args.threads,
        args.seed
    );
    let options = ember::FitOptions {
        verbose: Verbosity::Silent,
        ..spec.fit.options()
    };
    let history = model.fit(&data.x_train, &data.y_train, &options)?;
    let ours: Vec<f64> = history.epochs.iter().map(|e| e.train_seconds).collect();
    let accuracy = model
        .evaluate(&data.x_test, &data.y_test, 1000)?
        .accuracy
        .unwrap_or(f64::NAN);
    let epsilon = model
        .privacy()
        .map_or(Ok(f64::NAN), ember::privacy::Privacy::epsilon)?;

    let theirs = match &args.python {
        Some(python) => Some(run_opacus(
            python,
            args,
            epochs,
            (spec.fit.batch_size, lr, momentum),
            (clip, sigma, delta),
        )?),
        None => None,
    };
    println!();
    println!(
        "{:<32} {:>10} {:>10} {:>10}",
        "", "s/epoch", "test_acc", "epsilon"
    );
    println!(
        "{:<32} {:>10.2} {:>10.4} {:>10.3}",
        "Ember",
        median(&ours),
        accuracy,
        epsilon
    );
    if let Some(t) = &theirs {
        println!(
            "{:<32} {:>10.2} {:>10.4} {:>10.3}",
            format!("Opacus {} (torch {})", t.opacus, t.torch),
            median(&t.epoch_seconds),
            t.test_accuracy,
            t.epsilon
        );
        println!(
            "speed-up Opacus / Ember (median s/epoch): {:.2}",
            median(&t.epoch_seconds) / median(&ours)
        );
    }
    println!("Ember epochs (s): {}", list(&ours));
    match &theirs {
        Some(t) => println!(
            "Opacus epochs (s): {} ({} thread(s))",
            list(&t.epoch_seconds),
            t.threads
        ),
        None => println!(
            "Opacus: not timed; pass --python PATH (a virtual environment with torch and opacus, see bench/README.md)"
        ),
    }
    Ok(())
}

/// Runs bench/privacy_opacus.py with `python` and reads its JSON line.
fn run_opacus(
    python: &Path,
    args: &BenchArgs,
    epochs: usize,
    (batch, lr, momentum): (usize, f32, f32),
    (clip, sigma, delta): (f32, f64, f64),
) -> ember::Result<OpacusRun> {
    let script_args = [
        ("--data", args.data.to_string_lossy().into_owned()),
        ("--epochs", epochs.to_string()),
        ("--threads", args.threads.to_string()),
        ("--seed", args.seed.to_string()),
        ("--batch-size", batch.to_string()),
        ("--lr", lr.to_string()),
        ("--momentum", momentum.to_string()),
        ("--max-grad-norm", clip.to_string()),
        ("--noise-multiplier", sigma.to_string()),
        ("--delta", delta.to_string()),
    ];
    super::run_python(python, "privacy_opacus.py", &script_args)
}
