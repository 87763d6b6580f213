//! Tables and table models as the command line prints them: what a reader left out, a
//! column summary, a split's scores.

use std::fmt::Write as _;

use crate::data::table::{ColumnKind, Table};
use crate::tabular::{TabularScores, Task};

/// The rows a reader dropped, with their lines and reasons, and the cells of number columns
/// it read as missing (ten of each at most); empty when there were none.
pub fn rejected_text(table: &Table) -> String {
    let mut out = String::new();
    if !table.rejected.is_empty() {
        let _ = writeln!(out, "Dropped {} malformed rows:", table.rejected.len());
        for r in table.rejected.iter().take(10) {
            let _ = writeln!(out, "  line {}: {}", r.line, r.reason);
        }
        if table.rejected.len() > 10 {
            let _ = writeln!(out, "  … and {} more", table.rejected.len() - 10);
        }
    }
    if !table.bad_cells.is_empty() {
        let _ = writeln!(
            out,
            "Read {} cells of number columns that are not numbers as missing:",
            table.bad_cells.len()
        );
        for b in table.bad_cells.iter().take(10) {
            let _ = writeln!(
                out,
                "  line {}: column '{}': {:?}",
                b.line, b.column, b.text
            );
        }
        if table.bad_cells.len() > 10 {
            let _ = writeln!(out, "  … and {} more", table.bad_cells.len() - 10);
        }
    }
    out
}

/// The first eight line numbers, comma-separated, then `…` if there are more.
pub fn preview(lines: &[u64]) -> String {
    let mut text: Vec<String> = lines.iter().take(8).map(|l| l.to_string()).collect();
    if lines.len() > 8 {
        text.push("…".into());
    }
    text.join(", ")
}

/// "binary classification", "multiclass classification" or "regression".
pub fn task_name(task: Task) -> &'static str {
    match task {
        Task::Binary => "binary classification",
        Task::Multiclass => "multiclass classification",
        Task::Regression => "regression",
    }
}

/// A split's scores, a line each, named after `prefix` ("Test"); the last line is
/// `Test accuracy: …` or `Test RMSE: …`.
pub fn scores_text(scores: &TabularScores, prefix: &str) -> String {
    let mut out = String::new();
    let mut show = |name: &str, v: Option<f64>| {
        if let Some(v) = v {
            let _ = writeln!(out, "{prefix} {name}: {v:.4}");
        }
    };
    match &scores.regression {
        Some(r) => {
            show("MAE", Some(r.mae));
            show("R²", Some(r.r2));
            show("RMSE", Some(r.rmse));
        }
        None => {
            show("precision", scores.precision);
            show("recall", scores.recall);
            show("F1", scores.f1);
            show("ROC AUC", scores.roc_auc);
            show("accuracy", scores.accuracy);
        }
    }
    out
}

/// The per-class report and the confusion matrix under the class names, the loss and the
/// scores of a table model on a labelled file.
pub fn table_evaluation_text(scores: &TabularScores) -> String {
    let mut out = String::new();
    if let Some(report) = &scores.report {
        let _ = writeln!(out, "{}", report.to_text());
    }
    if let Some(matrix) = &scores.confusion_matrix {
        out.push_str("Confusion matrix (rows: true class, columns: predicted class)\n");
        let names: Vec<String> = scores.report.as_ref().map_or_else(Vec::new, |r| {
            r.per_class.iter().map(|c| c.label.clone()).collect()
        });
        out.push_str(&matrix.to_text_named(&names));
    }
    let _ = writeln!(out, "Test loss: {:.4}", scores.loss);
    out + &scores_text(scores, "Test")
}

/// `ember data inspect`: per column its type, missing and distinct counts, and range or
/// most frequent values; then the rows a strict read would reject and the cells of number
/// columns that are not numbers. `name` is the file as given.
pub fn inspect_text(table: &Table, name: &str) -> String {
    let mut out = format!(
        "{name}: {} rows, {} columns\n{:<24} {:<12} {:>8} {:>9}  summary\n",
        table.rows(),
        table.names.len(),
        "column",
        "type",
        "missing",
        "distinct"
    );
    for s in (0..table.names.len()).map(|i| table.summary(i)) {
        let kind = format!("{:?}", s.kind).to_lowercase();
        let detail = match s.kind {
            ColumnKind::Numeric | ColumnKind::Identifier => format!(
                "min {} max {} mean {:.4}",
                s.min.unwrap_or(f64::NAN),
                s.max.unwrap_or(f64::NAN),
                s.mean.unwrap_or(f64::NAN)
            ),
            _ => s
                .top
                .iter()
                .map(|(v, c)| format!("{v} ({c})"))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let _ = writeln!(
            out,
            "{:<24} {:<12} {:>8} {:>9}  {detail}",
            s.name, kind, s.missing, s.distinct
        );
    }
    if table.rejected.is_empty() {
        out.push_str("No rejected rows.\n");
    } else {
        let _ = writeln!(out, "{} rows would be rejected:", table.rejected.len());
        for r in &table.rejected {
            let _ = writeln!(out, "  line {}: {}", r.line, r.reason);
        }
    }
    if !table.bad_cells.is_empty() {
        let _ = writeln!(
            out,
            "{} cells of number columns are not numbers (read as missing):",
            table.bad_cells.len()
        );
        for b in &table.bad_cells {
            let _ = writeln!(
                out,
                "  line {}: column '{}': {:?}",
                b.line, b.column, b.text
            );
        }
    }
    out
}
