//! Evaluate a saved model: a network on its data set's test split (loss, accuracy, top-k
//! accuracy, per-class scores, confusion matrix), a table model on a labelled CSV file.

use std::path::{Path, PathBuf};

use crate::data::table::{CsvOptions, Table};
use crate::error::{Error, Result};
use crate::report::{self, pretty_json};
use crate::saved::{NetworkModel, SavedModel};
use crate::tabular::{rows_with_target, TabularModel};

/// What to evaluate, and how to say it.
#[derive(Clone, Debug, Default)]
pub struct EvaluateOptions {
    /// The saved model's file, for messages.
    pub model: PathBuf,
    /// A network's data folder, instead of the one recorded in the model.
    pub data: Option<PathBuf>,
    /// A network's top-k accuracy for this k, when asked (default 5).
    pub top_k: Option<usize>,
    /// A binary table model's decision threshold on its positive class's probability, when
    /// asked (default: above one half).
    pub threshold: Option<f32>,
    /// JSON instead of text.
    pub json: bool,
    /// A folder for evaluation.json and the confusion matrix.
    pub report: Option<PathBuf>,
    /// A table model's labelled rows.
    pub csv: Option<PathBuf>,
    /// How to read `csv`: its own options, not the training file's (default: delimiter and
    /// header detected, no lines skipped).
    pub csv_options: CsvOptions,
    /// The CSV reading flags given (`--delimiter`, …): refused for a network.
    pub csv_flags: Vec<&'static str>,
}

/// What an evaluation meets on the way.
pub enum EvaluateEvent<'a> {
    /// Images of the data set that could not be read, with the reason for each.
    Skipped(&'a [(PathBuf, String)]),
    /// A table was read (its rejected rows and unreadable cells).
    Read(&'a Table),
    /// The file lines of the rows left out because their target is missing.
    MissingTarget(&'a [u64]),
}

impl EvaluateEvent<'_> {
    /// The event as the command line says it: the skipped images as a warning (for
    /// stderr), the rest for stdout.
    pub fn text(&self) -> String {
        match self {
            EvaluateEvent::Skipped(skipped) => report::skipped_text(skipped),
            EvaluateEvent::Read(table) => report::rejected_text(table),
            EvaluateEvent::MissingTarget(lines) => format!(
                "Left out {} row(s) whose target is missing (lines {})\n",
                lines.len(),
                report::preview(lines)
            ),
        }
    }
}

/// Evaluates `saved` as `options` say: the text (or JSON) to print.
pub fn evaluate(
    saved: &SavedModel,
    options: &EvaluateOptions,
    mut on_event: impl FnMut(EvaluateEvent),
) -> Result<String> {
    refuse_unused(saved, options)?;
    match saved {
        SavedModel::Network(network) => evaluate_network(network, options, on_event),
        SavedModel::Table(table) => evaluate_table(table, options, &mut on_event),
        SavedModel::Text(_) | SavedModel::Faq(_) => Err(Error::data(
            &options.model,
            "a text classifier or FAQ index has no test set of its own: `ember train` reports its held-out figures",
        )),
        SavedModel::Recommender(_) => Err(Error::data(
            &options.model,
            "a recommender is evaluated on test ratings: use `ember recommend evaluate MODEL --ratings FILE`",
        )),
        other => Err(Error::data(
            &options.model,
            format!("a {} model has no test set to evaluate", other.kind()),
        )),
    }
}

/// Refuses what the model's kind does not read: a network is evaluated on its data set
/// (`--data`, `--top-k`), a table model on labelled rows (`--csv` and how to read them,
/// `--threshold` for a binary one).
fn refuse_unused(saved: &SavedModel, options: &EvaluateOptions) -> Result<()> {
    let here = format!("for {} (a {} model)", options.model.display(), saved.kind());
    match saved {
        SavedModel::Network(_) => {
            let given = [
                ("--csv", options.csv.is_some()),
                ("--threshold", options.threshold.is_some()),
            ];
            let mut unused = super::checks::given(&given);
            unused.extend(&options.csv_flags);
            let why = "it is evaluated on its data set's test split (--data DIR)";
            super::checks::does_nothing(&here, why, &unused)
        }
        SavedModel::Table(_) => {
            let given = [
                ("--data", options.data.is_some()),
                ("--top-k", options.top_k.is_some()),
            ];
            let why =
                "it is evaluated on labelled rows (--csv FILE); top-k accuracy is a network's";
            super::checks::does_nothing(&here, why, &super::checks::given(&given))
        }
        _ => Ok(()),
    }
}

fn evaluate_network(
    network: &NetworkModel,
    options: &EvaluateOptions,
    mut on_event: impl FnMut(EvaluateEvent),
) -> Result<String> {
    let data_spec = network.data(&options.model)?;
    let data = match &options.data {
        Some(dir) => data_spec.load_from(dir)?,
        None => data_spec.load(Path::new("."))?,
    };
    if !data.skipped.is_empty() {
        on_event(EvaluateEvent::Skipped(&data.skipped));
    }
    if let Some(classes) = network.model.classes() {
        data.check_labels(classes)?;
    }
    let batch = network.spec.fit.batch_size;
    let assessment = network
        .model
        .assess(
            &data.x_test,
            &data.y_test,
            batch,
            options.top_k.unwrap_or(5),
        )?
        .named(&data_spec.classes);
    if let Some(dir) = &options.report {
        report::write_evaluation(dir, &assessment, assessment.confusion_matrix.as_ref())?;
    }
    if options.json {
        return pretty_json(&assessment);
    }
    Ok(format!(
        "{}: {} test samples, trained {}\n{}",
        options.model.display(),
        assessment.samples,
        report::count(network.epochs_done, "epoch"),
        report::assessment_text(&assessment, &data.classes, true)
    ))
}

/// A table model scored on the rows of `options.csv`.
fn evaluate_table(
    model: &TabularModel,
    options: &EvaluateOptions,
    on_event: &mut impl FnMut(EvaluateEvent),
) -> Result<String> {
    if let Some(t) = options.threshold {
        if model.task != crate::tabular::Task::Binary {
            return Err(Error::data(
                &options.model,
                format!("--threshold {t} decides between two classes; this table model does not"),
            ));
        }
        crate::prediction::check_threshold(t)?;
    }
    let file = options.csv.as_ref().ok_or_else(|| Error::Data {
        path: options.model.clone(),
        message: format!(
            "a table model is evaluated on rows it has not seen: pass --csv FILE (it was trained on {})",
            model.file.display()
        ),
    })?;
    let mut table = Table::read(file, &options.csv_options)?;
    model.name_columns(&mut table)?;
    on_event(EvaluateEvent::Read(&table));
    let target = table.column_named(model.preprocessor.target.column())?;
    let (rows, missing) = rows_with_target(&table, target);
    if !missing.is_empty() {
        on_event(EvaluateEvent::MissingTarget(&missing));
    }
    let scores = model.score(&table, &rows, options.threshold)?;
    if let Some(dir) = &options.report {
        report::write_evaluation(dir, &scores, scores.confusion_matrix.as_ref())?;
    }
    if options.json {
        return pretty_json(&scores);
    }
    // The file the model was trained on holds its training rows: no held-out figures then.
    let same_file = match (
        std::fs::canonicalize(file),
        std::fs::canonicalize(&model.file),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    let mut out = format!(
        "{}: {} rows of {}\n",
        options.model.display(),
        scores.samples,
        file.display()
    );
    if same_file {
        out.push_str(
            "note: this is the file the model was trained on, so these rows include its \
             training rows and the scores are not held-out figures\n",
        );
    }
    Ok(out + &report::table_evaluation_text(&scores))
}
