//! `Dropout`: during training, zero a random fraction of the inputs and scale the rest up.

use std::cell::Cell;

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
    next_seed: Cell<u64>,
}

impl Dropout {
    pub fn new(rate: f32) -> Self {
        Dropout {
            rate,
            next_seed: Cell::new(0),
        }
    }
}

impl Layer for Dropout {
    fn kind(&self) -> &'static str {
        "Dropout"
    }

    fn build(
        &mut self,
        _tape: &mut Tape,
        input_shape: &[usize],
        rng: &mut Rng,
    ) -> Result<Vec<usize>> {
        if !(0.0..1.0).contains(&self.rate) {
            return Err(Error::invalid(format!(
                "Dropout rate must be in [0, 1), got {}",
                self.rate
            )));
        }
        self.next_seed.set(rng.next_u64());
        Ok(input_shape.to_vec())
    }

    fn forward(&self, tape: &mut Tape, x: Var, training: bool) -> Result<Var> {
        if !training || self.rate == 0.0 {
            return Ok(x);
        }
        let seed = self.next_seed.get();
        self.next_seed.set(seed.wrapping_add(0x9E37_79B9_7F4A_7C15));
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

    fn params(&self) -> Vec<(&'static str, Var)> {
        Vec::new()
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::Dropout { rate: self.rate }
    }
}
