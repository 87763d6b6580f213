//! `ember evaluate MODEL`: loss, accuracy, top-k accuracy, per-class precision / recall / F1
//! and the confusion matrix on the model's test data.

use std::path::PathBuf;

use clap::Args;
use ember::jobs::evaluate::{evaluate, EvaluateEvent, EvaluateOptions};
use ember::saved::SavedModel;

#[derive(Args)]
pub struct EvaluateArgs {
    /// A model saved by `ember train --output` (or a checkpoint).
    model: PathBuf,
    /// Data folder, instead of the one recorded in the model.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// A network's top-k accuracy for this k (default 5).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    top_k: Option<u64>,
    /// A binary table model's decision threshold on its positive class (default 0.5).
    #[arg(long, value_name = "P", allow_negative_numbers = true)]
    threshold: Option<f32>,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Write evaluation.json and the confusion matrix (PNG, SVG) into this folder.
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// For a table model: the CSV rows to score (with the target column).
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// For a table model: how to read --csv, whatever the training file needed (default:
    /// delimiter and header detected, no lines skipped).
    #[command(flatten)]
    csv_options: super::table::CsvArgs,
    #[command(flatten)]
    threads: super::Threads,
}

pub fn run(args: EvaluateArgs) -> ember::Result<()> {
    super::set_threads(args.threads)?;
    args.report
        .as_deref()
        .map(ember::atomic::check_output_dir)
        .transpose()?;
    let saved = SavedModel::load(&args.model)?;
    let options = EvaluateOptions {
        model: args.model.clone(),
        data: args.data.clone(),
        top_k: args.top_k.map(|k| k as usize),
        threshold: args.threshold,
        json: args.json,
        report: args.report.clone(),
        csv: args.csv.clone(),
        csv_options: args.csv_options.options(),
        csv_flags: args.csv_options.given(),
    };
    let text = evaluate(&saved, &options, |event| match event {
        EvaluateEvent::Skipped(_) => eprint!("{}", event.text()),
        _ => print!("{}", event.text()),
    })?;
    print!("{text}");
    Ok(())
}
