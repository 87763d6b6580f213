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
    let mut values = Vec::new();
    let name = if data.task == ember::tabular::Task::Regression {
        "RMSE"
    } else {
        "accuracy"
    };
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
        let value = scores
            .regression
            .map_or_else(|| scores.accuracy.unwrap_or(0.0), |r| r.rmse);
        println!(
            "fold {}: {name} {value:.4} ({} epochs)",
            i + 1,
            history.epochs.len()
        );
        values.push(value);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    println!("CV {name}: {mean:.4} ± {sd:.4}");
    Ok(())
}
