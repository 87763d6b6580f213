//! `ember cv --csv FILE --target COLUMN`: k-fold cross-validation of a table model.

use std::path::PathBuf;

use clap::Args;
use ember::data::split::k_fold;
use ember::tabular::{class_of_rows, TabularModel};

#[derive(Args)]
pub struct CvArgs {
    /// The CSV file.
    #[arg(long, value_name = "FILE")]
    csv: PathBuf,
    /// Number of folds.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(2..))]
    folds: u64,
    /// Seed for the folds and the models (default: the options file's, else 1).
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    table: super::table::TableArgs,
    /// Threads for the numeric kernels.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    threads: Option<u64>,
}

pub fn run(args: CvArgs) -> ember::Result<()> {
    super::set_threads(args.threads)?;
    let options = args.table.options(&args.csv, args.seed)?;
    let data = super::table::load(&args.csv, &options)?;
    let classes = class_of_rows(&data.table, data.target, &data.rows, data.task);
    let folds = k_fold(
        data.rows.len(),
        args.folds as usize,
        classes.as_deref(),
        options.seed,
    )?;
    println!(
        "{}: {}-fold cross-validation, {} of '{}' on {} rows",
        args.csv.display(),
        folds.len(),
        super::table::task_name(data.task),
        options.target,
        data.rows.len()
    );
    // Every score the test split reports, per fold and as mean ± standard deviation; the
    // headline score (RMSE, or accuracy) comes last.
    let mut folds_scores: Vec<Vec<(&str, f64)>> = Vec::new();
    for (i, (train, validation)) in folds.iter().enumerate() {
        let train: Vec<usize> = train.iter().map(|&k| data.rows[k]).collect();
        let validation: Vec<usize> = validation.iter().map(|&k| data.rows[k]).collect();
        let (model, history) = TabularModel::fit(
            &data.table,
            &train,
            data.task,
            &options,
            ember::Verbosity::Silent,
        )?;
        let scores = model.score(&data.table, &validation)?;
        let named: Vec<(&str, f64)> = match &scores.regression {
            Some(r) => vec![("MAE", r.mae), ("R²", r.r2), ("RMSE", r.rmse)],
            None => [
                ("precision", scores.precision),
                ("recall", scores.recall),
                ("F1", scores.f1),
                ("ROC AUC", scores.roc_auc),
                ("accuracy", scores.accuracy),
            ]
            .into_iter()
            .filter_map(|(n, v)| v.map(|v| (n, v)))
            .collect(),
        };
        let text: Vec<String> = named.iter().map(|(n, v)| format!("{n} {v:.4}")).collect();
        println!(
            "fold {}: {} ({} epochs)",
            i + 1,
            text.join(", "),
            history.epochs.len()
        );
        folds_scores.push(named);
    }
    let n = folds_scores.len() as f64;
    let first = folds_scores.first().cloned().unwrap_or_default();
    for (k, (name, _)) in first.iter().enumerate() {
        let values: Vec<f64> = folds_scores.iter().map(|f| f[k].1).collect();
        let mean = values.iter().sum::<f64>() / n;
        let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        println!("CV {name}: {mean:.4} ± {sd:.4}");
    }
    Ok(())
}
