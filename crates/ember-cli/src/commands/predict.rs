//! `ember predict MODEL INPUT…`: labels and top-k probabilities for images (PNG, JPEG of any
//! size), IDX files and CSV rows, prepared as the model's training data was; `-` reads an
//! input from standard input, `--output FILE` writes the predictions to a file.

use std::path::PathBuf;

use clap::Args;
use ember::explain::Method;
use ember::jobs::explain::ExplainOptions;
use ember::jobs::predict::{check_inputs, is_stdin, predict, with_explanations, PredictOptions};
use ember::saved::SavedModel;

#[derive(Args)]
pub struct PredictArgs {
    /// A model saved by `ember train --output`.
    model: PathBuf,
    /// Inputs: images (PNG, JPEG), IDX files (one sample per entry, plain or gzip), CSV files
    /// (one sample per row), told apart by content; `-` reads one from standard input.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// How many of the most likely classes to show (default 3; a table model's in --json).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    top_k: Option<u64>,
    /// A binary classifier's decision threshold: the positive (second) class when its
    /// probability is at least this (default: the more likely class).
    #[arg(long, value_name = "P", allow_negative_numbers = true)]
    threshold: Option<f32>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Write the predictions to this file (replaced whole, never one of the inputs) instead
    /// of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    threads: super::Threads,
    /// Also explain each prediction, as `ember explain --method METHOD` does (default
    /// integrated-gradients); with --json the output is {"predictions", "explanations"}.
    #[arg(long, value_name = "METHOD", num_args = 0..=1, default_missing_value = "integrated-gradients")]
    explain: Option<String>,
    /// For a table model: how to read the CSV inputs, whatever the training file needed
    /// (default: delimiter and header detected, no lines skipped). With a header, columns
    /// are found by name; without (--no-header), by position as in the training file.
    #[command(flatten)]
    csv: super::table::CsvArgs,
}

pub fn run(args: PredictArgs) -> ember::Result<()> {
    super::set_threads(args.threads)?;
    let output = args.output.as_deref();
    check_inputs(&args.model, &args.inputs, output, args.explain.is_some())?;
    let saved = SavedModel::load(&args.model)?;
    let options = PredictOptions {
        model: args.model.clone(),
        inputs: args.inputs.clone(),
        stdin: match args.inputs.iter().any(|p| is_stdin(p)) {
            true => Some(ember::read::stdin(ember::read::Limit::INPUT)?),
            false => None,
        },
        top_k: args.top_k.map(|k| k as usize),
        threshold: args.threshold,
        json: args.json,
        csv_options: args.csv.options(),
        csv_flags: args.csv.given(),
    };
    let mut text = predict(&saved, &options, |table| {
        print!("{}", ember::report::rejected_text(table))
    })?;
    if let Some(method) = &args.explain {
        let (model, inputs) = (args.model.clone(), args.inputs.clone());
        let options = ExplainOptions {
            json: args.json,
            csv_options: args.csv.options(),
            csv_flags: args.csv.given(),
            ..ExplainOptions::new(model, inputs, Method::parse(method)?)
        };
        let explanations = super::explain::explain(&saved, &options)?;
        text = with_explanations(&text, &explanations, method, args.json)?;
    }
    match &args.output {
        Some(file) => ember::atomic::write_atomically(file, text.as_bytes()),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}
