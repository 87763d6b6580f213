//! `ember tune MODEL_FILE`: search the hyperparameters its `[tune]` section names, retrain
//! the best trial, save and test it; `ember tune --csv FILE --target C` does the same for a
//! table model.

use std::path::{Path, PathBuf};

use clap::Args;
use ember::report;
use ember::tune::{self, TuneOptions};

#[derive(Args)]
pub struct TuneArgs {
    /// Model file with a [tune] section.
    #[arg(required_unless_present = "csv")]
    model: Option<PathBuf>,
    /// Data folder, instead of the model file's.
    #[arg(long, value_name = "DIR", conflicts_with = "csv")]
    data: Option<PathBuf>,
    /// Trials trained at once, 1 to 1024; each gets its share of the threads.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
    jobs: u64,
    /// Folder for the study, results, charts and the best model (default: tune-NAME, NAME
    /// being the model file's or table's name).
    #[arg(long, short, value_name = "DIR")]
    output: Option<PathBuf>,
    /// Go on with the study in the output folder: trials already done are not run again;
    /// a finished study is listed and plotted again.
    #[arg(long)]
    resume: bool,
    /// Threads for all trials together (default: EMBER_NUM_THREADS, else all cores).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    threads: Option<u64>,
    /// Tune a table model instead of a model file: a CSV file, with --target.
    #[arg(long, value_name = "FILE", conflicts_with = "model")]
    csv: Option<PathBuf>,
    /// With --csv: a TOML file whose [tune] section searches the table options (default:
    /// TPE over hidden sizes, learning rate, L2, dropout, batch size and preprocessing).
    #[arg(long, value_name = "FILE", requires = "csv")]
    space: Option<PathBuf>,
    /// With --csv: the fraction of rows held out for the test (default 0.2).
    #[arg(long, value_name = "FRACTION", requires = "csv")]
    test_size: Option<f32>,
    /// With --csv: the seed of the test split and of the table models.
    #[arg(long, requires = "csv")]
    seed: Option<u64>,
    #[command(flatten)]
    table: super::table::TableArgs,
}

pub fn run(args: TuneArgs) -> ember::Result<()> {
    super::set_threads(super::Threads {
        threads: args.threads,
    })?;
    if args.csv.is_none() {
        let mut flags = args.table.given();
        flags.extend(args.table.csv.given());
        if let Some(flag) = flags.first() {
            return Err(ember::Error::invalid(format!(
                "{flag} applies to a table (--csv FILE): a model file's search is in its [tune] section"
            )));
        }
    }
    let source = args.csv.as_deref().or(args.model.as_deref());
    let options = TuneOptions {
        data_dir: args.data.clone(),
        jobs: args.jobs as usize,
        output: args
            .output
            .clone()
            .unwrap_or_else(|| TuneOptions::default_output(source)),
        resume: args.resume,
    };
    match &args.csv {
        Some(file) => run_table(file, &args, &options),
        None => {
            let path = args.model.clone().unwrap_or_default();
            print!("{}", report::tune_file_text(&path, &options));
            let outcome = tune::tune_model_file(&path, &options, &mut |e| {
                print!("{}", report::tune_event_text(e))
            })?;
            print!("{}", report::outcome_text(&outcome, &options));
            print!("{}", report::tuned_test_text(&outcome));
            Ok(())
        }
    }
}

fn run_table(file: &Path, args: &TuneArgs, options: &TuneOptions) -> ember::Result<()> {
    let base = args.table.options(file, args.seed)?;
    let (space_file, space_text) = tune::tuning::table_space(args.space.as_deref())?;
    let data = super::table::load(file, &base)?;
    let split = tune::TableSplit::new(data, args.test_size.unwrap_or(0.2), base.seed)?;
    print!("{}", report::tune_table_text(&split, &base.target, options));
    let (outcome, scores) = tune::tune_table(
        split,
        &base,
        (&space_file, &space_text),
        options,
        &mut |e| print!("{}", report::tune_event_text(e)),
    )?;
    print!("{}", report::outcome_text(&outcome, options));
    print!("{}", report::tuned_table_text(&scores));
    Ok(())
}
