//! A hyperparameter search as the command line prints it: each trial as it ends, then the
//! search's time, the ranked trials and the best trial's figures.

use std::fmt::Write as _;

use crate::tabular::TabularScores;
use std::path::Path;

use crate::tune::tuning::STUDY_FILE;
use crate::tune::{self, Event, Outcome, TableSplit, TrialRecord, TrialState, TuneOptions};

/// The line of a search's event.
pub fn tune_event_text(event: Event) -> String {
    match event {
        Event::Trial(t) => trial_text(t),
        Event::OutOfTime => "max_seconds reached: no more trials start\n".into(),
    }
}

fn trial_text(t: &TrialRecord) -> String {
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
            return format!(
                "Trial {:>3}: stopped at epoch {} ({v:.4}: not among the rung's best)\n",
                t.number,
                t.values.len()
            );
        }
        (_, Some(v)) => match t.values.len() {
            1 => format!("{v:.4} after 1 epoch"),
            n => format!("{v:.4} after {n} epochs"),
        },
        (_, None) => "no value".into(),
    };
    format!(
        "Trial {:>3}: {what} ({:.1} s) {}\n",
        t.number,
        t.seconds,
        params.join(" ")
    )
}

/// A parameter's value: four decimals, or scientific notation below 0.01.
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

/// The search's time, the trials best first, where the results are and the best value.
pub fn outcome_text(outcome: &Outcome, options: &TuneOptions) -> String {
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
    let mut out = format!(
        "\nSearch: {trials} trials in {:.1} s, {training}, {:.4} s outside training (sampling {:.4} s, recording {:.4} s)\n",
        t.seconds,
        t.sampling + t.recording,
        t.sampling,
        t.recording
    );
    let _ = writeln!(
        out,
        "{trials} trials ({failed} failed), best first:\n{}",
        tune::report::results_text(&outcome.study, settings, 20)
    );
    if outcome.study.ignored > 0 {
        let _ = writeln!(
            out,
            "(the study file had {} unreadable line(s), left out)",
            outcome.study.ignored
        );
    }
    let _ = writeln!(
        out,
        "Results, charts and the best model (trial {}) in {}",
        outcome.best.number,
        options.output.display()
    );
    if outcome.retrained_differs {
        let _ = writeln!(
            out,
            "warning: retrained, trial {} scored {:.6} instead of {:.6}",
            outcome.best.number,
            outcome.last.value,
            outcome.best.value().unwrap_or(f64::NAN)
        );
    }
    let _ = writeln!(
        out,
        "Best {}: {:.4}",
        settings.objective,
        outcome.best.value().unwrap_or(f64::NAN)
    );
    out
}

/// The retrained best model's test figure: accuracy where there is one, else the loss.
pub fn tuned_test_text(outcome: &Outcome) -> String {
    match outcome.last.test.get("accuracy") {
        Some(a) => format!("Test accuracy: {a:.4}\n"),
        None => format!(
            "Test loss: {:.4}\n",
            outcome.last.test.get("loss").copied().unwrap_or(f64::NAN)
        ),
    }
}

/// The retrained best table model's test figure: accuracy, RMSE, or else the loss.
pub fn tuned_table_text(scores: &TabularScores) -> String {
    match (scores.accuracy, &scores.regression) {
        (Some(a), _) => format!("Test accuracy: {a:.4}\n"),
        (None, Some(r)) => format!("Test RMSE: {:.4}\n", r.rmse),
        (None, None) => format!("Test loss: {:.4}\n", scores.loss),
    }
}

/// The line a model file's search starts with.
pub fn tune_file_text(path: &Path, options: &TuneOptions) -> String {
    format!(
        "Tuning {} ({}, {} at a time), study in {}\n",
        path.display(),
        super::threads_text(crate::num_threads()),
        options.jobs * crate::distributed::world().size(),
        options.output.join(STUDY_FILE).display()
    )
}

/// The line a table model's search starts with; `target` is the target column.
pub fn tune_table_text(split: &TableSplit, target: &str, options: &TuneOptions) -> String {
    format!(
        "Tuning a table model of '{target}' ({}) on {} rows, testing on {} ({}, {} at a time), study in {}\n",
        super::task_name(split.task),
        split.train_rows.len(),
        split.test_rows.len(),
        super::threads_text(crate::num_threads()),
        options.jobs * crate::distributed::world().size(),
        options.output.join(STUDY_FILE).display()
    )
}
