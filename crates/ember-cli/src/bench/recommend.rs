//! `ember bench recommend [--ratings u.data] [--python VENV]`: seconds per epoch and ratings
//! per second of Ember's MF (Funk SVD) and SVD++, against Surprise's `SVD` and `SVDpp`
//! (bench/recommend_surprise.py) with the same factors, epochs, learning rate and
//! regularisation on the same 80/20 split, in the same run; the RMSE of both on the held-out
//! fifth, and memory.

use std::path::PathBuf;
use std::time::Instant;

use ember::data::interactions::{InteractionOptions, Interactions};
use ember::recommend::{self, EvaluateOptions, ModelKind, RecommendConfig};
use ember::Error;
use serde::Deserialize;

use super::{list, BenchArgs};

/// Timed fits per model and side; the fastest is reported (the machine is shared).
const REPEATS: usize = 3;

/// What bench/recommend_surprise.py prints.
#[derive(Deserialize)]
struct SurpriseRun {
    version: String,
    fit_seconds: f64,
    seconds_per_epoch: f64,
    ratings_per_second: f64,
    rmse: f64,
    mae: f64,
    rss_before_mib: f64,
    rss_after_mib: f64,
    peak_rss_mib: f64,
}

/// RSS of this process now (VmRSS), in MiB.
fn rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

struct EmberRun {
    fits: Vec<f64>,
    rmse: f64,
    mae: f64,
    rss_growth: f64,
    model_mib: f64,
}

pub fn run(args: &BenchArgs) -> ember::Result<()> {
    let ratings = args
        .ratings
        .clone()
        .unwrap_or_else(|| PathBuf::from("../shared/data/movielens-100k/u.data"));
    let data = Interactions::read(&ratings, &InteractionOptions::default())?;
    let (train_rows, test_rows) = recommend::k_folds(data.len(), 5, args.seed)
        .into_iter()
        .next()
        .ok_or_else(|| Error::invalid("no split"))?;
    let (train, test) = (data.subset(&train_rows), data.subset(&test_rows));
    let dir = std::env::temp_dir().join(format!("ember-bench-recommend-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let (train_file, test_file) = (dir.join("train.tsv"), dir.join("test.tsv"));
    train.write_tsv(&train_file)?;
    test.write_tsv(&test_file)?;
    println!(
        "{}: {} ratings; train {} / test {} (a seeded random fifth, --seed {}), {} thread(s)",
        ratings.display(),
        data.len(),
        train.len(),
        test.len(),
        args.seed,
        args.threads
    );

    let mut result = Ok(());
    for (model, algorithm, surprise_name) in [
        (ModelKind::Mf, "svd", "SVD"),
        (ModelKind::Svdpp, "svdpp", "SVDpp"),
    ] {
        let config = RecommendConfig {
            seed: args.seed,
            ..RecommendConfig::new(model)
        };
        let ours = time_ember(&train, &test, &config)?;
        let theirs = match &args.python {
            Some(python) => {
                let run: ember::Result<SurpriseRun> = super::run_python(
                    python,
                    "recommend_surprise.py",
                    &[
                        ("--train", train_file.to_string_lossy().into_owned()),
                        ("--test", test_file.to_string_lossy().into_owned()),
                        ("--algorithm", algorithm.to_string()),
                        ("--factors", config.factors.to_string()),
                        ("--epochs", config.epochs.to_string()),
                        ("--lr", config.lr.to_string()),
                        ("--reg", config.reg.to_string()),
                        ("--seed", args.seed.to_string()),
                        // SVD++ takes Surprise about 10 s a fit: once is enough.
                        (
                            "--repeat",
                            if model == ModelKind::Mf { REPEATS } else { 1 }.to_string(),
                        ),
                    ],
                );
                match run {
                    Ok(run) => Some(run),
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            None => None,
        };
        report(
            model,
            surprise_name,
            &config,
            train.len(),
            &ours,
            theirs.as_ref(),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    if args.python.is_none() {
        println!(
            "\nSurprise: not timed; pass --python PATH (a virtual environment with scikit-surprise, see bench/README.md)"
        );
    }
    result
}

fn time_ember(
    train: &Interactions,
    test: &Interactions,
    config: &RecommendConfig,
) -> ember::Result<EmberRun> {
    let before = rss_mib().unwrap_or(0.0);
    let mut fits = Vec::new();
    let mut model = None;
    for _ in 0..REPEATS {
        let started = Instant::now();
        model = Some(recommend::train(train, None, None, config)?);
        fits.push(started.elapsed().as_secs_f64());
    }
    let after = rss_mib().unwrap_or(0.0);
    let model = model.ok_or_else(|| Error::invalid("no fit"))?;
    let (evaluations, _) = recommend::evaluate(&model, test, &EvaluateOptions::default())?;
    let errors = evaluations[0]
        .ratings
        .ok_or_else(|| Error::invalid("the model predicts no ratings"))?;
    let floats = model.model.user_factors.len()
        + model.model.item_factors.len()
        + model.model.user_bias.len()
        + model.model.item_bias.len();
    Ok(EmberRun {
        fits,
        rmse: errors.rmse,
        mae: errors.mae,
        rss_growth: after - before,
        model_mib: floats as f64 * 4.0 / (1024.0 * 1024.0),
    })
}

fn report(
    model: ModelKind,
    surprise_name: &str,
    config: &RecommendConfig,
    train_ratings: usize,
    ours: &EmberRun,
    theirs: Option<&SurpriseRun>,
) {
    let fit = ours.fits.iter().copied().fold(f64::INFINITY, f64::min);
    let epochs = config.epochs as f64;
    println!(
        "\n{} ({} factors, {} epochs, lr {}, reg {}; Surprise's {surprise_name} defaults)",
        model.name(),
        config.factors,
        config.epochs,
        config.lr,
        config.reg
    );
    println!(
        "{:<22} {:>9} {:>10} {:>12} {:>8} {:>8}",
        "", "fit s", "s/epoch", "ratings/s", "RMSE", "MAE"
    );
    println!(
        "{:<22} {:>9.3} {:>10.4} {:>12.0} {:>8.4} {:>8.4}",
        "Ember",
        fit,
        fit / epochs,
        train_ratings as f64 * epochs / fit,
        ours.rmse,
        ours.mae
    );
    println!("  Ember fits (s): {}", list(&ours.fits));
    println!(
        "  Ember memory: model {:.2} MiB; RSS grew {:.1} MiB over {} fits; peak RSS {:.1} MiB",
        ours.model_mib,
        ours.rss_growth,
        ours.fits.len(),
        super::peak_rss_mb().unwrap_or(f64::NAN)
    );
    if let Some(t) = theirs {
        println!(
            "{:<22} {:>9.3} {:>10.4} {:>12.0} {:>8.4} {:>8.4}",
            format!("Surprise {} {surprise_name}", t.version),
            t.fit_seconds,
            t.seconds_per_epoch,
            t.ratings_per_second,
            t.rmse,
            t.mae
        );
        println!(
            "  Surprise memory: RSS {:.1} -> {:.1} MiB over the fits; peak RSS {:.1} MiB",
            t.rss_before_mib, t.rss_after_mib, t.peak_rss_mib
        );
        println!(
            "speed-up Ember / Surprise: {:.1}x per epoch; RMSE Ember - Surprise: {:+.4}",
            t.seconds_per_epoch / (fit / epochs),
            ours.rmse - t.rmse
        );
    }
}
