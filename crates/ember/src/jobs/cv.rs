//! k-fold cross-validation of a table model: the rows split into folds (stratified for
//! classification), a model trained on all folds but one and scored on that one, in turn;
//! every score per fold and as mean ± standard deviation over the folds.

use std::path::Path;

use crate::data::split::k_fold;
use crate::data::table::Table;
use crate::error::Result;
use crate::model::Verbosity;
use crate::tabular::{class_of_rows, TabularModel, TabularOptions, TabularScores, Task};
use crate::tensor::stats;

/// What to cross-validate: the rows of a table (those whose target is present) and how to
/// train on them.
#[derive(Clone, Copy, Debug)]
pub struct CvData<'a> {
    pub table: &'a Table,
    /// The rows to split into folds.
    pub rows: &'a [usize],
    /// The target column.
    pub target: usize,
    pub task: Task,
}

/// One fold's model, scored on the fold.
#[derive(Clone, Debug, PartialEq)]
pub struct FoldScores {
    /// Every score the fold reports, by name; the headline one (RMSE, or accuracy) last.
    pub scores: Vec<(&'static str, f64)>,
    /// Epochs trained (early stopping ends training before the options' epochs).
    pub epochs: usize,
}

/// A score over the folds.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreSummary {
    pub name: &'static str,
    pub mean: f64,
    /// The population standard deviation over the folds (numpy's `std()`, what
    /// scikit-learn's `cross_val_score(...).std()` and Surprise give).
    pub std: f64,
    /// The folds that have this score (ROC AUC needs both classes in a fold's held-out
    /// rows): the mean and deviation are over these.
    pub folds: usize,
}

/// What a cross-validation gives.
#[derive(Clone, Debug, PartialEq)]
pub struct CrossValidation {
    pub folds: Vec<FoldScores>,
    /// In the order of the first fold's scores, the headline one last.
    pub summary: Vec<ScoreSummary>,
}

/// What [`cross_validate`] reports as it goes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CvEvent<'a> {
    /// The rows are split into this many folds; training starts.
    Split { folds: usize },
    /// A fold's model is trained and scored (`fold` counts from 0).
    Fold { fold: usize, scores: &'a FoldScores },
}

impl CvEvent<'_> {
    /// The event as the command line says it: `data` is what is cross-validated, `file`
    /// and `target` name the table and its target column.
    pub fn text(&self, file: &Path, target: &str, data: &CvData) -> String {
        match self {
            CvEvent::Split { folds } => format!(
                "{}: {folds}-fold cross-validation, {} of '{target}' on {} rows\n",
                file.display(),
                crate::report::task_name(data.task),
                data.rows.len()
            ),
            CvEvent::Fold { fold, scores } => {
                let text: Vec<String> = scores
                    .scores
                    .iter()
                    .map(|(n, v)| format!("{n} {v:.4}"))
                    .collect();
                format!(
                    "Fold {}: {} ({} epochs)\n",
                    fold + 1,
                    text.join(", "),
                    scores.epochs
                )
            }
        }
    }
}

/// Every score over the folds, as `CV NAME: mean ± std` (see [`figure_over_folds`]); the
/// headline score (RMSE, or accuracy) comes last.
pub fn summary_text(cv: &CrossValidation) -> String {
    cv.summary
        .iter()
        .map(|s| {
            let over = match s.folds == cv.folds.len() {
                true => String::new(),
                false => format!(
                    " (over the {} of {} folds that have it)",
                    s.folds,
                    cv.folds.len()
                ),
            };
            format!("{}{over}\n", figure_over_folds(s.name, s.mean, s.std))
        })
        .collect()
}

/// A figure over cross-validation's folds, as every command writes one:
/// `CV RMSE: 0.9021 ± 0.0035`, the mean and the population standard deviation to four
/// decimals.
pub fn figure_over_folds(name: &str, mean: f64, std: f64) -> String {
    format!("CV {name}: {mean:.4} ± {std:.4}")
}

/// Cross-validates a table model over `folds` folds, split and trained with `options.seed`;
/// `on_event` hears of the split and of each fold as it ends.
pub fn cross_validate(
    data: CvData,
    folds: usize,
    options: &TabularOptions,
    mut on_event: impl FnMut(CvEvent) -> Result<()>,
) -> Result<CrossValidation> {
    let classes = class_of_rows(data.table, data.target, data.rows, data.task);
    let splits = k_fold(data.rows.len(), folds, classes.as_deref(), options.seed)?;
    on_event(CvEvent::Split {
        folds: splits.len(),
    })?;
    let mut results = Vec::new();
    for (i, (train, validation)) in splits.iter().enumerate() {
        let train: Vec<usize> = train.iter().map(|&k| data.rows[k]).collect();
        let validation: Vec<usize> = validation.iter().map(|&k| data.rows[k]).collect();
        let (model, history) =
            TabularModel::fit(data.table, &train, data.task, options, Verbosity::Silent)?;
        let fold = FoldScores {
            scores: named_scores(&model.score(data.table, &validation, None)?),
            epochs: history.epochs.len(),
        };
        on_event(CvEvent::Fold {
            fold: i,
            scores: &fold,
        })?;
        results.push(fold);
    }
    let summary = summarise(&results);
    Ok(CrossValidation {
        folds: results,
        summary,
    })
}

/// Each score over the folds that have it, as mean and population deviation: every score any
/// fold has, in the order the folds give them, the headline one (accuracy, or RMSE) last.
fn summarise(results: &[FoldScores]) -> Vec<ScoreSummary> {
    let mut names: Vec<&'static str> = Vec::new();
    for fold in results {
        for &(name, _) in &fold.scores {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    if let Some(i) = names.iter().position(|&n| n == "accuracy" || n == "RMSE") {
        let headline = names.remove(i);
        names.push(headline);
    }
    names
        .iter()
        .map(|&name| {
            let values: Vec<f64> = results
                .iter()
                .filter_map(|f| f.scores.iter().find(|s| s.0 == name).map(|s| s.1))
                .collect();
            let (mean, std) = stats::mean_std(&values, 0);
            ScoreSummary {
                name,
                mean,
                std,
                folds: values.len(),
            }
        })
        .collect()
}

/// Every score a held-out split reports, by name, the headline one (RMSE, or accuracy) last.
fn named_scores(scores: &TabularScores) -> Vec<(&'static str, f64)> {
    match &scores.regression {
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
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::data::table::CsvOptions;

    #[test]
    fn each_fold_is_reported_then_summarised() {
        let mut csv = String::from("x,label\n");
        for i in 0..30 {
            let x = i as f32 / 30.0;
            csv += &format!("{x},{}\n", if x > 0.5 { "a" } else { "b" });
        }
        let table =
            Table::parse(csv.as_bytes(), Path::new("t.csv"), &CsvOptions::default()).unwrap();
        let rows: Vec<usize> = (0..30).collect();
        let data = CvData {
            table: &table,
            rows: &rows,
            target: 1,
            task: Task::Binary,
        };
        let options = TabularOptions {
            target: "label".into(),
            hidden: vec![4],
            epochs: 2,
            ..TabularOptions::default()
        };
        let mut heard = Vec::new();
        let cv = cross_validate(data, 3, &options, |e| {
            heard.push(match e {
                CvEvent::Split { folds } => format!("split {folds}"),
                CvEvent::Fold { fold, scores } => format!("fold {fold} {}", scores.epochs),
            });
            Ok(())
        })
        .unwrap();
        assert_eq!(heard, ["split 3", "fold 0 2", "fold 1 2", "fold 2 2"]);
        let names: Vec<&str> = cv.summary.iter().map(|s| s.name).collect();
        assert_eq!(names.last(), Some(&"accuracy"), "the headline score last");
        let accuracies: Vec<f64> = cv
            .folds
            .iter()
            .map(|f| f.scores.last().unwrap().1)
            .collect();
        let mean = accuracies.iter().sum::<f64>() / 3.0;
        assert!((cv.summary.last().unwrap().mean - mean).abs() < 1e-12);
        assert!(cv.summary.iter().all(|s| s.folds == 3));
        assert!(!summary_text(&cv).contains("folds that have it"));
        assert!(
            cross_validate(data, 31, &options, |_| Ok(())).is_err(),
            "more folds than rows"
        );
    }

    #[test]
    fn a_score_some_folds_lack_is_summarised_over_those_that_have_it() {
        let fold = |scores: Vec<(&'static str, f64)>| FoldScores { scores, epochs: 1 };
        let mut cv = CrossValidation {
            folds: vec![
                fold(vec![("accuracy", 0.5)]),
                fold(vec![("ROC AUC", 0.8), ("accuracy", 0.7)]),
                fold(vec![("ROC AUC", 0.6), ("accuracy", 0.9)]),
            ],
            summary: Vec::new(),
        };
        cv.summary = summarise(&cv.folds);
        let names: Vec<(&str, usize)> = cv.summary.iter().map(|s| (s.name, s.folds)).collect();
        assert_eq!(names, [("ROC AUC", 2), ("accuracy", 3)]);
        let text = summary_text(&cv);
        assert!(
            text.contains("CV ROC AUC: 0.7000 ± 0.1000 (over the 2 of 3 folds that have it)\n"),
            "{text}"
        );
        assert!(text.contains("CV accuracy: 0.7000 ± 0.1633\n"), "{text}");
    }
}
