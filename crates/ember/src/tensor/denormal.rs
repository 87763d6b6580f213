//! Flush-to-zero for subnormal floats on training threads.
//!
//! Adam's second moments decay towards zero and, once subnormal, make every multiply
//! take a slow microcode path; flushing them to zero costs no accuracy that matters.

/// While alive, the current thread treats subnormal inputs and results as zero.
/// The previous setting is restored on drop.
pub struct FlushDenormals {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

#[cfg(target_arch = "x86_64")]
mod mxcsr {
    /// MXCSR bits: FTZ (flush results to zero) and DAZ (treat inputs as zero).
    pub const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);

    pub fn get() -> u32 {
        let mut csr: u32 = 0;
        // SAFETY: stmxcsr stores the 32-bit control register to the given address.
        unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack)) };
        csr
    }

    pub fn set(csr: u32) {
        // SAFETY: ldmxcsr loads a valid control word; only rounding/flush bits change.
        unsafe { std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack)) };
    }
}

impl FlushDenormals {
    /// Turns flushing on for this thread.
    pub fn new() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let saved = mxcsr::get();
            mxcsr::set(saved | mxcsr::FTZ_DAZ);
            FlushDenormals { saved }
        }
        #[cfg(not(target_arch = "x86_64"))]
        FlushDenormals {}
    }
}

impl Default for FlushDenormals {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for FlushDenormals {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        mxcsr::set(self.saved);
    }
}

/// Turns flushing on for the current thread for good (used for worker threads).
pub fn flush_denormals_forever() {
    std::mem::forget(FlushDenormals::new());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn subnormal_results_become_zero_and_setting_is_restored() {
        let tiny = std::hint::black_box(f32::MIN_POSITIVE);
        let half = std::hint::black_box(0.5f32);
        assert!(tiny * half > 0.0, "subnormal without flushing");
        {
            let _guard = FlushDenormals::new();
            assert_eq!(std::hint::black_box(tiny * half), 0.0);
        }
        assert!(std::hint::black_box(tiny * half) > 0.0, "setting restored");
    }
}
