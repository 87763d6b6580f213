//! `Dropout`: during training, zero a random fraction of the inputs and scale the rest up.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{Layer, LayerConfig};
use crate::autograd::{Tape, Var};
use crate::error::{Error, Result};
use crate::tensor::random::Rng;
use crate::tensor::Tensor;

/// Keras `Dropout(rate)`: inverted dropout, active only in training. Masks are drawn from a
/// seeded stream, so training is reproducible.
#[derive(Clone, Debug)]
pub struct Dropout {
    pub(crate) rate: f32,
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

impl Dropout {
    pub fn new(rate: f32) -> Self {
        Dropout {
            rate,
            next_seed: SeedStream::default(),
        }
    }
}

impl Layer for Dropout {
    fn kind(&self) -> &'static str {
        "Dropout"
    }

    fn build(&mut self, input_shape: &[usize], rng: &mut Rng) -> Result<Vec<usize>> {
        if !(0.0..1.0).contains(&self.rate) {
            return Err(Error::invalid(format!(
                "Dropout rate must be in [0, 1), got {}",
                self.rate
            )));
        }
        self.next_seed.restart(rng.next_u64());
        Ok(input_shape.to_vec())
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.clone())
    }

    fn forward_owned(&self, x: Tensor) -> Result<Tensor> {
        Ok(x)
    }

    fn record(&self, tape: &mut Tape, _weights: &[Var], x: Var, training: bool) -> Result<Var> {
        if !training || self.rate == 0.0 {
            return Ok(x);
        }
        let seed = self.next_seed.next();
        let mut rng = Rng::seed(seed);
        let keep = 1.0 / (1.0 - self.rate);
        let shape = tape.value(x).shape().to_vec();
        let mut mask = Tensor::zeros(&shape);
        // Two draws per 64 random bits: keep when a 32-bit uniform lies at or above the rate.
        let threshold = (self.rate as f64 * 4_294_967_296.0) as u64;
        let value = |bits: u64| if bits >= threshold { keep } else { 0.0 };
        let mut pairs = mask.data_mut().chunks_exact_mut(2);
        for pair in &mut pairs {
            let bits = rng.next_u64();
            pair[0] = value(bits >> 32);
            pair[1] = value(bits & 0xFFFF_FFFF);
        }
        if let [last] = pairs.into_remainder() {
            *last = value(rng.next_u64() >> 32);
        }
        let mask = tape.constant(&mask);
        tape.mul(x, mask)
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::Dropout { rate: self.rate }
    }
}
