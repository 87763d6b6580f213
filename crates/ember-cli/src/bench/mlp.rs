//! `ember bench mlp`: times the reference MNIST workload (Dense 64 relu → Dense 10 softmax,
//! Adam, batch 32, validation_split 0.2) and, in the same run, a hand-written fused MLP on the
//! same shapes and the same `gemm` — the practical limit for this workload — their epochs
//! interleaved.

use std::time::Instant;

use ember::prelude::*;
use ember::tensor::denormal::FlushDenormals;

use super::baseline::Baseline;
use super::{list, median, peak_rss_mb, BenchArgs};

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
    // Epochs alternate between the two sides (Ember first in odd epochs, the baseline in even
    // ones), so that both meet the same machine: on a shared machine the speed drifts by more
    // than the gap being measured. Training one epoch per `fit` call is exactly one long run,
    // as `--resume` relies on (the shuffles are replayed, outside the timed epoch).
    let mut baseline = Baseline::new(&x, &y, 48000, args.seed);
    let (mut ember_epochs, mut baseline_epochs) = (Vec::new(), Vec::new());
    let mut ember_val = 0.0;
    let mut ember_epoch = |epoch: usize| -> ember::Result<f64> {
        let options = FitOptions {
            epochs: epoch,
            initial_epoch: epoch - 1,
            batch_size: 32,
            validation_split: 0.2,
            seed: Some(args.seed),
            verbose: Verbosity::Silent,
            ..FitOptions::default()
        };
        let history = model.fit(&x, &y, &options)?;
        let log = history
            .last()
            .ok_or_else(|| ember::Error::invalid("fit ran no epoch"))?;
        ember_val = log.val_accuracy.unwrap_or(0.0);
        Ok(log.seconds)
    };
    let mut baseline_epoch = || {
        let _flush = FlushDenormals::new();
        baseline.epoch()
    };
    for epoch in 1..=epochs {
        if epoch % 2 == 1 {
            ember_epochs.push(ember_epoch(epoch)?);
            baseline_epochs.push(baseline_epoch());
        } else {
            baseline_epochs.push(baseline_epoch());
            ember_epochs.push(ember_epoch(epoch)?);
        }
    }
    let ember_rss = peak_rss_mb();
    let ratios: Vec<f64> = ember_epochs
        .iter()
        .zip(&baseline_epochs)
        .map(|(a, b)| a / b)
        .collect();

    let (ours, theirs) = (median(&ember_epochs), median(&baseline_epochs));
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
    println!(
        "ratio Ember / baseline: {:.3} (median of the {} per-epoch ratios; of the medians {:.3})",
        median(&ratios),
        ratios.len(),
        ours / theirs
    );
    println!("Ember epochs (s): {}", list(&ember_epochs));
    println!("baseline epochs (s): {}", list(&baseline_epochs));
    match ember_rss {
        Some(mb) => println!("peak RSS after Ember training: {mb:.0} MB"),
        None => println!("peak RSS: unavailable on this platform"),
    }
    Ok(())
}
