//! `ember cv --csv FILE --target COLUMN`: k-fold cross-validation of a table model.

use std::path::PathBuf;

use clap::Args;
use ember::jobs::cv::{cross_validate, summary_text, CvData};

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
    #[command(flatten)]
    threads: super::Threads,
}

pub fn run(args: CvArgs) -> ember::Result<()> {
    super::set_threads(args.threads)?;
    let options = args.table.options(&args.csv, args.seed)?;
    let data = super::table::load(&args.csv, &options)?;
    let cv_data = CvData {
        table: &data.table,
        rows: &data.rows,
        target: data.target,
        task: data.task,
    };
    let cv = cross_validate(cv_data, args.folds as usize, &options, |event| {
        print!("{}", event.text(&args.csv, &options.target, &cv_data));
        Ok(())
    })?;
    print!("{}", summary_text(&cv));
    Ok(())
}
