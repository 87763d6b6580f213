//! `ember explain MODEL INPUT… --method M`: why the model said what it said. Per-input
//! attributions for networks of images or numbers and for table rows, permutation importance
//! of a table model's columns over a labelled CSV; heat maps and bar charts with `--output`.

use std::path::PathBuf;

use clap::Args;
use ember::explain::Method;
use ember::jobs::explain::{ExplainEvent, ExplainOptions};
use ember::saved::SavedModel;

#[derive(Args)]
pub struct ExplainArgs {
    /// A model saved by `ember train --output` (a network, or a table model).
    model: PathBuf,
    /// Inputs, as `ember predict` takes them: images, IDX files, CSV files.
    inputs: Vec<PathBuf>,
    /// saliency, smoothgrad, integrated-gradients, grad-cam (networks); integrated-gradients
    /// or shap (table rows, per column); permutation (a table model, with --csv);
    /// integrated-gradients (TF-IDF) or occlusion (text).
    #[arg(long, default_value = "integrated-gradients")]
    method: String,
    /// The class to explain, by name or number (default: each sample's predicted class).
    #[arg(long, value_name = "LABEL")]
    target: Option<String>,
    /// Write a picture per explanation into this folder: a heat map per image, a bar chart
    /// per table row or of the importances.
    #[arg(long, value_name = "DIR")]
    output: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Integrated Gradients: Gauss–Legendre points along the path (default: 64 for images
    /// and text, 1024 for table rows).
    #[arg(long)]
    steps: Option<usize>,
    /// Integrated Gradients' baseline for images: black (the default), or blur (the input
    /// blurred).
    #[arg(long)]
    baseline: Option<String>,
    /// The blurred baseline's standard deviation in pixels, above 0 and at most the image's
    /// larger side (default: a tenth of the image's smaller side).
    #[arg(long)]
    blur_sigma: Option<f32>,
    /// SmoothGrad: noisy copies per input (default 50); SHAP beyond 12 columns: coalitions
    /// sampled per row (default 2048).
    #[arg(long)]
    samples: Option<usize>,
    /// SmoothGrad: the noise's standard deviation, as a fraction of the input's range
    /// (default 0.15).
    #[arg(long)]
    noise: Option<f32>,
    /// SmoothGrad's noise, SHAP's coalitions and permutation's shuffles: the same seed gives
    /// the same result (default 0).
    #[arg(long)]
    seed: Option<u32>,
    /// Grad-CAM's layer (default: the last convolution).
    #[arg(long)]
    layer: Option<String>,
    /// Permutation importance: a labelled CSV of held-out rows.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Permutation importance: shuffles per column (default 5).
    #[arg(long)]
    repeats: Option<usize>,
    /// Permutation importance: the score whose drop is measured, by scikit-learn's name
    /// (accuracy, balanced_accuracy, roc_auc, f1, f1_macro, precision, recall, neg_log_loss;
    /// r2, neg_root_mean_squared_error, neg_mean_absolute_error, neg_mean_squared_error).
    /// Default: accuracy, or r2 for a regression.
    #[arg(long, value_name = "NAME")]
    scoring: Option<String>,
    #[command(flatten)]
    threads: super::Threads,
    /// For a table model: how to read the CSV inputs and --csv, whatever the training file
    /// needed (default: delimiter and header detected, no lines skipped).
    #[command(flatten)]
    csv_options: super::table::CsvArgs,
}

pub fn run(args: ExplainArgs) -> ember::Result<()> {
    super::set_threads(args.threads)?;
    let options = args.options()?;
    args.output
        .as_deref()
        .map(ember::atomic::check_output_dir)
        .transpose()?;
    print!("{}", explain(&SavedModel::load(&args.model)?, &options)?);
    Ok(())
}

impl ExplainArgs {
    fn options(&self) -> ember::Result<ExplainOptions> {
        Ok(ExplainOptions {
            model: self.model.clone(),
            inputs: self.inputs.clone(),
            method: Method::parse(&self.method)?,
            target: self.target.clone(),
            output: self.output.clone(),
            json: self.json,
            steps: self.steps,
            baseline: self.baseline.clone(),
            blur_sigma: self.blur_sigma,
            samples: self.samples,
            noise: self.noise,
            seed: self.seed,
            layer: self.layer.clone(),
            csv: self.csv.clone(),
            repeats: self.repeats,
            scoring: self.scoring.clone(),
            csv_options: self.csv_options.options(),
            csv_flags: self.csv_options.given(),
        })
    }
}

/// The explanation `options` ask of the loaded model: text, or JSON with `--json`; tables'
/// rejected rows to stdout, the files written to stderr.
pub fn explain(saved: &SavedModel, options: &ExplainOptions) -> ember::Result<String> {
    ember::jobs::explain::explain(saved, options, |event| match event {
        ExplainEvent::Read(_) => print!("{}", event.text()),
        _ => eprint!("{}", event.text()),
    })
}
