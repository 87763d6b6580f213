//! `ember bench mlp`: times the reference MNIST workload (Dense 64 relu → Dense 10 softmax,
//! Adam, batch 32, validation_split 0.2) and, in the same run, a hand-written fused MLP on the
//! same shapes and the same `gemm` — the practical limit for this workload.

use std::time::Instant;

use ember::prelude::*;
use ember::tensor::denormal::FlushDenormals;

use super::{baseline, list, median, peak_rss_mb, BenchArgs};

pub fn run(args: &BenchArgs) -> ember::Result<()> {
    let epochs = args.epochs.unwrap_or(5) as usize;
    let started = Instant::now();
    let mnist = Mnist::load(&args.data)?;
    let mut x = mnist.train_images.reshape(&[60000, 784])?;
    x.scale_in_place(1.0 / 255.0);
    let y = to_categorical(&mnist.train_labels, Some(10))?;
    println!(
        "MNIST loaded in {:.2}s; {epochs} epochs each side, {} thread(s), seed {}",
        started.elapsed().as_secs_f64(),
        args.threads,
        args.seed
    );

    let mut model = Sequential::with_seed(&[784], args.seed);
    model.add(Dense::new(64).activation(Activation::Relu))?;
    model.add(Dense::new(10).activation(Activation::Softmax))?;
    model.compile(
        Adam::default(),
        Loss::CategoricalCrossentropy,
        &[Metric::Accuracy],
    )?;
    let options = FitOptions {
        epochs,
        batch_size: 32,
        validation_split: 0.2,
        seed: Some(args.seed),
        verbose: Verbosity::Silent,
        ..FitOptions::default()
    };
    let history = model.fit(&x, &y, &options)?;
    let ember_epochs: Vec<f64> = history.epochs.iter().map(|e| e.seconds).collect();
    let ember_val = history.last().and_then(|e| e.val_accuracy).unwrap_or(0.0);
    let ember_rss = peak_rss_mb();

    let baseline = {
        let _flush = FlushDenormals::new();
        baseline::train(&x, &y, 48000, epochs, args.seed)
    };

    let (ours, theirs) = (median(&ember_epochs), median(&baseline.epoch_seconds));
    println!();
    println!(
        "{:<34} {:>10} {:>12} {:>10}",
        "", "s/epoch", "samples/s", "val_acc"
    );
    println!(
        "{:<34} {:>10.3} {:>12.0} {:>10.4}",
        "Ember (Sequential, fit)",
        ours,
        48000.0 / ours,
        ember_val
    );
    println!(
        "{:<34} {:>10.3} {:>12.0} {:>10.4}",
        "hand-written fused MLP (baseline)",
        theirs,
        48000.0 / theirs,
        baseline.val_accuracy
    );
    println!("ratio Ember / baseline: {:.3}", ours / theirs);
    println!("Ember epochs (s): {}", list(&ember_epochs));
    println!("baseline epochs (s): {}", list(&baseline.epoch_seconds));
    match ember_rss {
        Some(mb) => println!("peak RSS after Ember training: {mb:.0} MB"),
        None => println!("peak RSS: unavailable on this platform"),
    }
    Ok(())
}
