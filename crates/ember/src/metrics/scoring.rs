//! scikit-learn's scorers by their names (`accuracy`, `roc_auc`, `f1`, `neg_log_loss`, `r2`,
//! `neg_root_mean_squared_error`, …): one number of a model's predictions on held-out rows,
//! greater is better (so losses and errors are negated), as `sklearn.metrics.get_scorer`
//! gives it.

use super::scores::{regression_scores, roc_auc};
use crate::error::{Error, Result};
use crate::tensor::argmax;

/// A scorer, by scikit-learn's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scoring {
    Accuracy,
    BalancedAccuracy,
    /// Binary targets only (the positive class is 1), as scikit-learn's `roc_auc`.
    RocAuc,
    /// Binary targets only (`average="binary"`, positive class 1).
    F1,
    /// Unweighted mean of each class's F1.
    F1Macro,
    Precision,
    Recall,
    /// Minus the mean cross-entropy of the predicted probabilities, clipped as scikit-learn
    /// clips them (to [ε, 1 − ε], ε the float64 machine epsilon).
    NegLogLoss,
    R2,
    NegRootMeanSquaredError,
    NegMeanAbsoluteError,
    NegMeanSquaredError,
}

/// Every scorer with its name, classification scorers first.
const NAMES: [(&str, Scoring); 12] = [
    ("accuracy", Scoring::Accuracy),
    ("balanced_accuracy", Scoring::BalancedAccuracy),
    ("roc_auc", Scoring::RocAuc),
    ("f1", Scoring::F1),
    ("f1_macro", Scoring::F1Macro),
    ("precision", Scoring::Precision),
    ("recall", Scoring::Recall),
    ("neg_log_loss", Scoring::NegLogLoss),
    ("r2", Scoring::R2),
    (
        "neg_root_mean_squared_error",
        Scoring::NegRootMeanSquaredError,
    ),
    ("neg_mean_absolute_error", Scoring::NegMeanAbsoluteError),
    ("neg_mean_squared_error", Scoring::NegMeanSquaredError),
];

/// What a model predicted for held-out rows, with the truth.
#[derive(Clone, Copy)]
pub enum Predictions<'a> {
    /// Class probabilities, a row of `classes` per sample (for two classes: one column,
    /// the positive class's probability, or two), and each sample's true class.
    Classes {
        probabilities: &'a [f32],
        width: usize,
        truth: &'a [usize],
    },
    /// Predicted and true values, in the target's units.
    Values {
        predicted: &'a [f64],
        truth: &'a [f64],
    },
}

impl Scoring {
    /// The scorer of scikit-learn's `name`; an unknown name is an error listing them all.
    pub fn from_name(name: &str) -> Result<Scoring> {
        NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, s)| s)
            .ok_or_else(|| {
                let all: Vec<&str> = NAMES.iter().map(|(n, _)| *n).collect();
                Error::invalid(format!(
                    "unknown scoring '{name}' (scikit-learn's names: {})",
                    all.join(", ")
                ))
            })
    }

    /// The scorers that fit a task: regression scorers, or classification scorers (those
    /// for binary targets only when `binary`).
    pub fn for_task(regression: bool, binary: bool) -> impl Iterator<Item = Scoring> {
        NAMES.iter().map(|&(_, s)| s).filter(move |s| {
            let binary_only = matches!(
                s,
                Scoring::RocAuc | Scoring::F1 | Scoring::Precision | Scoring::Recall
            );
            s.is_regression() == regression && (binary || !binary_only)
        })
    }

    /// scikit-learn's name of this scorer.
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("", |(n, _)| n)
    }

    /// Whether it scores regressions (else classifications).
    pub fn is_regression(self) -> bool {
        matches!(
            self,
            Scoring::R2
                | Scoring::NegRootMeanSquaredError
                | Scoring::NegMeanAbsoluteError
                | Scoring::NegMeanSquaredError
        )
    }

    /// The score; an error when the scorer does not fit the predictions (a regression
    /// scorer for classes, `roc_auc` for three classes, a held-out set of one class).
    pub fn score(self, predictions: &Predictions) -> Result<f64> {
        match (*predictions, self.is_regression()) {
            (Predictions::Values { predicted, truth }, true) => {
                let s = regression_scores(predicted, truth);
                Ok(match self {
                    Scoring::R2 => s.r2,
                    Scoring::NegRootMeanSquaredError => -s.rmse,
                    Scoring::NegMeanAbsoluteError => -s.mae,
                    _ => -(s.rmse * s.rmse),
                })
            }
            (Predictions::Classes { probabilities, width, truth }, false) => {
                self.classification(probabilities, width, truth)
            }
            (Predictions::Values { .. }, false) => Err(Error::invalid(format!(
                "scoring '{}' is for classifiers; a regression takes r2, neg_root_mean_squared_error, neg_mean_absolute_error or neg_mean_squared_error",
                self.name()
            ))),
            (Predictions::Classes { .. }, true) => Err(Error::invalid(format!(
                "scoring '{}' is for regressions; a classifier takes accuracy, balanced_accuracy, roc_auc, f1, f1_macro, precision, recall or neg_log_loss",
                self.name()
            ))),
        }
    }

    fn classification(self, probabilities: &[f32], width: usize, truth: &[usize]) -> Result<f64> {
        let n = truth.len();
        if n == 0 || width == 0 || probabilities.len() != n * width {
            return Err(Error::invalid(format!(
                "{}: {} probabilities for {n} samples of {width} classes",
                self.name(),
                probabilities.len()
            )));
        }
        let classes = width.max(2);
        // The probability of class c for sample i.
        let p = |i: usize, c: usize| -> f64 {
            let row = &probabilities[i * width..(i + 1) * width];
            match width {
                1 if c == 1 => row[0] as f64,
                1 => 1.0 - row[0] as f64,
                _ => row[c] as f64,
            }
        };
        let predicted: Vec<usize> = (0..n)
            .map(|i| match width {
                1 => (probabilities[i] > 0.5) as usize,
                _ => argmax(&probabilities[i * width..(i + 1) * width]),
            })
            .collect();
        if let Some(&bad) = truth.iter().find(|&&t| t >= classes) {
            return Err(Error::invalid(format!(
                "{}: class {bad} of a model with {classes} classes",
                self.name()
            )));
        }
        let binary = |what: &str| -> Result<()> {
            match classes {
                2 => Ok(()),
                _ => Err(Error::invalid(format!(
                    "scoring '{}' needs a binary target (as in scikit-learn); this one has {classes} classes: use {what}",
                    self.name()
                ))),
            }
        };
        // (true positives, predicted positives, actual positives) of class c.
        let counts = |c: usize| {
            let tp = (0..n)
                .filter(|&i| predicted[i] == c && truth[i] == c)
                .count();
            let pp = predicted.iter().filter(|&&x| x == c).count();
            let ap = truth.iter().filter(|&&x| x == c).count();
            (tp as f64, pp as f64, ap as f64)
        };
        // scikit-learn's zero_division default: 0 where a ratio has no denominator.
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        let f1 = |c: usize| {
            let (tp, pp, ap) = counts(c);
            ratio(2.0 * tp, pp + ap)
        };
        Ok(match self {
            Scoring::Accuracy => {
                (0..n).filter(|&i| predicted[i] == truth[i]).count() as f64 / n as f64
            }
            Scoring::BalancedAccuracy => {
                let present: Vec<usize> = (0..classes).filter(|&c| counts(c).2 > 0.0).collect();
                let recalls: f64 = present
                    .iter()
                    .map(|&c| ratio(counts(c).0, counts(c).2))
                    .sum();
                recalls / present.len() as f64
            }
            Scoring::RocAuc => {
                binary("accuracy, f1_macro or neg_log_loss")?;
                let scores: Vec<f32> = (0..n).map(|i| p(i, 1) as f32).collect();
                let positive: Vec<bool> = truth.iter().map(|&t| t == 1).collect();
                roc_auc(&scores, &positive).ok_or_else(|| {
                    Error::invalid("roc_auc: the held-out rows are all of one class")
                })?
            }
            Scoring::F1 => {
                binary("f1_macro")?;
                f1(1)
            }
            Scoring::F1Macro => (0..classes).map(f1).sum::<f64>() / classes as f64,
            Scoring::Precision => {
                binary("accuracy or f1_macro")?;
                let (tp, pp, _) = counts(1);
                ratio(tp, pp)
            }
            Scoring::Recall => {
                binary("balanced_accuracy or f1_macro")?;
                let (tp, _, ap) = counts(1);
                ratio(tp, ap)
            }
            Scoring::NegLogLoss => {
                let eps = f64::EPSILON;
                let total: f64 = (0..n)
                    .map(|i| -p(i, truth[i]).clamp(eps, 1.0 - eps).ln())
                    .sum();
                -total / n as f64
            }
            _ => unreachable!("regression scorers are handled by score"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes(s: Scoring, probabilities: &[f32], width: usize, truth: &[usize]) -> f64 {
        s.score(&Predictions::Classes {
            probabilities,
            width,
            truth,
        })
        .unwrap()
    }

    #[test]
    fn binary_scores_match_scikit_learn() {
        // y_true = [0, 1, 1, 0, 1], p(1) = [0.2, 0.7, 0.4, 0.6, 0.9]; predicted [0, 1, 0, 1, 1].
        let p = [0.2, 0.7, 0.4, 0.6, 0.9];
        let y = [0, 1, 1, 0, 1];
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(classes(Scoring::Accuracy, &p, 1, &y), 0.6));
        // roc_auc_score(y, p) = 5/6
        assert!(close(classes(Scoring::RocAuc, &p, 1, &y), 5.0 / 6.0));
        // f1_score = 2·2 / (3 + 3), precision 2/3, recall 2/3
        assert!(close(classes(Scoring::F1, &p, 1, &y), 2.0 / 3.0));
        assert!(close(classes(Scoring::Precision, &p, 1, &y), 2.0 / 3.0));
        assert!(close(classes(Scoring::Recall, &p, 1, &y), 2.0 / 3.0));
        // balanced_accuracy_score = (1/2 + 2/3) / 2
        assert!(close(
            classes(Scoring::BalancedAccuracy, &p, 1, &y),
            7.0 / 12.0
        ));
        // log_loss(y, p) = 0.5035…: -(ln .8 + ln .7 + ln .4 + ln .4 + ln .9) / 5; the score is
        // its negative.
        let expected = (0.8f64.ln()
            + 0.7f32.ln() as f64
            + 0.4f32.ln() as f64
            + 0.4f64.ln()
            + 0.9f32.ln() as f64)
            / 5.0;
        assert!((classes(Scoring::NegLogLoss, &p, 1, &y) - expected).abs() < 1e-6);
        // The same probabilities as two softmax columns give the same scores.
        let two: Vec<f32> = p.iter().flat_map(|&q| [1.0 - q, q]).collect();
        assert!(close(classes(Scoring::RocAuc, &two, 2, &y), 5.0 / 6.0));
        assert!(close(classes(Scoring::F1, &two, 2, &y), 2.0 / 3.0));
    }

    #[test]
    fn multiclass_and_regression_scores_and_their_refusals() {
        // Three classes: predicted [0, 1, 2, 2], truth [0, 1, 1, 2].
        let p = [0.8, 0.1, 0.1, 0.1, 0.7, 0.2, 0.1, 0.3, 0.6, 0.2, 0.2, 0.6];
        let y = [0, 1, 1, 2];
        assert_eq!(classes(Scoring::Accuracy, &p, 3, &y), 0.75);
        // f1 per class: 1, 2/3, 2/3 → macro 7/9
        assert!((classes(Scoring::F1Macro, &p, 3, &y) - 7.0 / 9.0).abs() < 1e-9);
        let e = Scoring::RocAuc
            .score(&Predictions::Classes {
                probabilities: &p,
                width: 3,
                truth: &y,
            })
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("needs a binary target") && e.contains("3 classes"),
            "{e}"
        );
        let values = Predictions::Values {
            predicted: &[2.5, 0.0, 2.0, 8.0],
            truth: &[3.0, -0.5, 2.0, 7.0],
        };
        assert!((Scoring::R2.score(&values).unwrap() - 0.948_608_137).abs() < 1e-8);
        assert!((Scoring::NegMeanAbsoluteError.score(&values).unwrap() + 0.5).abs() < 1e-12);
        assert!((Scoring::NegMeanSquaredError.score(&values).unwrap() + 0.375).abs() < 1e-12);
        let e = Scoring::Accuracy.score(&values).unwrap_err().to_string();
        assert!(e.contains("is for classifiers"), "{e}");
        assert_eq!(Scoring::from_name("roc_auc").unwrap(), Scoring::RocAuc);
        let e = Scoring::from_name("auc").unwrap_err().to_string();
        assert!(
            e.contains("unknown scoring 'auc'") && e.contains("neg_log_loss"),
            "{e}"
        );
    }
}
