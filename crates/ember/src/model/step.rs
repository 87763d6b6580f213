//! The training step: a batch's gradients (whole, or per example), then the gradient
//! transforms, then the optimizer's update.

use super::data_parallel::GradientExchange;
use super::fit::Data;
use super::functional::{Compiled, Entry, Model, StepWeights};
use super::interpreter::GraphView;
use crate::autograd::{Tape, Var};
use crate::distributed::{self, Shard};
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::metrics::{accuracy_counts, AccuracyKind, RunningMetrics};
use crate::tensor::activation::Activation;
use crate::tensor::Tensor;

/// A training step's samples, and the next step's (loaded into the caches while this one
/// computes).
#[derive(Clone, Copy)]
pub(super) struct Batch<'a> {
    pub rows: &'a [usize],
    pub next: Option<&'a [usize]>,
}

/// Each sample's weight from its class, as Keras finds it: a one-hot (or probability) row's
/// argmax, or a single target value rounded half to even — a class index (n,) or (n, 1), or
/// 0 / 1 for one sigmoid output.
fn sample_weights(y: &Tensor, class_weight: &[f32]) -> Result<Tensor> {
    let width = y.row_len().max(1);
    let weights = y
        .data()
        .chunks(width)
        .enumerate()
        .map(|(i, row)| {
            let class = match row {
                [t] => {
                    let c = t.round_ties_even();
                    if !(c >= 0.0 && c < class_weight.len() as f32) {
                        return Err(Error::invalid(format!(
                            "class_weight has {} entries, but sample {i}'s target {t} is not one of their classes",
                            class_weight.len()
                        )));
                    }
                    c as usize
                }
                many => crate::tensor::argmax(many),
            };
            class_weight.get(class).copied().ok_or_else(|| {
                Error::invalid(format!(
                    "class_weight has {} entries, but sample {i} has class {class}",
                    class_weight.len()
                ))
            })
        })
        .collect::<Result<Vec<f32>>>()?;
    let n = weights.len();
    Tensor::new(&[n], weights)
}

/// The training loss of a recorded pass: the sum of every output's loss (each sample's term
/// weighted by `weights` when given), and the first output's activation.
fn summed_loss(
    loss: Loss,
    tape: &mut Tape,
    outputs: Vec<(Var, Activation)>,
    ys: &[Var],
    weights: Option<Var>,
) -> Result<(Var, Var)> {
    let mut total: Option<(Var, Var)> = None;
    for ((logits, activation), &target) in outputs.into_iter().zip(ys) {
        let (term, output) = loss.record_weighted(tape, logits, activation, target, weights)?;
        total = Some(match total {
            None => (term, output),
            Some((sum, first)) => (tape.add(sum, term)?, first),
        });
    }
    total.ok_or_else(|| Error::invalid("the model has no outputs"))
}

/// A training batch recorded on a tape: its summed loss, the first output and the first
/// target.
pub(super) struct RecordedBatch {
    pub loss: Var,
    pub first_output: Var,
    pub first_target: Var,
}

impl RecordedBatch {
    /// Records `rows` of `data` through the layers in training mode, and their loss (each
    /// sample weighted by its class's `class_weight` when given); the rows of `next` start
    /// loading into the caches meanwhile.
    pub(super) fn record(
        (layers, graph, weights): (&[Entry], &GraphView, &StepWeights),
        tape: &mut Tape,
        data: &Data,
        rows: &[usize],
        next: Option<&[usize]>,
        loss: Loss,
        class_weight: Option<&[f32]>,
    ) -> Result<RecordedBatch> {
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
        if let Some(next) = next {
            data.x.iter().for_each(|x| x.prefetch_rows(next));
        }
        let weights_of_samples = match class_weight {
            Some(w) => {
                let w = sample_weights(tape.value(ys[0]), w)?;
                Some(tape.constant(&w))
            }
            None => None,
        };
        let (outputs, _) = Model::record(layers, graph, tape, weights, &xs, true, true)?;
        let (loss, first_output) = summed_loss(loss, tape, outputs, &ys, weights_of_samples)?;
        Ok(RecordedBatch {
            loss,
            first_output,
            first_target: ys[0],
        })
    }

    /// Adds the batch's loss `value` (of `rows` samples) and accuracy to `running`.
    pub(super) fn count(
        &self,
        tape: &Tape,
        (value, rows): (f32, usize),
        accuracy: Option<AccuracyKind>,
        running: &mut RunningMetrics,
    ) -> Result<()> {
        running.add_loss(value, rows);
        if let Some(kind) = accuracy {
            running.add_accuracy(accuracy_counts(
                kind,
                tape.value(self.first_output),
                tape.value(self.first_target),
            )?);
        }
        Ok(())
    }
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
            let (total, _) = summed_loss(loss_fn, &mut tape, outputs, &ys, None)?;
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

    /// One gradient update on the samples `batch.rows`; returns the batch loss. In
    /// data-parallel training this process computes the gradient of its share of the rows
    /// only, and the shares' gradients are summed over the processes (each weighted by its
    /// share of the batch) before the update, so every process applies the batch's update.
    pub(super) fn train_step(
        &mut self,
        tape: &mut Tape,
        graph: &GraphView,
        data: &Data,
        batch: Batch,
        class_weight: Option<&[f32]>,
        running: &mut RunningMetrics,
    ) -> Result<f32> {
        let world = distributed::world();
        let shared = world.size() > 1;
        let (rows, weight) = match shared {
            true => {
                let part = distributed::share(batch.rows.len(), world.rank(), world.size());
                tape.set_shard(Some(Shard {
                    offset: part.start,
                    rows: part.len(),
                    batch: batch.rows.len(),
                }));
                let weight = part.len() as f32 / batch.rows.len() as f32;
                (&batch.rows[part], weight)
            }
            false => {
                tape.set_shard(None);
                (batch.rows, 1.0)
            }
        };
        let Model {
            layers, compiled, ..
        } = self;
        let compiled = compiled
            .as_mut()
            .ok_or_else(|| Error::invalid("call compile() before fit()"))?;
        let weights = Model::weights_onto(layers, tape);
        // The weights go back to their layers whatever the step's outcome.
        let result = (|| {
            let mut value = 0.0;
            // Data-parallel: the gradients are summed over the processes during backward.
            let mut exchange = None;
            // A share may be empty (a last batch smaller than the number of processes).
            if !rows.is_empty() {
                let batch = RecordedBatch::record(
                    (layers, graph, &weights),
                    tape,
                    data,
                    rows,
                    batch.next,
                    compiled.loss,
                    class_weight,
                )?;
                let loss = Model::with_penalties(layers, tape, &weights, batch.loss)?;
                value = tape.value(loss).item()?;
                if shared {
                    let mut sums = GradientExchange::start(tape, weight, value)?;
                    tape.backward_overlapped(loss, &mut |tape, ready| sums.on_ready(tape, ready))?;
                    exchange = Some(sums);
                } else {
                    tape.backward(loss)?;
                }
                batch.count(tape, (value, rows.len()), compiled.accuracy, running)?;
            } else if shared {
                // No samples here: the random layers' draws move on as the others' do.
                Model::skip_training_step(layers, graph);
                let mut sums = GradientExchange::start(tape, weight, 0.0)?;
                sums.nothing_reached(tape)?;
                exchange = Some(sums);
            }
            // The gradient seam's all-reduce: the batch's gradients and loss, the same on
            // every process (which so stop on a non-finite loss together).
            if let Some(sums) = exchange {
                value = sums.finish(tape)?;
            }
            compiled.apply_gradients(tape)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(shape: &[usize], y: &[f32]) -> Result<Vec<f32>> {
        let y = Tensor::new(shape, y.to_vec()).unwrap();
        Ok(sample_weights(&y, &[10.0, 20.0, 30.0])?.data().to_vec())
    }

    #[test]
    fn a_sample_s_class_is_found_as_keras_finds_it() {
        // Class indices, as (n,) or (n, 1): label 2 is class 2, not "above 0.5".
        assert_eq!(weights(&[3], &[2.0, 0.0, 1.0]).unwrap(), [30.0, 10.0, 20.0]);
        assert_eq!(
            weights(&[3, 1], &[2.0, 0.0, 1.0]).unwrap(),
            [30.0, 10.0, 20.0]
        );
        // One-hot rows (or probabilities): the argmax.
        let one_hot = [0.0, 0.0, 1.0, 0.1, 0.7, 0.2];
        assert_eq!(weights(&[2, 3], &one_hot).unwrap(), [30.0, 20.0]);
        // Rounded half to even, as numpy's round: 0.5 → 0, 1.5 → 2, 0.7 → 1.
        assert_eq!(weights(&[3], &[0.5, 1.5, 0.7]).unwrap(), [10.0, 30.0, 20.0]);
        for bad in [-1.0, 3.0, f32::NAN] {
            let err = weights(&[2, 1], &[0.0, bad]).unwrap_err().to_string();
            assert!(
                err.contains("sample 1") && err.contains("3 entries"),
                "{err}"
            );
        }
    }
}
