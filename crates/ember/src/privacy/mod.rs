//! Differential privacy: what a DP-SGD run (per-example gradients clipped to a norm, Gaussian
//! noise of σ times that norm added to their sum, batches drawn by Poisson sampling at rate q)
//! guarantees, as (ε, δ). Two accountants, as Opacus computes them: [`rdp`], Rényi DP of the
//! subsampled Gaussian mechanism composed over the steps and converted to (ε, δ), and [`prv`],
//! the numerical composition of its privacy loss distribution (tighter).

pub mod dp_sgd;
pub mod prv;
pub mod rdp;

pub use dp_sgd::{Accountant, Privacy, Sampling, Stretch};
pub use prv::prv_epsilon;
pub use rdp::{rdp_epsilon, rdp_epsilon_composed, RDP_ORDERS};

use crate::error::{Error, Result};

/// ε after `epochs` epochs of DP-SGD at sampling rate `q` and noise multiplier `sigma`, for
/// `delta`, by the accountant named `accountant`: "rdp" or "prv" (`ember privacy epsilon`).
pub fn epsilon(accountant: &str, q: f64, sigma: f64, epochs: f64, delta: f64) -> Result<f64> {
    let steps = planned_steps(q, epochs)?;
    match accountant {
        "rdp" => rdp_epsilon(q, sigma, steps, delta),
        "prv" => prv_epsilon(q, sigma, steps, delta),
        other => Err(Error::invalid(format!(
            "unknown accountant '{other}': rdp or prv"
        ))),
    }
}

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

/// An error unless `sigma` is a noise multiplier (finite, ≥ 0) and `delta` lies in (0, 1).
pub(crate) fn check_noise_and_delta(sigma: f64, delta: f64) -> Result<()> {
    if !(sigma.is_finite() && sigma >= 0.0) {
        return Err(Error::invalid(format!(
            "the noise multiplier must be a finite number ≥ 0, got {sigma}"
        )));
    }
    if !(delta > 0.0 && delta < 1.0) {
        return Err(Error::invalid(format!(
            "delta must lie in (0, 1), got {delta}"
        )));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use serde::Deserialize;

    #[derive(Deserialize)]
    pub struct Fixture {
        pub opacus: String,
        pub cases: Vec<Case>,
    }

    #[derive(Deserialize)]
    pub struct Case {
        pub q: f64,
        pub sigma: f64,
        pub epochs: f64,
        pub steps: u64,
        pub delta: f64,
        pub rdp: f64,
        pub prv: f64,
    }

    /// bench/privacy_accountant_fixture.py: Opacus 1.6.0's RDP and PRV accountants' ε on 22
    /// settings (the first three, its MNIST example's).
    pub fn fixture() -> Fixture {
        let fixture: Fixture = serde_json::from_str(include_str!("opacus_epsilon.json")).unwrap();
        assert_eq!(fixture.opacus, "1.6.0");
        assert!(fixture.cases.len() >= 20);
        fixture
    }
}
