//! What `fit` does differently when several processes train one model (data-parallel, see
//! [`crate::distributed`]): the weights start as rank 0's, each epoch's metrics are summed
//! over the ranks, moving averages (batch normalization's) are averaged, and the weights
//! are checked to be the same on every rank; and the gradients' all-reduce that the
//! training step (step.rs) runs during backward. Alone, every function here returns at once.

use super::functional::Model;
use crate::autograd::{Tape, Var};
use crate::distributed::{self, world, BUCKET_FLOATS};
use crate::error::{Error, Result};
use crate::metrics::RunningMetrics;

impl Model {
    /// Replaces every weight with rank 0's, so that all ranks start from the same model.
    pub(super) fn broadcast_weights(&mut self) -> Result<()> {
        if world().size() == 1 {
            return Ok(());
        }
        let weights = self.get_weights();
        let mut bytes: Vec<u8> = weights
            .iter()
            .flat_map(|w| w.data().iter().flat_map(|v| v.to_le_bytes()))
            .collect();
        let expected = bytes.len();
        world().broadcast(0, &mut bytes)?;
        if bytes.len() != expected {
            return Err(Error::invalid(format!(
                "rank 0's model has {} weight values, this rank's (rank {}) {}: the ranks built different models",
                bytes.len() / 4,
                world().rank(),
                expected / 4
            )));
        }
        let mut values = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let replaced = weights
            .into_iter()
            .map(|w| {
                let data: Vec<f32> = values.by_ref().take(w.len()).collect();
                crate::Tensor::new(w.shape(), data)
            })
            .collect::<Result<Vec<_>>>()?;
        self.set_weights(replaced)
    }

    /// Averages over the ranks the weights that training moves without gradients (batch
    /// normalization's moving mean and variance, updated from each rank's own shard), then
    /// checks that every weight is the same on every rank.
    pub(super) fn synchronise_epoch(&mut self, epoch: usize) -> Result<()> {
        let size = world().size();
        if size == 1 {
            return Ok(());
        }
        let moving: Vec<String> = self
            .layers
            .iter()
            .filter(|e| e.trainable)
            .flat_map(|e| {
                e.op.weights()
                    .into_iter()
                    .filter(|w| !w.trainable)
                    .map(move |w| format!("{}/{}", e.name, w.name))
            })
            .collect();
        if !moving.is_empty() {
            let all = self.weights();
            let tensors: Vec<crate::Tensor> = all
                .iter()
                .filter(|(name, _)| moving.contains(name))
                .map(|(_, t)| (*t).clone())
                .collect();
            let mut flat: Vec<f32> = tensors.iter().flat_map(|t| t.data().to_vec()).collect();
            world().sum_f32(&mut flat)?;
            let mut at = 0;
            for (name, t) in moving.iter().zip(tensors) {
                let n = t.len();
                let mean: Vec<f32> = flat[at..at + n].iter().map(|v| v / size as f32).collect();
                self.set_weight(name, crate::Tensor::new(t.shape(), mean)?)?;
                at += n;
            }
        }
        let weights = self.weights();
        distributed::check_identical(
            &format!("after epoch {epoch}, the model's weights"),
            weights.iter().map(|(_, t)| t.data()),
        )
    }
}

/// An epoch's training metrics over every rank's share of its batches.
pub(super) fn summed(running: &RunningMetrics) -> Result<RunningMetrics> {
    if world().size() == 1 {
        return Ok(*running);
    }
    let mut counts = running.counts();
    distributed::sum_counts(&mut counts)?;
    Ok(RunningMetrics::from_counts(counts))
}

/// The all-reduce of one training step's gradients, overlapped with its backward pass. The
/// trainable weights go in buckets of at most [`BUCKET_FLOATS`], the last layers' first (as
/// PyTorch DDP orders them: backward reaches them first); a bucket's sum starts as soon as
/// its weights' gradients are final and every bucket before it has started, so that every
/// rank starts the same sums in the same order. Each message holds the bucket's gradients,
/// weighted by this rank's share of the batch, and one flag per weight (whether backward
/// reached it here); the batch's loss goes first, in a message of its own.
pub(super) struct GradientExchange {
    buckets: Vec<Vec<Var>>,
    /// Buckets started so far.
    started: usize,
    /// Which of the step's weights have final gradients (by their index on the tape).
    ready: Vec<bool>,
    /// This rank's share of the batch.
    weight: f32,
}

impl GradientExchange {
    /// Plans the buckets of the weights on `tape` and starts the sum of the share's mean
    /// `loss` (0 for an empty share).
    pub(super) fn start(tape: &Tape, weight: f32, loss: f32) -> Result<Self> {
        let mut buckets = Vec::new();
        let mut bucket: Vec<Var> = Vec::new();
        let mut floats = 0;
        let trainable: Vec<Var> = tape.trainable_params().collect();
        for v in trainable.into_iter().rev() {
            let n = tape.value(v).len();
            if !bucket.is_empty() && floats + n > BUCKET_FLOATS {
                buckets.push(std::mem::take(&mut bucket));
                floats = 0;
            }
            bucket.push(v);
            floats += n;
        }
        if !bucket.is_empty() {
            buckets.push(bucket);
        }
        world().start_sum(vec![weight * loss])?;
        Ok(GradientExchange {
            buckets,
            started: 0,
            ready: vec![false; tape.num_params()],
            weight,
        })
    }

    /// Backward has made the gradients of `vars` final: starts every bucket now complete.
    pub(super) fn on_ready(&mut self, tape: &Tape, vars: &[Var]) -> Result<()> {
        for v in vars {
            self.ready[v.0] = true;
        }
        while let Some(bucket) = self.buckets.get(self.started) {
            if !bucket.iter().all(|v| self.ready[v.0]) {
                break;
            }
            let mut message = Vec::new();
            for &v in bucket {
                match tape.grad(v) {
                    Some(g) => message.extend(g.data().iter().map(|x| x * self.weight)),
                    None => message.resize(message.len() + tape.value(v).len(), 0.0),
                }
            }
            message.extend(bucket.iter().map(|&v| f32::from(tape.grad(v).is_some())));
            world().start_sum(message)?;
            self.started += 1;
        }
        world().progress()
    }

    /// A rank with no rows in this batch: every bucket, as zeros (no gradient reached).
    pub(super) fn nothing_reached(&mut self, tape: &Tape) -> Result<()> {
        for bucket in &self.buckets[self.started..] {
            let floats: usize = bucket.iter().map(|&v| tape.value(v).len()).sum();
            world().start_sum(vec![0.0; floats + bucket.len()])?;
        }
        self.started = self.buckets.len();
        Ok(())
    }

    /// Waits for every sum and writes the summed gradients back to `tape`: a weight no rank
    /// reached keeps none. Returns the batch's loss.
    pub(super) fn finish(self, tape: &mut Tape) -> Result<f32> {
        if self.started != self.buckets.len() {
            return Err(Error::invalid(format!(
                "{} of {} gradient buckets were never started",
                self.buckets.len() - self.started,
                self.buckets.len()
            )));
        }
        let sums = world().finish_sums()?;
        let [loss, buckets @ ..] = sums.as_slice() else {
            return Err(Error::invalid("the gradient all-reduce returned nothing"));
        };
        if buckets.len() != self.buckets.len() {
            return Err(Error::invalid(format!(
                "{} gradient sums for {} buckets",
                buckets.len(),
                self.buckets.len()
            )));
        }
        for (bucket, sum) in self.buckets.iter().zip(buckets) {
            let (grads, flags) = sum.split_at(sum.len() - bucket.len());
            let mut at = 0;
            for (&v, &flag) in bucket.iter().zip(flags) {
                let n = tape.value(v).len();
                let reached = flag > 0.0;
                tape.set_grad(v, reached.then(|| &grads[at..at + n]))?;
                at += n;
            }
        }
        Ok(loss.first().copied().unwrap_or(f32::NAN))
    }
}
