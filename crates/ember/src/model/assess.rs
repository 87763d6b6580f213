//! `assess`: everything about a classifier's quality on a data set, in one pass.

use serde::Serialize;

use super::Model;
use crate::error::Result;
use crate::metrics::{top_k_accuracy, true_and_predicted, ClassificationReport, ConfusionMatrix};
use crate::tensor::Tensor;

/// Loss and accuracy (as `evaluate`), plus for classifiers the top-k accuracy, per-class
/// precision / recall / F1 and the confusion matrix.
#[derive(Clone, Debug, Serialize)]
pub struct Assessment {
    pub samples: usize,
    pub loss: f64,
    pub accuracy: Option<f64>,
    /// When the model has more than k classes: `{"k": 5, "accuracy": 0.9993}`.
    pub top_k_accuracy: Option<TopKAccuracy>,
    pub report: Option<ClassificationReport>,
    pub confusion_matrix: Option<ConfusionMatrix>,
}

/// The fraction of samples whose true class is among the model's `k` most likely.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct TopKAccuracy {
    pub k: usize,
    pub accuracy: f64,
}

impl Assessment {
    /// The classification report's classes under their names, when `names` names every
    /// class (an image folder's classes; MNIST's digits keep their numbers).
    pub fn named(mut self, names: &[String]) -> Self {
        self.report = self.report.map(|r| r.named(names));
        self
    }
}

impl Model {
    /// Evaluates the model on `x`, `y` and, when it was compiled with accuracy, builds the
    /// classification report and confusion matrix.
    pub fn assess(
        &self,
        x: &Tensor,
        y: &Tensor,
        batch_size: usize,
        top_k: usize,
    ) -> Result<Assessment> {
        let evaluation = self.evaluate(x, y, batch_size)?;
        let mut assessment = Assessment {
            samples: x.rows(),
            loss: evaluation.loss,
            accuracy: evaluation.accuracy,
            top_k_accuracy: None,
            report: None,
            confusion_matrix: None,
        };
        let Some(kind) = self.accuracy_kind() else {
            return Ok(assessment);
        };
        // Data-parallel: each process predicts its share of the rows, and all get them all.
        let world = crate::distributed::world();
        let outputs = match world.size() {
            1 => self.predict(x, batch_size)?,
            size => {
                let part = crate::distributed::share(x.rows(), world.rank(), size);
                let mine = self.predict(&x.slice_rows(part.start, part.end)?, batch_size)?;
                crate::distributed::gather_rows(&mine, x.rows())?
            }
        };
        let Ok((truth, predicted)) = true_and_predicted(kind, &outputs, y) else {
            return Ok(assessment); // several binary outputs: no single class per sample
        };
        let width = self.output_shape().last().copied().unwrap_or(1);
        let classes = width.max(2);
        if width > top_k {
            assessment.top_k_accuracy = Some(TopKAccuracy {
                k: top_k,
                accuracy: top_k_accuracy(&outputs, &truth, top_k),
            });
        }
        let confusion = ConfusionMatrix::new(classes, &truth, &predicted)?;
        assessment.report = Some(confusion.report());
        assessment.confusion_matrix = Some(confusion);
        Ok(assessment)
    }
}
