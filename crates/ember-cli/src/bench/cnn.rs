//! `ember bench cnn`: seconds per epoch of a convnet model file (the Keras "simple MNIST
//! convnet" by default) and, in the same run, of the same network in PyTorch on the CPU
//! (`bench/mnist_cnn.py`, run with `--python`), at the same thread count. A RandomTranslation
//! layer in the model file is mirrored by the same random shifts on the PyTorch side.

use std::path::Path;

use ember::autograd::FillMode;
use ember::nn::{LayerConfig, RandomTranslationConfig};
use ember::{Error, ModelSpec, Verbosity};

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
    let file = args
        .model
        .clone()
        .unwrap_or_else(|| "models/mnist-cnn.toml".into());
    let mut spec = ModelSpec::from_file(&file)?;
    spec.fit.epochs = epochs;
    spec.fit.seed = args.seed;
    let (data_spec, dir) = ember::jobs::train_file::data_section(&spec, &file, Some(&args.data))?;
    let data = data_spec.load_from(&dir)?;
    let mut model = spec.build()?;
    println!(
        "{}: {epochs} epochs each side, batch {}, {} thread(s), seed {}",
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
            translation(&spec)?,
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

/// The model file's RandomTranslation factors (height, width), for the PyTorch side to
/// shift its images the same way; an error for augmentation the script cannot mirror.
pub(super) fn translation(spec: &ModelSpec) -> ember::Result<Option<(f32, f32)>> {
    let mut found = None;
    for layer in spec.layer_configs() {
        match layer {
            LayerConfig::RandomTranslation(RandomTranslationConfig {
                height_factor,
                width_factor,
                fill_mode: FillMode::Constant,
            }) if found.is_none() => found = Some((*height_factor, *width_factor)),
            LayerConfig::RandomTranslation(_)
            | LayerConfig::RandomRotation(_)
            | LayerConfig::RandomFlip(_) => {
                return Err(Error::invalid(
                    "bench cnn: the PyTorch script mirrors one RandomTranslation with \
                     fill_mode \"constant\" and no other augmentation",
                ))
            }
            _ => {}
        }
    }
    Ok(found)
}

/// Runs bench/mnist_cnn.py with `python` and reads its JSON line.
fn run_torch(
    python: &Path,
    data: &Path,
    epochs: usize,
    threads: u64,
    seed: u64,
    translation: Option<(f32, f32)>,
) -> ember::Result<TorchRun> {
    let mut script_args = vec![
        ("--data", data.to_string_lossy().into_owned()),
        ("--epochs", epochs.to_string()),
        ("--threads", threads.to_string()),
        ("--seed", seed.to_string()),
    ];
    if let Some((height, width)) = translation {
        script_args.push(("--translate", format!("{height},{width}")));
    }
    super::run_python(python, "mnist_cnn.py", &script_args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(augmentation: &str) -> ModelSpec {
        let text = format!(
            "[model]\ninput_shape = [28, 28, 1]\n{augmentation}\n[[layers]]\ntype = \"flatten\"\n\
             [compile]\noptimizer = {{ type = \"adam\" }}\nloss = \"categorical_crossentropy\"\n"
        );
        ModelSpec::parse(&text, Path::new("test.toml")).unwrap()
    }

    #[test]
    fn the_model_files_shifts_are_passed_on_and_others_refused() {
        assert_eq!(translation(&spec("")).unwrap(), None);
        let shift = "[[layers]]\ntype = \"random_translation\"\nheight_factor = 0.1\n\
                     width_factor = 0.05\nfill_mode = \"constant\"\n";
        assert_eq!(translation(&spec(shift)).unwrap(), Some((0.1, 0.05)));
        let repository = ModelSpec::from_file(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../models/mnist-cnn.toml"
        ))
        .unwrap();
        assert_eq!(translation(&repository).unwrap(), Some((0.08, 0.08)));
        for other in [
            shift.replace("constant", "reflect"),
            format!("{shift}{shift}"),
            "[[layers]]\ntype = \"random_flip\"\n".to_string(),
        ] {
            let err = translation(&spec(&other)).unwrap_err().to_string();
            assert!(err.contains("RandomTranslation"), "{err}");
        }
    }
}
