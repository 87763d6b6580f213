//! Differential privacy: what a DP-SGD run (per-example gradients clipped to a norm, Gaussian
//! noise of σ times that norm added to their sum, batches drawn by Poisson sampling at rate q)
//! guarantees, as (ε, δ). The accountant is [`rdp`]: Rényi DP of the subsampled Gaussian
//! mechanism, composed over the steps and converted to (ε, δ), as Opacus computes it.

pub mod rdp;

pub use rdp::{rdp_epsilon, RDP_ORDERS};

use crate::error::{Error, Result};

/// The planned steps of `epochs` epochs at sampling rate `q`: `⌊epochs / q⌋`, as Opacus plans
/// them (one epoch is 1/q batches on average).
pub fn planned_steps(q: f64, epochs: f64) -> Result<u64> {
    check_rate(q)?;
    if !(epochs.is_finite() && epochs >= 0.0) {
        return Err(Error::invalid(format!(
            "epochs must be a finite number ≥ 0, got {epochs}"
        )));
    }
    let steps = (epochs / q).floor();
    if steps > 1e15 {
        return Err(Error::invalid(format!(
            "{epochs} epochs at sampling rate {q} are {steps:e} steps: too many to account"
        )));
    }
    Ok(steps as u64)
}

/// An error unless `q` is a sampling rate in (0, 1].
pub(crate) fn check_rate(q: f64) -> Result<()> {
    match q > 0.0 && q <= 1.0 {
        true => Ok(()),
        false => Err(Error::invalid(format!(
            "the sampling rate must lie in (0, 1], got {q}"
        ))),
    }
}
