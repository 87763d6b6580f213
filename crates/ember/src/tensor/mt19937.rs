//! NumPy's legacy `RandomState` (the Mersenne Twister MT19937 with NumPy's bounded draws):
//! the same integers and shuffles as NumPy for the same seed, so that an algorithm defined by
//! scikit-learn (permutation importance) gives the very numbers scikit-learn gives.

/// MT19937 (Matsumoto & Nishimura, 1998), seeded as `numpy.random.RandomState(seed)` seeds it.
#[derive(Clone)]
pub struct RandomState {
    state: [u32; 624],
    index: usize,
}

impl RandomState {
    /// `numpy.random.RandomState(seed)` (init_genrand).
    pub fn new(seed: u32) -> Self {
        let mut state = [0u32; 624];
        state[0] = seed;
        for i in 1..624 {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        Self { state, index: 624 }
    }

    /// The next 32 bits (genrand_int32).
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    fn twist(&mut self) {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        for i in 0..624 {
            let y = (self.state[i] & UPPER) | (self.state[(i + 1) % 624] & LOWER);
            let mut next = self.state[(i + 397) % 624] ^ (y >> 1);
            if y & 1 == 1 {
                next ^= 0x9908_b0df;
            }
            self.state[i] = next;
        }
        self.index = 0;
    }

    /// A uniform integer in [0, max] by masked rejection (NumPy's `random_interval`).
    pub fn interval(&mut self, max: u32) -> u32 {
        if max == 0 {
            return 0;
        }
        let mask = u32::MAX >> max.leading_zeros();
        loop {
            let value = self.next_u32() & mask;
            if value <= max {
                return value;
            }
        }
    }

    /// `RandomState.random_sample()`: a double in [0, 1) from 53 random bits.
    pub fn random_sample(&mut self) -> f64 {
        let a = (self.next_u32() >> 5) as f64;
        let b = (self.next_u32() >> 6) as f64;
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }

    /// `RandomState.randint(2**31)`: how scikit-learn draws one seed from another.
    pub fn randint_i32(&mut self) -> u32 {
        self.interval(i32::MAX as u32)
    }

    /// `RandomState.shuffle` of a one-dimensional array: Fisher–Yates from the end.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.interval(i as u32) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_and_shuffles_equal_numpys() {
        // Matsumoto & Nishimura's reference output for init_genrand(5489).
        assert_eq!(RandomState::new(5489).next_u32(), 3_499_211_612);
        // Printed by numpy 2.x: RandomState(0).randint(np.iinfo(np.int32).max + 1).
        assert_eq!(RandomState::new(0).randint_i32(), 209_652_396);
        // RandomState(0).random_sample(3).
        let mut r = RandomState::new(0);
        let u: Vec<f64> = (0..3).map(|_| r.random_sample()).collect();
        assert_eq!(
            u,
            [0.5488135039273248, 0.7151893663724195, 0.6027633760716439]
        );
        // RandomState(42): shuffle(arange(10)) twice, in place.
        let mut r = RandomState::new(42);
        let mut a: Vec<u32> = (0..10).collect();
        r.shuffle(&mut a);
        assert_eq!(a, [8, 1, 5, 0, 7, 2, 9, 4, 3, 6]);
        r.shuffle(&mut a);
        assert_eq!(a, [8, 1, 3, 2, 0, 7, 4, 6, 9, 5]);
        let mut b: Vec<u32> = (0..1000).collect();
        RandomState::new(1).shuffle(&mut b);
        assert_eq!(&b[..8], &[507, 818, 452, 368, 242, 929, 262, 810]);
    }
}
