//! What `fit` and `evaluate` check before they run: inputs and targets that fit the model
//! and its loss, named in errors.

use super::fit::Data;
use super::functional::Model;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

impl Model {
    /// Checks that `ys` (one target tensor per output, `what` naming them in errors) fit the
    /// compiled loss and the outputs: for a sparse categorical cross-entropy, whole-number
    /// labels from 0 to the output's units − 1; otherwise, samples of the output's shape (a
    /// one-hot target as wide as the output has units). Called by `fit` and `evaluate`;
    /// callers that read targets from files call it first, to name the file before training.
    pub fn check_targets(&self, ys: &[&Tensor], what: &str) -> Result<()> {
        let Some(compiled) = &self.compiled else {
            return Ok(());
        };
        let names = self.output_names();
        for ((y, shape), name) in ys.iter().zip(self.output_shapes()).zip(&names) {
            let sample = &y.shape()[1.min(y.shape().len())..];
            if compiled.loss == crate::loss::Loss::SparseCategoricalCrossentropy {
                let classes = shape.last().copied().unwrap_or(1);
                if !matches!(sample, [] | [1]) {
                    return Err(Error::shape(
                        "targets",
                        format!(
                            "{what}: sparse_categorical_crossentropy takes one class number per \
                             sample, got samples of {sample:?} (one-hot targets take \
                             categorical_crossentropy)"
                        ),
                    ));
                }
                let bad = y
                    .data()
                    .iter()
                    .position(|&v| !(v >= 0.0 && v.fract() == 0.0 && (v as usize) < classes));
                if let Some(i) = bad {
                    return Err(Error::invalid(format!(
                        "{what}: label {} of sample {i} is not one of the {classes} classes of \
                         output '{name}' (labels 0 to {})",
                        y.data()[i],
                        classes - 1
                    )));
                }
            } else {
                // One value per sample fits a one-unit output either way, (n) or (n, 1).
                let fits = (sample.is_empty() && shape == [1])
                    || sample.len() == shape.len()
                        && sample
                            .iter()
                            .zip(shape)
                            .all(|(&got, &want)| want == crate::nn::ANY || got == want);
                if !fits {
                    let hint = match (compiled.loss, sample, shape) {
                        (crate::loss::Loss::CategoricalCrossentropy, [k], [units]) => format!(
                            " ({k} one-hot classes for {units} output units: give the last \
                             layer as many units as there are classes)"
                        ),
                        _ => String::new(),
                    };
                    return Err(Error::shape(
                        "targets",
                        format!(
                            "{what}: samples of {sample:?}, output '{name}' gives {shape:?}{hint}"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Inputs match the model, targets match the inputs and outputs, and none holds NaN or
    /// infinity.
    pub(super) fn check_data(&self, data: &Data, x_name: &str, y_name: &str) -> Result<()> {
        self.check_inputs(&data.x, x_name)?;
        if data.y.len() != self.outputs.len() {
            return Err(Error::invalid(format!(
                "the model has {} outputs, got {} target tensors",
                self.outputs.len(),
                data.y.len()
            )));
        }
        let rows = data.x[0].rows();
        for y in &data.y {
            if y.rows() != rows || y.shape().is_empty() {
                return Err(Error::shape(
                    "fit",
                    format!(
                        "{x_name} has {rows} samples but {y_name} has shape {:?}",
                        y.shape()
                    ),
                ));
            }
        }
        let ys: Vec<&Tensor> = data.y.to_vec();
        self.check_targets(&ys, y_name)?;
        let named = data
            .x
            .iter()
            .map(|t| (x_name, *t))
            .chain(data.y.iter().map(|t| (y_name, *t)));
        for (name, t) in named {
            if let Some(i) = t.data().iter().position(|v| !v.is_finite()) {
                return Err(Error::NonFinite(format!(
                    "{name} holds {} at sample {}",
                    t.data()[i],
                    i / t.row_len().max(1)
                )));
            }
        }
        Ok(())
    }
}
