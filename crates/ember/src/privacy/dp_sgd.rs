//! DP-SGD's settings and its ledger: the model file's `[privacy]` section, which a trained
//! model keeps with the steps it has taken, so that its guarantee can be stated (and a resumed
//! run goes on accounting from there).
//!
//! ```toml
//! [privacy]
//! max_grad_norm = 1.0
//! noise_multiplier = 1.1     # or: target_epsilon = 3.0 (σ found for the planned epochs)
//! delta = 1e-5
//! accountant = "rdp"         # or "prv"
//! ```

use serde::{Deserialize, Serialize};

use super::{planned_steps, prv_epsilon, rdp::rdp_epsilon_composed};
use crate::error::{Error, Result};

/// How ε is computed from the steps taken (see [`super::rdp`] and [`super::prv`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accountant {
    #[default]
    Rdp,
    Prv,
}

/// How each step's batch is drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sampling {
    /// Each training row in each batch independently with probability q = batch size / rows,
    /// ⌊1/q⌋ batches an epoch: the sampling the accountants assume.
    #[default]
    Poisson,
    /// Fixed-size batches of a shuffled epoch. The accountants assume Poisson sampling, so
    /// the ε reported is then not a proven guarantee (it says so).
    Shuffle,
}

/// A stretch of training at one sampling rate and noise multiplier: what the accountant
/// composes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stretch {
    pub sample_rate: f64,
    pub noise_multiplier: f64,
    pub steps: u64,
}

/// The `[privacy]` section: DP-SGD's settings, and (in a trained model) the steps spent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Privacy {
    /// Each example's gradient, over all the weights together, is clipped to this L2 norm.
    pub max_grad_norm: f32,
    /// σ: the Gaussian noise's standard deviation is σ · `max_grad_norm`. A model trained
    /// for a `target_epsilon` records the σ that was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_multiplier: Option<f64>,
    /// The ε to reach by the planned epochs: σ is found for it, as Opacus's
    /// `make_private_with_epsilon` finds it (the smallest σ found within 0.01 of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_epsilon: Option<f64>,
    pub delta: f64,
    #[serde(default)]
    pub accountant: Accountant,
    #[serde(default, skip_serializing_if = "is_poisson")]
    pub sampling: Sampling,
    /// The steps taken so far (written by training; empty in a model file to train).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spent: Vec<Stretch>,
}

fn is_poisson(s: &Sampling) -> bool {
    *s == Sampling::Poisson
}

/// Opacus's tolerance when it searches σ for a target ε.
const EPSILON_TOLERANCE: f64 = 0.01;

/// The largest σ searched for a target ε (Opacus gives up at 2000 too).
const MAX_NOISE_MULTIPLIER: f64 = 2000.0;

impl Privacy {
    /// Settings with a noise multiplier σ, Opacus's defaults otherwise (RDP, Poisson).
    pub fn new(max_grad_norm: f32, noise_multiplier: f64, delta: f64) -> Privacy {
        Privacy {
            max_grad_norm,
            noise_multiplier: Some(noise_multiplier),
            target_epsilon: None,
            delta,
            accountant: Accountant::Rdp,
            sampling: Sampling::Poisson,
            spent: Vec::new(),
        }
    }

    /// Settings that find σ for the ε `target_epsilon` at the end of the planned epochs.
    pub fn with_target_epsilon(max_grad_norm: f32, target_epsilon: f64, delta: f64) -> Privacy {
        Privacy {
            noise_multiplier: None,
            target_epsilon: Some(target_epsilon),
            ..Privacy::new(max_grad_norm, 0.0, delta)
        }
    }

    /// Checks values that parse but make no sense; returns (field, message) with the field
    /// under `privacy.`.
    pub fn validate(&self) -> std::result::Result<(), (String, String)> {
        let field = |name: &str, message: String| (format!("privacy.{name}"), message);
        if !(self.max_grad_norm.is_finite() && self.max_grad_norm > 0.0) {
            return Err(field(
                "max_grad_norm",
                format!("must be a positive number, got {}", self.max_grad_norm),
            ));
        }
        match (self.noise_multiplier, self.target_epsilon) {
            (None, None) => {
                return Err(field(
                    "noise_multiplier",
                    "give noise_multiplier (σ) or target_epsilon (σ found for it)".into(),
                ))
            }
            (Some(_), Some(_)) if self.spent.is_empty() => {
                return Err(field(
                    "target_epsilon",
                    "give noise_multiplier or target_epsilon, not both: σ is found for the target"
                        .into(),
                ))
            }
            _ => {}
        }
        if let Some(sigma) = self.noise_multiplier {
            if !(sigma.is_finite() && (0.0..=MAX_NOISE_MULTIPLIER).contains(&sigma)) {
                return Err(field(
                    "noise_multiplier",
                    format!("must be a number from 0 to {MAX_NOISE_MULTIPLIER}, got {sigma}"),
                ));
            }
        }
        if let Some(eps) = self.target_epsilon {
            if !(eps.is_finite() && eps > 0.0) {
                return Err(field(
                    "target_epsilon",
                    format!("must be a positive number, got {eps}"),
                ));
            }
        }
        if !(self.delta > 0.0 && self.delta < 1.0) {
            return Err(field(
                "delta",
                format!("must lie in (0, 1), got {}", self.delta),
            ));
        }
        for (i, s) in self.spent.iter().enumerate() {
            let valid = s.sample_rate > 0.0
                && s.sample_rate <= 1.0
                && s.noise_multiplier.is_finite()
                && s.noise_multiplier >= 0.0;
            if !valid {
                return Err(field(
                    &format!("spent[{i}]"),
                    format!(
                        "sample_rate must lie in (0, 1] and noise_multiplier be ≥ 0, got {} and {}",
                        s.sample_rate, s.noise_multiplier
                    ),
                ));
            }
        }
        Ok(())
    }

    /// σ for training `epochs` epochs at sampling rate `q`: the one given, or the one found
    /// for the target ε (and then recorded, so that a resumed run keeps it).
    pub fn resolve_noise(&mut self, q: f64, epochs: usize) -> Result<f64> {
        if let Some(sigma) = self.noise_multiplier {
            return Ok(sigma);
        }
        let target = self.target_epsilon.ok_or_else(|| {
            Error::invalid("[privacy] gives neither noise_multiplier nor target_epsilon")
        })?;
        let steps = planned_steps(q, epochs as f64)?;
        let sigma = self.noise_for_epsilon(target, q, steps)?;
        self.noise_multiplier = Some(sigma);
        Ok(sigma)
    }

    /// Opacus's `get_noise_multiplier`: σ doubled until ε falls below `target`, then bisected
    /// until ε is within 0.01 below it; the σ returned reaches ε ≤ `target`.
    fn noise_for_epsilon(&self, target: f64, q: f64, steps: u64) -> Result<f64> {
        let epsilon = |sigma: f64| self.epsilon_of(&[(q, sigma, steps)]);
        let (mut low, mut high) = (0.0, 10.0);
        let mut eps_high = f64::INFINITY;
        while eps_high > target {
            high *= 2.0;
            if high > MAX_NOISE_MULTIPLIER {
                return Err(Error::invalid(format!(
                    "no noise multiplier up to {MAX_NOISE_MULTIPLIER} reaches target_epsilon = \
                     {target} in {steps} steps at sampling rate {q}: raise the target or train \
                     fewer epochs"
                )));
            }
            eps_high = epsilon(high)?;
        }
        while target - eps_high > EPSILON_TOLERANCE {
            let sigma = (low + high) / 2.0;
            let eps = epsilon(sigma)?;
            if eps < target {
                high = sigma;
                eps_high = eps;
            } else {
                low = sigma;
            }
        }
        Ok(high)
    }

    /// Records `steps` more steps at sampling rate `q` and noise multiplier `sigma`.
    pub fn record(&mut self, q: f64, sigma: f64, steps: u64) {
        match self.spent.last_mut() {
            Some(last) if last.sample_rate == q && last.noise_multiplier == sigma => {
                last.steps += steps
            }
            _ => self.spent.push(Stretch {
                sample_rate: q,
                noise_multiplier: sigma,
                steps,
            }),
        }
    }

    /// An error unless training on at rate `q` with `sigma` can be accounted: the PRV
    /// accountant here composes one setting only.
    pub fn check_stretch(&self, q: f64, sigma: f64) -> Result<()> {
        let other = self
            .spent
            .iter()
            .find(|s| s.sample_rate != q || s.noise_multiplier != sigma);
        match (self.accountant, other) {
            (Accountant::Prv, Some(s)) => Err(Error::invalid(format!(
                "this model was trained privately at sampling rate {} with noise multiplier {}; \
                 going on at {q} with {sigma} (another batch size or data set) cannot be \
                 accounted by the PRV accountant: keep the batch size and data, or train with \
                 accountant = \"rdp\"",
                s.sample_rate, s.noise_multiplier
            ))),
            _ => Ok(()),
        }
    }

    /// ε of the steps spent so far, for `delta`.
    pub fn epsilon(&self) -> Result<f64> {
        let stretches: Vec<(f64, f64, u64)> = self
            .spent
            .iter()
            .map(|s| (s.sample_rate, s.noise_multiplier, s.steps))
            .collect();
        self.epsilon_of(&stretches)
    }

    fn epsilon_of(&self, stretches: &[(f64, f64, u64)]) -> Result<f64> {
        match (self.accountant, stretches) {
            (_, []) => Ok(0.0),
            (Accountant::Prv, &[(q, sigma, steps)]) => prv_epsilon(q, sigma, steps, self.delta),
            (Accountant::Prv, _) => Err(Error::invalid(
                "the PRV accountant composes one sampling rate and noise multiplier only",
            )),
            (Accountant::Rdp, stretches) => rdp_epsilon_composed(stretches, self.delta),
        }
    }

    /// The guarantee as training ends with it: `Privacy: epsilon = X, delta = D` (X to two
    /// decimals), with a warning after it when batches were shuffled rather than sampled.
    pub fn guarantee_line(&self) -> Result<String> {
        let line = format!(
            "Privacy: epsilon = {:.2}, delta = {:e}",
            self.epsilon()?,
            self.delta
        );
        Ok(match self.sampling {
            Sampling::Poisson => line,
            Sampling::Shuffle => format!(
                "{line} (batches were shuffled, not Poisson-sampled: the accountant assumes \
                 Poisson sampling, so this is not a proven guarantee)"
            ),
        })
    }

    /// What a private model's summary says of it: its guarantee (or why it cannot be
    /// computed) and how it was trained; before training, what is planned.
    pub fn description(&self) -> String {
        let accountant = match self.accountant {
            Accountant::Rdp => "RDP",
            Accountant::Prv => "PRV",
        };
        let clip = self.max_grad_norm;
        if self.spent.is_empty() {
            let noise = match (self.noise_multiplier, self.target_epsilon) {
                (Some(sigma), _) => format!("noise multiplier {sigma}"),
                (None, Some(eps)) => {
                    format!("noise multiplier found for ε = {eps} at the last epoch")
                }
                (None, None) => "no noise multiplier".into(),
            };
            return format!(
                "Privacy: DP-SGD, each example's gradient clipped to norm {clip}, {noise}, δ = {:e} ({accountant} accountant); no step taken yet\n",
                self.delta
            );
        }
        let guarantee = self
            .guarantee_line()
            .unwrap_or_else(|e| format!("Privacy: {}", e.detail()));
        let steps: u64 = self.spent.iter().map(|s| s.steps).sum();
        let stretches: Vec<String> = self
            .spent
            .iter()
            .map(|s| {
                format!(
                    "sampling rate {:.5} with noise multiplier {:.4}",
                    s.sample_rate, s.noise_multiplier
                )
            })
            .collect();
        format!(
            "{guarantee}\nDP-SGD: each example's gradient clipped to norm {clip}; {steps} steps at {} ({accountant} accountant)\n",
            stretches.join(", then ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> std::result::Result<Privacy, String> {
        let p: Privacy = toml::from_str(text).map_err(|e| e.to_string())?;
        p.validate().map_err(|(f, m)| format!("{f}: {m}"))?;
        Ok(p)
    }

    #[test]
    fn the_section_reads_as_the_issue_writes_it_and_bad_values_are_named() {
        let p = parse(
            "max_grad_norm = 1.0\nnoise_multiplier = 1.1\ndelta = 1e-5\naccountant = \"prv\"",
        )
        .unwrap();
        assert_eq!(p.noise_multiplier, Some(1.1));
        assert_eq!(p.accountant, Accountant::Prv);
        assert_eq!(p.sampling, Sampling::Poisson);
        let p = parse("max_grad_norm = 1.0\ntarget_epsilon = 3.0\ndelta = 1e-5").unwrap();
        assert_eq!(
            (p.target_epsilon, p.accountant),
            (Some(3.0), Accountant::Rdp)
        );
        for (text, says) in [
            (
                "max_grad_norm = 0.0\nnoise_multiplier = 1.0\ndelta = 1e-5",
                "privacy.max_grad_norm",
            ),
            (
                "max_grad_norm = 1.0\ndelta = 1e-5",
                "privacy.noise_multiplier: give",
            ),
            (
                "max_grad_norm = 1.0\nnoise_multiplier = 1.0\ntarget_epsilon = 3.0\ndelta = 1e-5",
                "not both",
            ),
            (
                "max_grad_norm = 1.0\nnoise_multiplier = -1.0\ndelta = 1e-5",
                "privacy.noise_multiplier",
            ),
            (
                "max_grad_norm = 1.0\nnoise_multiplier = nan\ndelta = 1e-5",
                "privacy.noise_multiplier",
            ),
            (
                "max_grad_norm = 1.0\ntarget_epsilon = 0.0\ndelta = 1e-5",
                "privacy.target_epsilon",
            ),
            (
                "max_grad_norm = 1.0\nnoise_multiplier = 1.0\ndelta = 1.0",
                "privacy.delta",
            ),
            (
                "max_grad_norm = 1.0\nnoise_multiplier = 1.0\ndelta = 1e-5\naccountant = \"gdp\"",
                "unknown variant",
            ),
            (
                "max_grad_norm = 1.0\nnoise_multiplier = 1.0\ndelta = 1e-5\nepsilon = 1.0",
                "unknown field",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn sigma_for_a_target_epsilon_is_opacus_s() {
        // Opacus 1.6.0: get_noise_multiplier(target_epsilon=2.503, delta=1e-5,
        // sample_rate=0.004, epochs=60, accountant="rdp") finds σ within its 0.01 tolerance
        // of 1.1, the σ that gives 2.503 (see the fixture's first cases).
        let mut p = Privacy::with_target_epsilon(1.0, 2.503, 1e-5);
        let sigma = p.resolve_noise(0.004, 60).unwrap();
        assert!((sigma - 1.1).abs() < 0.01, "{sigma}");
        assert_eq!(p.noise_multiplier, Some(sigma));
        let steps = planned_steps(0.004, 60.0).unwrap();
        let eps = super::super::rdp_epsilon(0.004, sigma, steps, 1e-5).unwrap();
        assert!(eps <= 2.503 && eps > 2.503 - EPSILON_TOLERANCE, "{eps}");
        // Once found, σ is kept.
        assert_eq!(p.resolve_noise(0.5, 1).unwrap(), sigma);
        // PRV finds a smaller σ for the same ε (it is the tighter accountant).
        let mut prv = Privacy::with_target_epsilon(1.0, 2.503, 1e-5);
        prv.accountant = Accountant::Prv;
        let sigma_prv = prv.resolve_noise(0.004, 60).unwrap();
        assert!(sigma_prv < sigma - 0.03, "{sigma_prv} {sigma}");
        // An unreachable target is an error, not a search for ever.
        let mut tiny = Privacy::with_target_epsilon(1.0, 1e-9, 1e-5);
        let err = tiny.resolve_noise(1.0, 100_000).unwrap_err().to_string();
        assert!(err.contains("no noise multiplier"), "{err}");
    }

    #[test]
    fn the_ledger_accounts_resumed_runs_as_one() {
        let mut p = Privacy::new(1.0, 1.1, 1e-5);
        assert_eq!(p.epsilon().unwrap(), 0.0);
        p.record(0.004, 1.1, 250 * 30);
        p.record(0.004, 1.1, 250 * 30);
        assert_eq!(p.spent.len(), 1);
        assert!((p.epsilon().unwrap() - 2.503).abs() < 0.0005);
        assert_eq!(
            p.guarantee_line().unwrap(),
            "Privacy: epsilon = 2.50, delta = 1e-5"
        );
        // A stretch at another rate is composed (RDP), or refused before training (PRV).
        p.check_stretch(0.008, 1.1).unwrap();
        p.record(0.008, 1.1, 10);
        assert_eq!(p.spent.len(), 2);
        assert!(p.epsilon().unwrap() > 2.503);
        p.accountant = Accountant::Prv;
        let err = p.check_stretch(0.004, 1.1).unwrap_err().to_string();
        assert!(err.contains("PRV") && err.contains("rdp"), "{err}");
        p.sampling = Sampling::Shuffle;
        p.accountant = Accountant::Rdp;
        assert!(p
            .guarantee_line()
            .unwrap()
            .contains("not a proven guarantee"));
    }
}
