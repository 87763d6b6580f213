//! What `fit` does differently when several processes train one model (data-parallel, see
//! [`crate::distributed`]): the weights start as rank 0's, each epoch's metrics are summed
//! over the ranks, moving averages (batch normalization's) are averaged, and the weights
//! are checked to be the same on every rank. The gradients' all-reduce is in the training
//! step (step.rs); alone, every function here returns at once.

use super::functional::Model;
use crate::distributed::{self, world};
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
