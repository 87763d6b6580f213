//! `Dropout`: during training, zero a random fraction of the inputs and scale the rest up.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::{Layer, LayerConfig};
use crate::autograd::{BinaryOp, Pass, Value};
use crate::error::{Error, Result};
use crate::tensor::random::{self, Rng};

/// `type = "dropout"` in a model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropoutConfig {
    /// The fraction of inputs zeroed in training, in [0, 1).
    pub rate: f32,
}

impl DropoutConfig {
    /// The input shape, when the rate is valid; no parameters.
    pub fn shape_and_params(&self, input: &[usize]) -> Result<(Vec<usize>, usize)> {
        let rate = self.rate;
        if !(0.0..1.0).contains(&rate) {
            return Err(Error::invalid(format!(
                "Dropout rate must be in [0, 1), got {rate}"
            )));
        }
        Ok((input.to_vec(), 0))
    }
}

/// Keras `Dropout(rate)`: inverted dropout, active only in training. Masks are drawn from a
/// seeded stream, so training is reproducible.
#[derive(Clone, Debug)]
pub struct Dropout {
    config: DropoutConfig,
    /// Seed of the next mask; advanced on every training forward pass.
    next_seed: SeedStream,
}

/// The seeds of a layer's random masks or transforms, one per training step: shared by the
/// threads that may hold the layer, and advanced the same way whichever draws.
#[derive(Debug, Default)]
pub(crate) struct SeedStream(AtomicU64);

impl SeedStream {
    pub fn restart(&self, seed: u64) {
        self.0.store(seed, Ordering::Relaxed);
    }

    /// This step's seed; the next step gets another.
    pub fn next(&self) -> u64 {
        self.0.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
    }
}

impl Clone for SeedStream {
    fn clone(&self) -> Self {
        SeedStream(AtomicU64::new(self.0.load(Ordering::Relaxed)))
    }
}

impl From<DropoutConfig> for Dropout {
    fn from(config: DropoutConfig) -> Self {
        Dropout {
            config,
            next_seed: SeedStream::default(),
        }
    }
}

impl Dropout {
    pub fn new(rate: f32) -> Self {
        Dropout::from(DropoutConfig { rate })
    }
}

impl Layer for Dropout {
    fn kind(&self) -> &'static str {
        "Dropout"
    }

    fn build(&mut self, input_shape: &[usize], rng: &mut Rng) -> Result<Vec<usize>> {
        let (output, _) = self.config.shape_and_params(input_shape)?;
        self.next_seed.restart(rng.next_u64());
        Ok(output)
    }

    fn call(&self, pass: &mut Pass, x: Value, _mask: Option<Value>) -> Result<Value<'static>> {
        let rate = self.config.rate;
        if !pass.training() || rate == 0.0 {
            return Ok(x.into_owned());
        }
        let shape = pass.shape(&x)?.to_vec();
        let seed = self.next_seed.next();
        // A batch shared among processes: this one's rows of the whole batch's mask.
        let mask = match shape.first().and_then(|&rows| pass.shard(rows)) {
            Some(shard) => {
                let mut whole = shape.clone();
                whole[0] = shard.batch;
                random::dropout_mask(&whole, rate, seed)
                    .slice_rows(shard.offset, shard.offset + shard.rows)?
            }
            None => random::dropout_mask(&shape, rate, seed),
        };
        let mask = pass.constant(mask);
        pass.binary(BinaryOp::Mul, &x, &mask)
    }

    fn skip_call(&self) {
        if self.config.rate != 0.0 {
            self.next_seed.next();
        }
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::Dropout(self.config.clone())
    }
}
