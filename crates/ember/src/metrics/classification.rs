//! The classification report: confusion matrix, per-class precision / recall / F1 with macro
//! and weighted averages, and top-k accuracy — scikit-learn's definitions.

use serde::Serialize;

use super::AccuracyKind;
use crate::error::{Error, Result};
use crate::tensor::{argmax, Tensor};

/// Counts of (true class, predicted class) pairs. Rows are true classes, columns predictions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfusionMatrix {
    classes: usize,
    counts: Vec<usize>,
}

/// Precision, recall, F1 and support of one class (or an average of them).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ClassScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

/// One class's scores under its label: `{"label", "index", "precision", "recall", "f1",
/// "support"}` in JSON, the class named as predictions name it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassEntry {
    /// The class as the model names it (its number, as text, where it has no name).
    pub label: String,
    /// The class's number among the model's outputs.
    pub index: usize,
    #[serde(flatten)]
    pub scores: ClassScores,
}

/// Everything `ember evaluate` reports about a classifier.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassificationReport {
    pub accuracy: f64,
    pub per_class: Vec<ClassEntry>,
    pub macro_avg: ClassScores,
    pub weighted_avg: ClassScores,
}

/// Each sample's true class and the model's predicted class, from model outputs and targets.
/// A single sigmoid output counts as two classes (output > 0.5 is class 1).
pub fn true_and_predicted(
    kind: AccuracyKind,
    outputs: &Tensor,
    targets: &Tensor,
) -> Result<(Vec<usize>, Vec<usize>)> {
    let width = outputs.shape().last().copied().unwrap_or(1).max(1);
    let rows = outputs.len() / width;
    let mismatch = || {
        Error::shape(
            "classification report",
            format!(
                "outputs {:?} vs targets {:?}",
                outputs.shape(),
                targets.shape()
            ),
        )
    };
    let predicted: Vec<usize> = if width == 1 {
        outputs.data().iter().map(|&p| (p > 0.5) as usize).collect()
    } else {
        outputs.data().chunks(width).map(argmax).collect()
    };
    let truth: Vec<usize> = match kind {
        AccuracyKind::Sparse if targets.len() == rows => {
            targets.data().iter().map(|&t| t as usize).collect()
        }
        AccuracyKind::Categorical if targets.len() == outputs.len() => {
            targets.data().chunks(width).map(argmax).collect()
        }
        AccuracyKind::Binary if width == 1 && targets.len() == rows => {
            targets.data().iter().map(|&t| (t > 0.5) as usize).collect()
        }
        AccuracyKind::Binary if width > 1 => {
            return Err(Error::invalid(
                "a confusion matrix needs one label per sample, not several binary outputs",
            ))
        }
        _ => return Err(mismatch()),
    };
    Ok((truth, predicted))
}

impl ConfusionMatrix {
    /// A matrix over `classes` classes from parallel lists of true and predicted classes.
    pub fn new(classes: usize, truth: &[usize], predicted: &[usize]) -> Result<Self> {
        let mut counts = vec![0; classes * classes];
        for (&t, &p) in truth.iter().zip(predicted) {
            if t >= classes || p >= classes {
                return Err(Error::invalid(format!(
                    "class {} out of range for {classes} classes",
                    t.max(p)
                )));
            }
            counts[t * classes + p] += 1;
        }
        Ok(ConfusionMatrix { classes, counts })
    }

    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Samples of class `truth` predicted as `predicted`.
    pub fn count(&self, truth: usize, predicted: usize) -> usize {
        self.counts[truth * self.classes + predicted]
    }

    pub fn total(&self) -> usize {
        self.counts.iter().sum()
    }

    fn column_sum(&self, c: usize) -> usize {
        (0..self.classes).map(|t| self.count(t, c)).sum()
    }

    fn row_sum(&self, c: usize) -> usize {
        (0..self.classes).map(|p| self.count(c, p)).sum()
    }

    /// Precision, recall, F1 per class, with macro and weighted averages. A class that is never
    /// predicted (or never present) scores 0 there, as scikit-learn's `zero_division=0`.
    pub fn report(&self) -> ClassificationReport {
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let per_class: Vec<ClassScores> = (0..self.classes)
            .map(|c| {
                let hits = self.count(c, c);
                let precision = ratio(hits, self.column_sum(c));
                let recall = ratio(hits, self.row_sum(c));
                let f1 = if precision + recall == 0.0 {
                    0.0
                } else {
                    2.0 * precision * recall / (precision + recall)
                };
                ClassScores {
                    precision,
                    recall,
                    f1,
                    support: self.row_sum(c),
                }
            })
            .collect();
        let total = self.total();
        // Like scikit-learn, average over the classes present in the truth or the predictions.
        let present: Vec<bool> = (0..self.classes)
            .map(|c| self.row_sum(c) + self.column_sum(c) > 0)
            .collect();
        let scored = || {
            per_class
                .iter()
                .zip(&present)
                .filter(|(_, &p)| p)
                .map(|(s, _)| s)
        };
        let average = |weight: &dyn Fn(&ClassScores) -> f64| {
            let sum_w: f64 = scored().map(weight).sum();
            let mean = |f: &dyn Fn(&ClassScores) -> f64| {
                if sum_w == 0.0 {
                    0.0
                } else {
                    scored().map(|s| weight(s) * f(s)).sum::<f64>() / sum_w
                }
            };
            ClassScores {
                precision: mean(&|s| s.precision),
                recall: mean(&|s| s.recall),
                f1: mean(&|s| s.f1),
                support: total,
            }
        };
        let hits: usize = (0..self.classes).map(|c| self.count(c, c)).sum();
        ClassificationReport {
            accuracy: ratio(hits, total),
            macro_avg: average(&|_| 1.0),
            weighted_avg: average(&|s| s.support as f64),
            per_class: per_class
                .into_iter()
                .enumerate()
                .map(|(c, scores)| ClassEntry {
                    label: c.to_string(),
                    index: c,
                    scores,
                })
                .collect(),
        }
    }

    /// The matrix as a text table, rows true classes and columns predictions, numbered.
    pub fn to_text(&self) -> String {
        self.to_text_named(&[])
    }

    /// The same, each class under its name in `names` (numbered where there is none).
    pub fn to_text_named(&self, names: &[String]) -> String {
        let names: Vec<String> = (0..self.classes)
            .map(|c| names.get(c).cloned().unwrap_or_else(|| c.to_string()))
            .collect();
        let chars = |s: &String| s.chars().count();
        let counts = self.counts.iter().max().map_or(1, |m| m.to_string().len());
        let width = names.iter().map(chars).max().unwrap_or(1).max(counts) + 1;
        let label = names.iter().map(chars).max().unwrap_or(1).max(9);
        // Padding by characters, not bytes: `{:>w$}` would count a name's UTF-8 bytes.
        let pad = |s: &String, w: usize| " ".repeat(w.saturating_sub(chars(s))) + s;
        let mut out = pad(&"true\\pred".to_string(), label) + " │";
        for name in &names {
            out += &pad(name, width);
        }
        out += &format!(
            "\n{}┼{}\n",
            "─".repeat(label + 1),
            "─".repeat(width * self.classes)
        );
        for (t, name) in names.iter().enumerate() {
            out += &(pad(name, label) + " │");
            for p in 0..self.classes {
                out += &format!("{:>width$}", self.count(t, p));
            }
            out.push('\n');
        }
        out
    }
}

impl ClassificationReport {
    /// The classes under their names, when `names` names every class (else they keep their
    /// numbers).
    pub fn named(mut self, names: &[String]) -> Self {
        if names.len() == self.per_class.len() {
            for (entry, name) in self.per_class.iter_mut().zip(names) {
                entry.label = name.clone();
            }
        }
        self
    }

    /// scikit-learn's `classification_report` layout, each class under its label.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{:>12} {:>9} {:>9} {:>9} {:>9}\n",
            "class", "precision", "recall", "f1-score", "support"
        );
        let row = |name: String, s: &ClassScores| {
            format!(
                "{name:>12} {:>9.4} {:>9.4} {:>9.4} {:>9}\n",
                s.precision, s.recall, s.f1, s.support
            )
        };
        for entry in &self.per_class {
            out += &row(entry.label.clone(), &entry.scores);
        }
        out += &row("macro avg".into(), &self.macro_avg);
        out += &row("weighted avg".into(), &self.weighted_avg);
        out
    }
}

/// Fraction of samples whose true class is among the `k` highest outputs.
pub fn top_k_accuracy(outputs: &Tensor, truth: &[usize], k: usize) -> f64 {
    let width = outputs.shape().last().copied().unwrap_or(1).max(1);
    let hits = outputs
        .data()
        .chunks(width)
        .zip(truth)
        .filter(|(row, &t)| {
            // The true class is in the top k when fewer than k classes score strictly higher.
            let score = row.get(t).copied().unwrap_or(f32::NEG_INFINITY);
            row.iter().filter(|&&v| v > score).count() < k
        })
        .count();
    hits as f64 / truth.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_matches_scikit_learn() {
        // y_true = [0, 0, 0, 1, 1, 2], y_pred = [0, 0, 1, 1, 2, 2]
        // sklearn: precision [1, .5, .5], recall [.6667, .5, 1], f1 [.8, .5, .6667]
        // macro f1 0.65556, weighted f1 0.65 (weights 3, 2, 1), accuracy 4/6
        let cm = ConfusionMatrix::new(3, &[0, 0, 0, 1, 1, 2], &[0, 0, 1, 1, 2, 2]).unwrap();
        assert_eq!(cm.count(0, 1), 1);
        let r = cm.report();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-4;
        assert!(close(r.accuracy, 4.0 / 6.0));
        assert!(
            close(r.per_class[0].scores.recall, 2.0 / 3.0)
                && close(r.per_class[0].scores.precision, 1.0)
        );
        assert!(close(r.per_class[2].scores.f1, 2.0 / 3.0));
        assert!(close(r.macro_avg.f1, (0.8 + 0.5 + 2.0 / 3.0) / 3.0));
        assert!(close(
            r.weighted_avg.f1,
            (3.0 * 0.8 + 2.0 * 0.5 + 2.0 / 3.0) / 6.0
        ));
        assert_eq!(r.weighted_avg.support, 6);
        assert!(cm.to_text().contains("true\\pred"));
        let names: Vec<String> = ["ant", "bee", "café"].map(String::from).to_vec();
        let named = cm.to_text_named(&names);
        let lines: Vec<&str> = named.lines().collect();
        assert_eq!(lines[0], "true\\pred │  ant  bee café");
        assert_eq!(lines[2], "      ant │    2    1    0");
        assert_eq!(lines[4], "     café │    0    0    1");
        assert!(r.to_text().contains("weighted avg"));
        assert!(ConfusionMatrix::new(2, &[0, 2], &[0, 1]).is_err());
    }

    #[test]
    fn each_class_is_reported_under_its_label() {
        let cm = ConfusionMatrix::new(2, &[0, 1, 1], &[0, 1, 0]).unwrap();
        let json = serde_json::to_value(cm.report()).unwrap();
        let first = &json["per_class"][0];
        assert_eq!((&first["label"], &first["index"]), (&"0".into(), &0.into()));
        assert_eq!(first["support"], 1);
        let names = ["cat".to_string(), "dog".to_string()];
        let named = cm.report().named(&names);
        let labels: Vec<&str> = named.per_class.iter().map(|e| e.label.as_str()).collect();
        assert_eq!(labels, ["cat", "dog"]);
        assert!(
            named.to_text().contains("         dog "),
            "{}",
            named.to_text()
        );
        let partial = cm.report().named(&names[..1]);
        assert_eq!(
            partial.per_class[0].label, "0",
            "names for some classes only: numbers"
        );
    }

    #[test]
    fn absent_classes_do_not_dilute_the_macro_average() {
        // Three classes, the test rows hold only 0 and 1, all right: sklearn's macro F1 is 1.
        let cm = ConfusionMatrix::new(3, &[0, 1, 1], &[0, 1, 1]).unwrap();
        assert_eq!(cm.report().macro_avg.f1, 1.0);
    }

    #[test]
    fn classes_never_predicted_score_zero() {
        let cm = ConfusionMatrix::new(2, &[0, 1], &[0, 0]).unwrap();
        let r = cm.report();
        assert_eq!(
            (
                r.per_class[1].scores.precision,
                r.per_class[1].scores.recall,
                r.per_class[1].scores.f1
            ),
            (0.0, 0.0, 0.0)
        );
    }

    #[test]
    fn top_k_and_label_extraction() {
        let out = Tensor::new(&[2, 3], vec![0.1, 0.7, 0.2, 0.5, 0.3, 0.2]).unwrap();
        assert_eq!(top_k_accuracy(&out, &[2, 2], 1), 0.0);
        assert_eq!(top_k_accuracy(&out, &[2, 2], 2), 0.5);
        assert_eq!(top_k_accuracy(&out, &[2, 2], 3), 1.0);
        let onehot = Tensor::new(&[2, 3], vec![0., 0., 1., 1., 0., 0.]).unwrap();
        let (t, p) = true_and_predicted(AccuracyKind::Categorical, &out, &onehot).unwrap();
        assert_eq!((t, p), (vec![2, 0], vec![1, 0]));
        let sig = Tensor::new(&[3, 1], vec![0.2, 0.9, 0.6]).unwrap();
        let y = Tensor::new(&[3, 1], vec![0., 1., 0.]).unwrap();
        assert_eq!(
            true_and_predicted(AccuracyKind::Binary, &sig, &y).unwrap(),
            (vec![0, 1, 0], vec![0, 1, 1])
        );
        assert!(true_and_predicted(AccuracyKind::Sparse, &out, &onehot).is_err());
    }
}
