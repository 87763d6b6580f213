//! Differentially private training (DP-SGD, Abadi et al. 2016, as Opacus runs it): a step's
//! gradients are each example's own (one vectorised backward pass), each clipped to
//! `max_grad_norm` over all the weights together, summed, given Gaussian noise of
//! σ · `max_grad_norm` and divided by the expected batch size; the optimizer then updates as
//! usual. Batches are Poisson-sampled (see [`crate::data::split::poisson_batches`]); the
//! steps taken are recorded in the model's [`Privacy`] ledger, from which its ε is computed.

use super::fit::Data;
use super::functional::{Model, Operation};
use super::interpreter::GraphView;
use super::step::RecordedBatch;
use crate::autograd::{Tape, Var};
use crate::error::{Error, Result};
use crate::metrics::RunningMetrics;
use crate::privacy::{Privacy, Sampling};
use crate::tensor::privacy::clip_and_noise;
use crate::tensor::random::Rng;

/// A private run's settings for its steps, fixed when `fit` starts.
#[derive(Clone, Copy, Debug)]
pub(super) struct PrivateRun {
    /// The sampling rate q = batch size / training rows.
    pub sample_rate: f64,
    pub noise_multiplier: f64,
    pub max_grad_norm: f32,
    /// Batch size: what Poisson sampling draws on average, and what the noisy sum is divided
    /// by.
    pub expected_batch: usize,
    pub sampling: Sampling,
}

impl PrivateRun {
    /// Steps an epoch of `rows` training rows: ⌊1/q⌋ Poisson-sampled batches, or the
    /// shuffled epoch's batches.
    pub fn steps(&self, rows: usize) -> usize {
        match self.sampling {
            Sampling::Poisson => (1.0 / self.sample_rate).floor() as usize,
            Sampling::Shuffle => rows.div_ceil(self.expected_batch),
        }
    }

    /// Epoch `epoch`'s Poisson-sampled batches over `rows` rows, drawn from a generator of
    /// its own (a resumed run draws the same batches without replaying the others).
    pub fn poisson_batches(&self, rows: usize, seed: u64, epoch: usize) -> Result<Vec<Vec<usize>>> {
        let mut rng = Rng::seed(stream(seed, epoch, 1));
        crate::data::split::poisson_batches(rows, self.sample_rate, &mut rng)
    }

    /// The generator of epoch `epoch`'s noise.
    pub fn noise(&self, seed: u64, epoch: usize) -> Rng {
        Rng::seed(stream(seed, epoch, 2))
    }
}

/// A seed for one epoch's stream `which` (the batches or the noise), derived from the run's.
fn stream(seed: u64, epoch: usize, which: u64) -> u64 {
    let mut x = seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ which << 56;
    // SplitMix64's finaliser: nearby inputs give unrelated seeds.
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl Model {
    /// Makes training differentially private (Opacus's `make_private`): from now on `fit`
    /// runs DP-SGD with these settings and records the steps it takes, and the model's
    /// guarantee is [`Model::privacy`]'s. Call after `compile` (compiling again removes
    /// it). Layers that mix the examples of a batch (BatchNormalization) are refused, as are
    /// weight penalties (a penalty's gradient belongs to no example).
    pub fn make_private(&mut self, privacy: Privacy) -> Result<()> {
        if self.compiled.is_none() {
            return Err(Error::invalid("call compile() before make_private()"));
        }
        privacy
            .validate()
            .map_err(|(field, message)| Error::invalid(format!("{field}: {message}")))?;
        for entry in &self.layers {
            let Operation::Layer(layer) = &entry.op else {
                continue;
            };
            if layer.kind() == "BatchNormalization" {
                return Err(Error::invalid(format!(
                    "layer '{}' (BatchNormalization) mixes the examples of a batch, so one \
                     example's gradient depends on the others and cannot be clipped alone: \
                     private training refuses it; use LayerNormalization, which normalises \
                     each example by itself",
                    entry.name
                )));
            }
            if !layer.l2_penalties().is_empty() {
                return Err(Error::invalid(format!(
                    "layer '{}' has a weight penalty (kernel_regularizer): private training \
                     clips each example's gradient, and a penalty belongs to no example; \
                     remove it (the clipping and noise regularise already)",
                    entry.name
                )));
            }
        }
        self.compiled
            .as_mut()
            .ok_or_else(|| Error::invalid("call compile() before make_private()"))?
            .privacy = Some(privacy);
        Ok(())
    }

    /// The private training's settings and the steps it has spent (None for a model trained
    /// without privacy).
    pub fn privacy(&self) -> Option<&Privacy> {
        self.compiled.as_ref()?.privacy.as_ref()
    }

    /// Fixes a private run's settings for `epochs` epochs (σ found for a target ε) over
    /// `rows` training rows in batches of `batch_size`; None without privacy.
    pub(super) fn start_private_run(
        &mut self,
        rows: usize,
        batch_size: usize,
        epochs: usize,
    ) -> Result<Option<PrivateRun>> {
        let Some(privacy) = self.compiled.as_mut().and_then(|c| c.privacy.as_mut()) else {
            return Ok(None);
        };
        let world = crate::distributed::world().size();
        if world > 1 {
            return Err(Error::invalid(format!(
                "private training runs on one process; this run has {world} (mpirun): \
                 train it without mpirun"
            )));
        }
        let sample_rate = (batch_size as f64 / rows as f64).min(1.0);
        let noise_multiplier = privacy.resolve_noise(sample_rate, epochs)?;
        privacy.check_stretch(sample_rate, noise_multiplier)?;
        Ok(Some(PrivateRun {
            sample_rate,
            noise_multiplier,
            max_grad_norm: privacy.max_grad_norm,
            expected_batch: batch_size.min(rows),
            sampling: privacy.sampling,
        }))
    }

    /// One DP-SGD step on the samples `rows` (possibly none: the update is then noise
    /// alone); returns the batch's mean loss (0 for an empty batch) and records the step.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn private_step(
        &mut self,
        tape: &mut Tape,
        graph: &GraphView,
        data: &Data,
        rows: &[usize],
        class_weight: Option<&[f32]>,
        running: &mut RunningMetrics,
        run: &PrivateRun,
        noise: &mut Rng,
    ) -> Result<f32> {
        tape.set_shard(None);
        let Model {
            layers, compiled, ..
        } = self;
        let compiled = compiled
            .as_mut()
            .ok_or_else(|| Error::invalid("call compile() before fit()"))?;
        let weights = Model::weights_onto(layers, tape);
        let result = (|| {
            let n = rows.len();
            let mut value = 0.0;
            if n > 0 {
                let batch = RecordedBatch::record(
                    (layers, graph, &weights),
                    tape,
                    data,
                    rows,
                    None,
                    compiled.loss,
                    class_weight,
                )?;
                value = tape.value(batch.loss).item()?;
                tape.backward_per_example(batch.loss, n)?;
                batch.count(tape, (value, n), compiled.accuracy, running)?;
            }
            // Each trained weight's per-example gradients (none: the loss did not reach it,
            // or the batch is empty), clipped, summed and noised into one gradient.
            let trained: Vec<Var> = tape.trainable_params().collect();
            let mut summed: Vec<Vec<f32>> = trained
                .iter()
                .map(|&v| vec![0.0; tape.value(v).len()])
                .collect();
            {
                let per_example: Vec<&[f32]> = trained
                    .iter()
                    .map(|&v| match (n, tape.grad(v)) {
                        (1.., Some(g)) => g.data(),
                        _ => &[],
                    })
                    .collect();
                let mut outs: Vec<&mut [f32]> = summed.iter_mut().map(Vec::as_mut_slice).collect();
                let settings = (
                    run.max_grad_norm,
                    run.noise_multiplier as f32,
                    run.expected_batch as f32,
                );
                clip_and_noise(&per_example, n, settings, noise, &mut outs);
            }
            for (&v, g) in trained.iter().zip(&summed) {
                tape.set_grad(v, Some(g))?;
            }
            compiled.apply_gradients(tape)?;
            if let Some(privacy) = compiled.privacy.as_mut() {
                privacy.record(run.sample_rate, run.noise_multiplier, 1);
            }
            Ok(value)
        })();
        Model::weights_back(layers, tape, &weights);
        result
    }
}
