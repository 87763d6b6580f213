//! `ember tune MODEL_FILE`: search the hyperparameters its `[tune]` section names, retrain
//! the best trial, save and test it; `ember tune --csv FILE --target C` does the same for a
//! table model.

use std::path::{Path, PathBuf};

use clap::Args;
use ember::tune::{self, Event, TrialRecord, TrialState, TuneOptions};

#[derive(Args)]
pub struct TuneArgs {
    /// Model file with a [tune] section.
    #[arg(required_unless_present = "csv")]
    model: Option<PathBuf>,
    /// Data folder, instead of the model file's.
    #[arg(long, value_name = "DIR", conflicts_with = "csv")]
    data: Option<PathBuf>,
    /// Trials trained at once; each gets its share of the threads.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
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
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
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
    super::set_threads(args.threads)?;
    if args.csv.is_none() {
        let mut flags = args.table.given();
        flags.extend(args.table.csv.given());
        if let Some(flag) = flags.first() {
            return Err(ember::Error::invalid(format!(
                "{flag} applies to a table (--csv FILE): a model file's search is in its [tune] section"
            )));
        }
    }
    let name = args
        .csv
        .as_ref()
        .or(args.model.as_ref())
        .and_then(|p| p.file_stem())
        .map_or("study".into(), |s| s.to_string_lossy().into_owned());
    let options = TuneOptions {
        data_dir: args.data.clone(),
        jobs: args.jobs as usize,
        output: args
            .output
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("tune-{name}"))),
        resume: args.resume,
    };
    match &args.csv {
        Some(file) => run_table(file, &args, &options),
        None => {
            let path = args.model.clone().unwrap_or_default();
            println!(
                "Tuning {} ({}, {} at a time), study in {}",
                path.display(),
                super::threads_text(ember::num_threads()),
                options.jobs,
                options.output.join(tune::tuning::STUDY_FILE).display()
            );
            let outcome = tune::tune_model_file(&path, &options, &mut |e| print_event(e))?;
            print_outcome(&outcome, &options);
            match outcome.last.test.get("accuracy") {
                Some(a) => println!("Test accuracy: {a:.4}"),
                None => println!(
                    "Test loss: {:.4}",
                    outcome.last.test.get("loss").copied().unwrap_or(f64::NAN)
                ),
            }
            Ok(())
        }
    }
}

fn run_table(file: &Path, args: &TuneArgs, options: &TuneOptions) -> ember::Result<()> {
    use super::table;
    let base = args.table.options(file, args.seed)?;
    let (space_file, space_text) = match &args.space {
        Some(path) => (
            path.clone(),
            std::fs::read_to_string(path).map_err(|e| ember::Error::io(path, e))?,
        ),
        None => (
            PathBuf::from("(the built-in table space)"),
            tune::tuning::TABLE_SPACE.to_string(),
        ),
    };
    let data = table::load(file, &base)?;
    let (train, test) = ember::jobs::table::split(&data, args.test_size.unwrap_or(0.2), base.seed)?;
    println!(
        "Tuning a table model of '{}' ({}) on {} rows, testing on {} ({}, {} at a time), study in {}",
        base.target,
        table::task_name(data.task),
        train.len(),
        test.len(),
        super::threads_text(ember::num_threads()),
        options.jobs,
        options.output.join(tune::tuning::STUDY_FILE).display()
    );
    let split = tune::TableSplit {
        table: data.table,
        train_rows: train,
        test_rows: test,
        task: data.task,
    };
    let (outcome, scores) = tune::tune_table(
        split,
        &base,
        (&space_file, &space_text),
        options,
        &mut |e| print_event(e),
    )?;
    print_outcome(&outcome, options);
    match (scores.accuracy, &scores.regression) {
        (Some(a), _) => println!("Test accuracy: {a:.4}"),
        (None, Some(r)) => println!("Test RMSE: {:.4}", r.rmse),
        (None, None) => println!("Test loss: {:.4}", scores.loss),
    }
    Ok(())
}

/// Prints each trial's result as it comes.
fn print_event(event: Event) {
    match event {
        Event::Trial(t) => print_trial(t),
        Event::OutOfTime => println!("max_seconds reached: no more trials start"),
    }
}

fn print_trial(t: &TrialRecord) {
    let params: Vec<String> = t
        .params
        .iter()
        .map(|(k, v)| format!("{k}={}", compact(v)))
        .collect();
    let what = match (t.state, t.value()) {
        (TrialState::Failed, _) => {
            format!("failed: {}", t.reason.as_deref().unwrap_or("no reason"))
        }
        (TrialState::Pruned, Some(v)) => {
            // Its figures were printed when it reached the rung.
            println!(
                "Trial {:>3}: stopped at epoch {} ({v:.4}: not among the rung's best)",
                t.number,
                t.values.len()
            );
            return;
        }
        (_, Some(v)) => match t.values.len() {
            1 => format!("{v:.4} after 1 epoch"),
            n => format!("{v:.4} after {n} epochs"),
        },
        (_, None) => "no value".into(),
    };
    println!(
        "Trial {:>3}: {what} ({:.1} s) {}",
        t.number,
        t.seconds,
        params.join(" ")
    );
}

fn compact(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap_or(0.0);
            if x != 0.0 && x.abs() < 0.01 {
                format!("{x:.3e}")
            } else {
                format!("{x:.4}")
            }
        }
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn print_outcome(outcome: &tune::Outcome, options: &TuneOptions) {
    let settings = &outcome.settings;
    let trials = outcome.study.trials.len();
    let failed = outcome
        .study
        .trials
        .values()
        .filter(|t| t.state == TrialState::Failed)
        .count();
    let t = outcome.times;
    let trained: f64 = outcome.study.trials.values().map(|t| t.seconds).sum();
    let training = match options.jobs {
        1 => format!("{trained:.1} s of it training"),
        n => format!("{trained:.1} s of training on {n} workers"),
    };
    println!(
        "\nSearch: {trials} trials in {:.1} s, {training}, {:.4} s outside training (sampling {:.4} s, recording {:.4} s)",
        t.seconds,
        t.sampling + t.recording,
        t.sampling,
        t.recording
    );
    println!(
        "{trials} trials ({failed} failed), best first:\n{}",
        tune::report::results_text(&outcome.study, settings, 20)
    );
    if outcome.study.ignored > 0 {
        println!(
            "(the study file had {} unreadable line(s), left out)",
            outcome.study.ignored
        );
    }
    println!(
        "Results, charts and the best model (trial {}) in {}",
        outcome.best.number,
        options.output.display()
    );
    if outcome.retrained_differs {
        println!(
            "warning: retrained, trial {} scored {:.6} instead of {:.6}",
            outcome.best.number,
            outcome.last.value,
            outcome.best.value().unwrap_or(f64::NAN)
        );
    }
    println!(
        "Best {}: {:.4}",
        settings.objective,
        outcome.best.value().unwrap_or(f64::NAN)
    );
}
