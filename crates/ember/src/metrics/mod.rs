//! Metrics: accuracy in its three Keras flavours, running means over an epoch, and the
//! classification report (confusion matrix, precision / recall / F1, top-k accuracy);
//! scikit-learn's scorers by name (scoring.rs).

mod classification;
pub mod ranking;
mod scores;
mod scoring;

pub use classification::{
    top_k_accuracy, true_and_predicted, ClassEntry, ClassScores, ClassificationReport,
    ConfusionMatrix,
};
pub use ranking::{ranking_at_k, MeanRanking, RankingMeans, RankingScores};
pub use scores::{regression_scores, roc_auc, RegressionScores};
pub use scoring::{Predictions, Scoring};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::tensor::{argmax, Tensor};

/// A metric requested at compile time, by its Keras name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Resolved from the loss: categorical, sparse or binary accuracy.
    Accuracy,
}

/// Which targets an accuracy compares against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccuracyKind {
    /// argmax(prediction) == argmax(one-hot target)
    Categorical,
    /// argmax(prediction) == class index
    Sparse,
    /// (prediction > 0.5) == (target > 0.5), per element
    Binary,
}

/// (correct, counted) for one batch.
pub fn accuracy_counts(
    kind: AccuracyKind,
    prediction: &Tensor,
    target: &Tensor,
) -> Result<(usize, usize)> {
    let classes = prediction.shape().last().copied().unwrap_or(1).max(1);
    let rows = prediction.len() / classes;
    let p = prediction.data();
    let t = target.data();
    let mismatch = || {
        Error::shape(
            "accuracy",
            format!(
                "prediction {:?} vs target {:?}",
                prediction.shape(),
                target.shape()
            ),
        )
    };
    match kind {
        AccuracyKind::Categorical => {
            if t.len() != p.len() {
                return Err(mismatch());
            }
            let correct = p
                .chunks(classes)
                .zip(t.chunks(classes))
                .filter(|(p, t)| argmax(p) == argmax(t))
                .count();
            Ok((correct, rows))
        }
        AccuracyKind::Sparse => {
            if t.len() != rows {
                return Err(mismatch());
            }
            let correct = p
                .chunks(classes)
                .zip(t)
                .filter(|(p, &t)| argmax(p) as f32 == t)
                .count();
            Ok((correct, rows))
        }
        AccuracyKind::Binary => {
            if t.len() != p.len() {
                return Err(mismatch());
            }
            let correct = p
                .iter()
                .zip(t)
                .filter(|(&p, &t)| (p > 0.5) == (t > 0.5))
                .count();
            Ok((correct, p.len()))
        }
    }
}

/// Accumulates the sample-weighted mean loss and the accuracy over batches.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunningMetrics {
    loss_sum: f64,
    samples: usize,
    correct: usize,
    counted: usize,
}

impl RunningMetrics {
    pub fn add_loss(&mut self, mean_loss: f32, samples: usize) {
        self.loss_sum += mean_loss as f64 * samples as f64;
        self.samples += samples;
    }

    pub fn add_accuracy(&mut self, (correct, counted): (usize, usize)) {
        self.correct += correct;
        self.counted += counted;
    }

    pub fn loss(&self) -> f64 {
        self.loss_sum / self.samples.max(1) as f64
    }

    /// The sums behind the metrics — loss × samples, samples, correct, counted — to be
    /// added up across processes ([`RunningMetrics::from_counts`] reads them back).
    pub fn counts(&self) -> [f64; 4] {
        [
            self.loss_sum,
            self.samples as f64,
            self.correct as f64,
            self.counted as f64,
        ]
    }

    pub fn from_counts([loss_sum, samples, correct, counted]: [f64; 4]) -> Self {
        RunningMetrics {
            loss_sum,
            samples: samples as usize,
            correct: correct as usize,
            counted: counted as usize,
        }
    }

    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.counted.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_accuracies_by_hand() {
        let p = Tensor::new(&[3, 2], vec![0.9, 0.1, 0.2, 0.8, 0.6, 0.4]).unwrap();
        let onehot = Tensor::new(&[3, 2], vec![1., 0., 1., 0., 1., 0.]).unwrap();
        let labels = Tensor::new(&[3], vec![0., 1., 1.]).unwrap();
        assert_eq!(
            accuracy_counts(AccuracyKind::Categorical, &p, &onehot).unwrap(),
            (2, 3)
        );
        assert_eq!(
            accuracy_counts(AccuracyKind::Sparse, &p, &labels).unwrap(),
            (2, 3)
        );
        // elementwise: [1,0,0,1,1,0] vs [1,0,1,0,1,0] → 4 of 6
        assert_eq!(
            accuracy_counts(AccuracyKind::Binary, &p, &onehot).unwrap(),
            (4, 6)
        );
        assert!(accuracy_counts(AccuracyKind::Sparse, &p, &onehot).is_err());
    }

    #[test]
    fn running_means_weight_by_samples() {
        let mut m = RunningMetrics::default();
        m.add_loss(1.0, 3);
        m.add_loss(3.0, 1);
        assert!((m.loss() - 1.5).abs() < 1e-12);
        m.add_accuracy((1, 4));
        assert_eq!(m.accuracy(), 0.25);
    }
}
