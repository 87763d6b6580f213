//! A test set's figures as the command line prints them: loss, accuracy and, when asked,
//! top-k accuracy, the classification report and the confusion matrix.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::model::Assessment;

/// The test loss and accuracy lines, after (with `with_tables`) the top-k accuracy, the
/// classification report and the confusion matrix, their classes under their names in
/// `classes` (numbered where there is none: MNIST's digits, say).
pub fn assessment_text(a: &Assessment, classes: &[String], with_tables: bool) -> String {
    let mut out = String::new();
    if with_tables {
        if let Some(top) = a.top_k_accuracy {
            let _ = writeln!(out, "Top-{} accuracy: {:.4}", top.k, top.accuracy);
        }
        if let Some(report) = &a.report {
            let _ = writeln!(out, "\n{}", report.clone().named(classes).to_text());
        }
        if let Some(cm) = &a.confusion_matrix {
            let _ = writeln!(
                out,
                "Confusion matrix (rows: true class, columns: predicted class)\n{}",
                cm.to_text_named(classes)
            );
        }
    }
    let _ = writeln!(out, "Test loss: {:.4}", a.loss);
    match a.accuracy {
        Some(accuracy) => {
            let _ = writeln!(out, "Test accuracy: {accuracy:.4}");
        }
        None => out.push_str("(compile with metrics = [\"accuracy\"] to report accuracy)\n"),
    }
    out
}

/// Per-class precision, recall and F1 under the class labels, then the test loss and
/// accuracy lines.
pub fn per_class_assessment_text(a: &Assessment) -> String {
    let mut out = String::new();
    if let Some(report) = &a.report {
        let _ = writeln!(
            out,
            "{:<16} {:>9} {:>9} {:>9} {:>9}",
            "class", "precision", "recall", "f1", "support"
        );
        for entry in &report.per_class {
            let s = &entry.scores;
            let _ = writeln!(
                out,
                "{:<16} {:>9.4} {:>9.4} {:>9.4} {:>9}",
                entry.label, s.precision, s.recall, s.f1, s.support
            );
        }
    }
    out + &assessment_text(a, &[], false)
}

/// The images left out of a data set, with the reason for each, as a warning; empty when
/// there were none.
pub fn skipped_text(skipped: &[(PathBuf, String)]) -> String {
    if skipped.is_empty() {
        return String::new();
    }
    let mut out = format!("warning: {} unreadable image(s) left out:\n", skipped.len());
    for (path, reason) in skipped {
        let _ = writeln!(out, "  {}: {reason}", path.display());
    }
    out
}
