//! Inference on data sets: `evaluate` (loss and accuracy in batches) and `predict`.

use super::fit::Data;
use super::functional::Model;
use crate::error::{Error, Result};
use crate::metrics::{accuracy_counts, RunningMetrics};
use crate::tensor::denormal::FlushDenormals;
use crate::tensor::Tensor;

/// Loss and (when compiled with it) accuracy over a data set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    pub loss: f64,
    pub accuracy: Option<f64>,
}
impl Model {
    /// Loss and metrics on `x`, `y`, in batches (Keras `evaluate`).
    pub fn evaluate(&self, x: &Tensor, y: &Tensor, batch_size: usize) -> Result<Evaluation> {
        self.evaluate_many(&[x], &[y], batch_size)
    }

    /// [`Model::evaluate`] for a model of several inputs or outputs.
    pub fn evaluate_many(
        &self,
        xs: &[&Tensor],
        ys: &[&Tensor],
        batch_size: usize,
    ) -> Result<Evaluation> {
        self.compiled("evaluate")?;
        let data = Data {
            x: xs.to_vec(),
            y: ys.to_vec(),
        };
        self.check_data(&data, "x", "y")?;
        if batch_size == 0 {
            return Err(Error::invalid("batch_size must be at least 1"));
        }
        let _flush = FlushDenormals::new();
        self.evaluate_rows(&data, 0..xs[0].rows(), batch_size)
    }

    /// The model's outputs for `x`, in batches (Keras `predict`); the first output of a
    /// model with several.
    pub fn predict(&self, x: &Tensor, batch_size: usize) -> Result<Tensor> {
        let mut outputs = self.predict_many(&[x], batch_size)?;
        Ok(outputs.swap_remove(0))
    }

    /// Each sample's loss against `y` (Keras's `reduction="none"`; the first output's, for a
    /// model of several), in batches: from the logits where the loss fuses with the output's
    /// activation, so that confident predictions keep distinct losses. What a
    /// membership-inference audit ranks.
    pub fn sample_losses(&self, x: &Tensor, y: &Tensor, batch_size: usize) -> Result<Vec<f32>> {
        let loss = self.compiled("sample_losses")?.loss;
        self.check_inputs(&[x], "x")?;
        if batch_size == 0 || y.rows() != x.rows() {
            return Err(Error::invalid(format!(
                "sample_losses needs a batch size ≥ 1 and as many targets as samples, got {batch_size} and {} targets for {} samples",
                y.rows(),
                x.rows()
            )));
        }
        let _flush = FlushDenormals::new();
        let mut losses = Vec::with_capacity(x.rows());
        let mut start = 0;
        while start < x.rows() {
            let end = start.saturating_add(batch_size).min(x.rows());
            let (xb, yb) = (x.slice_rows(start, end)?, y.slice_rows(start, end)?);
            let (logits, activation) = self
                .infer(&[&xb], true)?
                .into_iter()
                .next()
                .ok_or_else(|| Error::invalid("the model has no outputs"))?;
            losses.extend(loss.per_sample(&logits, activation, &yb)?);
            start = end;
        }
        Ok(losses)
    }

    /// Every output of the model for one batch tensor per input, in batches.
    pub fn predict_many(&self, xs: &[&Tensor], batch_size: usize) -> Result<Vec<Tensor>> {
        let all: Vec<usize> = (0..self.output_names().len()).collect();
        self.predict_batched(xs, &all, batch_size)
    }

    /// The outputs named `names` (see [`Model::output_names`]) for one batch tensor per
    /// input, in batches, running only the layers they need: Keras's feature extraction
    /// (`Model(inputs, [layer.output, …])`) without a second model.
    pub fn predict_outputs(
        &self,
        xs: &[&Tensor],
        names: &[&str],
        batch_size: usize,
    ) -> Result<Vec<Tensor>> {
        let outputs = self.output_names();
        let which = names
            .iter()
            .map(|name| {
                outputs.iter().position(|o| o == name).ok_or_else(|| {
                    Error::invalid(format!(
                        "the model has no output '{name}' (outputs: {})",
                        outputs.join(", ")
                    ))
                })
            })
            .collect::<Result<Vec<usize>>>()?;
        self.predict_batched(xs, &which, batch_size)
    }

    fn predict_batched(
        &self,
        xs: &[&Tensor],
        which: &[usize],
        batch_size: usize,
    ) -> Result<Vec<Tensor>> {
        self.check_inputs(xs, "x")?;
        if batch_size == 0 {
            return Err(Error::invalid("batch_size must be at least 1"));
        }
        let _flush = FlushDenormals::new();
        let n = xs[0].rows();
        if n <= batch_size {
            // One batch: the outputs are the predictions, with nothing copied.
            return self.infer_outputs(xs, which);
        }
        let mut data: Vec<Vec<f32>> = vec![Vec::new(); which.len()];
        // Each output's sample shape, from the first batch (a dimension of any length
        // takes the inputs' size).
        let mut shapes: Vec<Vec<usize>> = Vec::new();
        let mut start = 0;
        while start < n {
            let end = start.saturating_add(batch_size).min(n);
            let batch: Vec<Tensor> = xs
                .iter()
                .map(|x| x.slice_rows(start, end))
                .collect::<Result<_>>()?;
            let refs: Vec<&Tensor> = batch.iter().collect();
            let outputs = self.infer_outputs(&refs, which)?;
            if shapes.is_empty() {
                shapes = outputs.iter().map(|t| t.shape()[1..].to_vec()).collect();
                for (out, s) in data.iter_mut().zip(&shapes) {
                    out.reserve_exact(n * crate::tensor::numel(s));
                }
            }
            for (out, t) in data.iter_mut().zip(outputs) {
                out.extend_from_slice(t.data());
            }
            start = end;
        }
        shapes
            .iter()
            .zip(data)
            .map(|(s, d)| {
                let mut shape = vec![n];
                shape.extend_from_slice(s);
                Tensor::new(&shape, d)
            })
            .collect()
    }

    pub(super) fn evaluate_rows(
        &self,
        data: &Data,
        range: std::ops::Range<usize>,
        batch_size: usize,
    ) -> Result<Evaluation> {
        let compiled = self.compiled("evaluate")?;
        let mut running = RunningMetrics::default();
        // Data-parallel: each process evaluates its share of the rows; the sums are added.
        let world = crate::distributed::world();
        let part = crate::distributed::share(range.len(), world.rank(), world.size());
        let range = range.start + part.start..range.start + part.end;
        let mut start = range.start;
        while start < range.end {
            let end = start.saturating_add(batch_size).min(range.end);
            let slice = |ts: &[&Tensor]| -> Result<Vec<Tensor>> {
                ts.iter().map(|t| t.slice_rows(start, end)).collect()
            };
            let (xb, yb) = (slice(&data.x)?, slice(&data.y)?);
            let refs: Vec<&Tensor> = xb.iter().collect();
            let mut total = None;
            let mut first_output = None;
            for ((logits, activation), target) in self.infer(&refs, true)?.into_iter().zip(&yb) {
                let (loss, output) = compiled.loss.evaluate(logits, activation, target)?;
                first_output.get_or_insert(output);
                total = Some(match total {
                    None => loss,
                    Some(t) => t + loss,
                });
            }
            let total = total.ok_or_else(|| Error::invalid("the model has no outputs"))?;
            running.add_loss(self.add_penalties(total)?, end - start);
            if let (Some(kind), Some(output)) = (compiled.accuracy, first_output) {
                running.add_accuracy(accuracy_counts(kind, &output, &yb[0])?);
            }
            start = end;
        }
        let running = super::data_parallel::summed(&running)?;
        Ok(Evaluation {
            loss: running.loss(),
            accuracy: compiled.accuracy.map(|_| running.accuracy()),
        })
    }
}
