//! The training step: a batch's gradients (whole, or per example), then the gradient
//! transforms, then the optimizer's update.

use super::fit::Data;
use super::interpreter::GraphView;
use super::model::{Compiled, Model};
use crate::autograd::{Tape, Var};
use crate::error::{Error, Result};
use crate::metrics::{accuracy_counts, RunningMetrics};
use crate::tensor::Tensor;

/// A training step's samples, and the next step's (loaded into the caches while this one
/// computes).
#[derive(Clone, Copy)]
pub(super) struct Batch<'a> {
    pub rows: &'a [usize],
    pub next: Option<&'a [usize]>,
}

/// Each sample's weight from its class: the class index (one per row), the one-hot row's
/// argmax, or for a single 0/1 target, 0 or 1.
fn sample_weights(y: &Tensor, class_weight: &[f32]) -> Result<Tensor> {
    let width = y.row_len().max(1);
    let weights = y
        .data()
        .chunks(width)
        .map(|row| {
            let class = match row {
                [t] if width == 1 && y.shape().len() > 1 => (*t > 0.5) as usize,
                [t] => *t as usize,
                many => crate::tensor::argmax(many),
            };
            class_weight.get(class).copied().ok_or_else(|| {
                Error::invalid(format!(
                    "class_weight has {} entries, but a sample has class {class}",
                    class_weight.len()
                ))
            })
        })
        .collect::<Result<Vec<f32>>>()?;
    let n = weights.len();
    Tensor::new(&[n], weights)
}

impl Model {
    /// The loss on a batch (as `evaluate` reports it, weight penalties included) and its
    /// gradient with respect to every weight, in the order of [`Model::weights`]: zeros for
    /// weights the loss does not reach or `fit` does not train. Nothing is updated.
    pub fn loss_gradients(&mut self, xs: &[&Tensor], ys: &[&Tensor]) -> Result<(f32, Vec<Tensor>)> {
        self.batch_gradients(xs, ys, false)
    }

    /// Each sample's own gradient, from one vectorised backward pass (not a pass per
    /// sample): for every weight, in the order of [`Model::weights`], a tensor of shape
    /// (samples, …the weight's shape) whose row i is the gradient of sample i's loss alone
    /// (zeros for weights `fit` does not train). Weight penalties, which belong to no
    /// sample, are left out; the loss returned is the batch's mean without them. This is
    /// what differentially private training clips one sample at a time. Trained weights may
    /// belong to Dense and Conv2D layers; another trained layer is an error naming it
    /// (freeze it with `set_trainable`).
    pub fn per_example_gradients(
        &mut self,
        xs: &[&Tensor],
        ys: &[&Tensor],
    ) -> Result<(f32, Vec<Tensor>)> {
        self.batch_gradients(xs, ys, true)
    }

    fn batch_gradients(
        &mut self,
        xs: &[&Tensor],
        ys: &[&Tensor],
        per_example: bool,
    ) -> Result<(f32, Vec<Tensor>)> {
        let call = match per_example {
            true => "per_example_gradients",
            false => "loss_gradients",
        };
        let loss_fn = self.compiled(call)?.loss;
        let data = Data {
            x: xs.to_vec(),
            y: ys.to_vec(),
        };
        self.check_data(&data, "x", "y")?;
        let graph = self.graph();
        let mut tape = Tape::new();
        let Model { layers, .. } = self;
        let weights = Model::weights_onto(layers, &mut tape);
        let result = (|| {
            let n = xs[0].rows();
            let rows: Vec<usize> = (0..n).collect();
            let xs = xs
                .iter()
                .map(|x| tape.constant_rows(x, &rows))
                .collect::<Result<Vec<Var>>>()?;
            let ys = ys
                .iter()
                .map(|y| tape.constant_rows(y, &rows))
                .collect::<Result<Vec<Var>>>()?;
            let (outputs, _) =
                Model::record(layers, &graph, &mut tape, &weights, &xs, false, true)?;
            let mut total = None;
            for ((logits, activation), &target) in outputs.into_iter().zip(&ys) {
                let (loss, _) = loss_fn.record(&mut tape, logits, activation, target)?;
                total = Some(match total {
                    None => loss,
                    Some(t) => tape.add(t, loss)?,
                });
            }
            let total = total.ok_or_else(|| Error::invalid("the model has no outputs"))?;
            let loss = match per_example {
                true => {
                    tape.backward_per_example(total, n)?;
                    total
                }
                false => {
                    let loss = Model::with_penalties(layers, &mut tape, &weights, total)?;
                    tape.backward(loss)?;
                    loss
                }
            };
            let grads = weights
                .iter()
                .flatten()
                .map(|&v| {
                    tape.grad(v).cloned().unwrap_or_else(|| {
                        let mut shape = if per_example { vec![n] } else { vec![] };
                        shape.extend_from_slice(tape.value(v).shape());
                        Tensor::zeros(&shape)
                    })
                })
                .collect();
            Ok((tape.value(loss).item()?, grads))
        })();
        Model::weights_back(layers, &mut tape, &weights);
        result
    }

    /// One gradient update on the samples `batch.rows`; returns the batch loss.
    pub(super) fn train_step(
        &mut self,
        tape: &mut Tape,
        graph: &GraphView,
        data: &Data,
        batch: Batch,
        class_weight: Option<&[f32]>,
        running: &mut RunningMetrics,
    ) -> Result<f32> {
        let rows = batch.rows;
        let Model {
            layers, compiled, ..
        } = self;
        let compiled = compiled
            .as_mut()
            .ok_or_else(|| Error::invalid("call compile() before fit()"))?;
        let weights = Model::weights_onto(layers, tape);
        // The weights go back to their layers whatever the step's outcome.
        let result = (|| {
            let xs = data
                .x
                .iter()
                .map(|x| tape.constant_rows(x, rows))
                .collect::<Result<Vec<Var>>>()?;
            let ys = data
                .y
                .iter()
                .map(|y| tape.constant_rows(y, rows))
                .collect::<Result<Vec<Var>>>()?;
            // The next batch's rows load while this step computes.
            if let Some(next) = batch.next {
                data.x.iter().for_each(|x| x.prefetch_rows(next));
            }
            let sample_weights = match class_weight {
                Some(w) => {
                    let w = sample_weights(tape.value(ys[0]), w)?;
                    Some(tape.constant(&w))
                }
                None => None,
            };
            let (outputs, _) = Model::record(layers, graph, tape, &weights, &xs, true, true)?;
            let mut total = None;
            let mut first_output = None;
            for ((logits, activation), &target) in outputs.into_iter().zip(&ys) {
                let (loss, output) = compiled.loss.record_weighted(
                    tape,
                    logits,
                    activation,
                    target,
                    sample_weights,
                )?;
                first_output.get_or_insert(output);
                total = Some(match total {
                    None => loss,
                    Some(t) => tape.add(t, loss)?,
                });
            }
            let total = total.ok_or_else(|| Error::invalid("the model has no outputs"))?;
            let loss = Model::with_penalties(layers, tape, &weights, total)?;
            tape.backward(loss)?;
            compiled.apply_gradients(tape)?;
            let value = tape.value(loss).item()?;
            running.add_loss(value, rows.len());
            if let (Some(kind), Some(output)) = (compiled.accuracy, first_output) {
                running.add_accuracy(accuracy_counts(
                    kind,
                    tape.value(output),
                    tape.value(ys[0]),
                )?);
            }
            Ok(value)
        })();
        Model::weights_back(layers, tape, &weights);
        result
    }
}

impl Compiled {
    /// The second half of a training step, after `backward`: the gradients on `tape` go
    /// through the transforms, then the optimizer's clipping, then its update.
    pub fn apply_gradients(&mut self, tape: &mut Tape) -> Result<()> {
        let mut clipping = self.optimizer.clipping()?;
        if !(self.transforms.is_empty() && clipping.is_empty()) {
            let mut grads = tape.trainable_grads_mut();
            crate::optim::apply_all(&mut self.transforms, &mut grads)?;
            crate::optim::apply_all(&mut clipping, &mut grads)?;
        }
        self.optimizer.step(tape);
        Ok(())
    }
}
