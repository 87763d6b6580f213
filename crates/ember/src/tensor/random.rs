//! Seeded random numbers: the same seed gives the same weights and the same batches everywhere.

use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// A small, fast, seedable generator (xoshiro256++), stable across platforms and releases.
#[derive(Clone, Debug)]
pub struct Rng(Xoshiro256PlusPlus);

impl Rng {
    pub fn seed(seed: u64) -> Self {
        Rng(Xoshiro256PlusPlus::seed_from_u64(seed))
    }

    /// The next raw 64-bit value.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `[0, 1)`, using the top 24 bits (every representable step of an f32 there).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    /// Uniform in `[0, 1)` in double precision, using the top 53 bits.
    pub fn uniform_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[low, high)`.
    pub fn uniform_range(&mut self, low: f32, high: f32) -> f32 {
        low + (high - low) * self.uniform()
    }

    /// Uniform integer in `[0, n)`, without modulo bias (Lemire's method).
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "Rng::below(0)");
        let n = n as u64;
        loop {
            let product = (self.next_u64() as u128) * (n as u128);
            let low = product as u64;
            if low >= n || low >= n.wrapping_neg() % n {
                return (product >> 64) as usize;
            }
        }
    }

    /// Normal with mean 0 and standard deviation `std` (Box–Muller).
    pub fn normal(&mut self, std: f32) -> f32 {
        // 1 − u is in (0, 1]: the logarithm is finite.
        let radius = (-2.0 * (1.0 - self.uniform_f64()).ln()).sqrt();
        let angle = std::f64::consts::TAU * self.uniform_f64();
        (radius * angle.cos()) as f32 * std
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }

    /// A new generator derived from this one, for an independent stream.
    pub fn fork(&mut self) -> Rng {
        Rng::seed(self.next_u64())
    }
}

/// A tensor of `shape` drawn uniformly from `[low, high)`, element by element in order.
pub fn uniform_tensor(shape: &[usize], low: f32, high: f32, rng: &mut Rng) -> super::Tensor {
    let mut t = super::Tensor::zeros(shape);
    for v in t.data_mut() {
        *v = rng.uniform_range(low, high);
    }
    t
}

/// Dropout's mask for a tensor of `shape`: each element kept (as 1 / (1 − rate), Keras's
/// inverted dropout) when a 32-bit uniform lies at or above `rate`, else 0; two draws per 64
/// random bits of a generator seeded with `seed`.
pub fn dropout_mask(shape: &[usize], rate: f32, seed: u64) -> super::Tensor {
    let mut rng = Rng::seed(seed);
    let keep = 1.0 / (1.0 - rate);
    let mut mask = super::Tensor::zeros(shape);
    let threshold = (rate as f64 * 4_294_967_296.0) as u64;
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
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let (mut a, mut b, mut c) = (Rng::seed(7), Rng::seed(7), Rng::seed(8));
        let xs: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..4).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn uniform_and_below_stay_in_range_and_cover_it() {
        let mut rng = Rng::seed(1);
        let mut counts = [0usize; 5];
        for _ in 0..10_000 {
            let u = rng.uniform();
            assert!((0.0..1.0).contains(&u));
            counts[rng.below(5)] += 1;
        }
        // Each bucket expects 2000; a fair generator stays well within ±10%.
        assert!(
            counts.iter().all(|&c| (1800..2200).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut v: Vec<usize> = (0..100).collect();
        Rng::seed(3).shuffle(&mut v);
        assert_ne!(v, (0..100).collect::<Vec<_>>());
        v.sort();
        assert_eq!(v, (0..100).collect::<Vec<_>>());
    }
}
