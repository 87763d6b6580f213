//! The RDP accountant (Mironov 2017; Mironov, Talwar & Zhang 2019, "Rényi Differential Privacy
//! of the Sampled Gaussian Mechanism"): the Rényi divergence of order α between the
//! subsampled Gaussian's outputs on neighbouring data sets, log A_α / (α − 1) per step, summed
//! over the steps, then turned into (ε, δ) by the conversion of Balle et al. 2020 (Theorem 21)
//! at the best order — Opacus's RDP accountant, order grid included.

use super::{check_noise_and_delta, check_rate};
use crate::error::Result;

/// Opacus's default orders: 1.1, 1.2, …, 10.9, then 12, 13, …, 63.
pub const RDP_ORDERS: [f64; 151] = {
    let mut orders = [0.0; 151];
    let mut i = 0;
    while i < 99 {
        orders[i] = 1.0 + (i + 1) as f64 / 10.0;
        i += 1;
    }
    while i < 151 {
        orders[i] = (i - 99 + 12) as f64;
        i += 1;
    }
    orders
};

/// ε of `steps` steps of the subsampled Gaussian mechanism at sampling rate `q` and noise
/// multiplier `sigma`, for `delta`, minimised over [`RDP_ORDERS`]. Infinite without noise, 0
/// without steps.
pub fn rdp_epsilon(q: f64, sigma: f64, steps: u64, delta: f64) -> Result<f64> {
    rdp_epsilon_composed(&[(q, sigma, steps)], delta)
}

/// ε of several stretches of training, each `(q, sigma, steps)` (a run resumed at another
/// batch size): their Rényi DP summed order by order (RDP composes additively), then
/// converted to (ε, δ) as [`rdp_epsilon`] converts one.
pub fn rdp_epsilon_composed(stretches: &[(f64, f64, u64)], delta: f64) -> Result<f64> {
    for &(q, sigma, _) in stretches {
        check_rate(q)?;
        check_noise_and_delta(sigma, delta)?;
    }
    if stretches.iter().all(|s| s.2 == 0) {
        // No step has read the data (the conversion alone would still charge a little).
        return Ok(0.0);
    }
    let best = RDP_ORDERS
        .iter()
        .map(|&alpha| {
            let rdp: f64 = stretches
                .iter()
                .filter(|s| s.2 > 0)
                .map(|&(q, sigma, steps)| rdp_per_step(q, sigma, alpha) * steps as f64)
                .sum();
            rdp - (delta.ln() + alpha.ln()) / (alpha - 1.0) + ((alpha - 1.0) / alpha).ln()
        })
        .filter(|eps| !eps.is_nan())
        .fold(f64::INFINITY, f64::min);
    Ok(best.max(0.0))
}

/// The RDP of order `alpha` of one step.
fn rdp_per_step(q: f64, sigma: f64, alpha: f64) -> f64 {
    if sigma == 0.0 {
        return f64::INFINITY;
    }
    if q == 1.0 {
        return alpha / (2.0 * sigma * sigma);
    }
    let log_a = match alpha.fract() == 0.0 {
        true => log_a_integer(q, sigma, alpha as u64),
        false => log_a_fractional(q, sigma, alpha),
    };
    log_a / (alpha - 1.0)
}

/// log A_α for an integer α: the binomial expansion, term by term in log space.
fn log_a_integer(q: f64, sigma: f64, alpha: u64) -> f64 {
    let a = alpha as f64;
    (0..=alpha).fold(f64::NEG_INFINITY, |log_a, i| {
        let i = i as f64;
        let log_coef = log_binomial(a, i).0 + i * q.ln() + (a - i) * (1.0 - q).ln();
        log_add(log_a, log_coef + (i * i - i) / (2.0 * sigma * sigma))
    })
}

/// log A_α for a fractional α: the two halves of the integral, split at z₀, each a series
/// summed until its terms fall below e⁻³⁰.
fn log_a_fractional(q: f64, sigma: f64, alpha: f64) -> f64 {
    let (mut log_a0, mut log_a1) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    let z0 = sigma * sigma * (1.0 / q - 1.0).ln() + 0.5;
    let scale = std::f64::consts::SQRT_2 * sigma;
    // The terms shrink like a Gaussian's tail; a bound on the loop all the same.
    for i in 0..100_000 {
        let i = i as f64;
        let (log_coef, positive) = log_binomial(alpha, i);
        let j = alpha - i;
        let log_t0 = log_coef + i * q.ln() + j * (1.0 - q).ln();
        let log_t1 = log_coef + j * q.ln() + i * (1.0 - q).ln();
        let log_e0 = 0.5f64.ln() + log_erfc((i - z0) / scale);
        let log_e1 = 0.5f64.ln() + log_erfc((z0 - j) / scale);
        let log_s0 = log_t0 + (i * i - i) / (2.0 * sigma * sigma) + log_e0;
        let log_s1 = log_t1 + (j * j - j) / (2.0 * sigma * sigma) + log_e1;
        if positive {
            log_a0 = log_add(log_a0, log_s0);
            log_a1 = log_add(log_a1, log_s1);
        } else {
            log_a0 = log_sub(log_a0, log_s0);
            log_a1 = log_sub(log_a1, log_s1);
        }
        if log_s0.max(log_s1) < -30.0 {
            break;
        }
    }
    log_add(log_a0, log_a1)
}

/// log |C(n, k)| and whether C(n, k) is positive, for real n > −1 and integer k ≥ 0 (the
/// generalised binomial coefficient, through log-gamma).
fn log_binomial(n: f64, k: f64) -> (f64, bool) {
    if k == 0.0 {
        return (0.0, true);
    }
    // An integer n below k: the coefficient is 0.
    if n.fract() == 0.0 && k > n {
        return (f64::NEG_INFINITY, true);
    }
    let (a, _) = libm::lgamma_r(n + 1.0);
    let (b, _) = libm::lgamma_r(k + 1.0);
    let (c, sign) = libm::lgamma_r(n - k + 1.0);
    (a - b - c, sign > 0)
}

/// log(eˣ + eʸ) without overflow.
fn log_add(x: f64, y: f64) -> f64 {
    let (low, high) = if x < y { (x, y) } else { (y, x) };
    if low == f64::NEG_INFINITY {
        return high;
    }
    (low - high).exp().ln_1p() + high
}

/// log(eˣ − eʸ) for x ≥ y (NaN below, which the caller's order is then left out for).
fn log_sub(x: f64, y: f64) -> f64 {
    if x < y {
        return f64::NAN;
    }
    if y == f64::NEG_INFINITY {
        return x;
    }
    if x == y {
        return f64::NEG_INFINITY;
    }
    let d = (x - y).exp_m1();
    match d.is_finite() {
        true => d.ln() + y,
        false => x,
    }
}

/// log erfc(x), accurate far into the tail (where erfc underflows): there, the asymptotic
/// series of erfc(x)·x·√π·e^{x²}.
fn log_erfc(x: f64) -> f64 {
    if x < 20.0 {
        return libm::erfc(x).ln();
    }
    let r = 1.0 / (2.0 * x * x);
    // 1 − r + 3r² − 15r³ + 105r⁴ − 945r⁵: at x ≥ 20 the next term is below 1e-14.
    let series = 1.0 - r * (1.0 - 3.0 * r * (1.0 - 5.0 * r * (1.0 - 7.0 * r * (1.0 - 9.0 * r))));
    -x * x - x.ln() - 0.5 * std::f64::consts::PI.ln() + series.ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privacy::planned_steps;
    use crate::privacy::tests::fixture;

    #[test]
    fn rdp_epsilon_equals_opacus_on_its_fixture() {
        for c in fixture().cases {
            assert_eq!(planned_steps(c.q, c.epochs).unwrap(), c.steps);
            let eps = rdp_epsilon(c.q, c.sigma, c.steps, c.delta).unwrap();
            let relative = (eps - c.rdp).abs() / c.rdp;
            assert!(
                relative < 1e-6,
                "q {} σ {} steps {} δ {}: {eps} against Opacus's {}",
                c.q,
                c.sigma,
                c.steps,
                c.delta,
                c.rdp
            );
        }
    }

    #[test]
    fn stretches_compose_as_one_run_and_more_steps_cost_more() {
        let whole = rdp_epsilon(0.01, 1.0, 3000, 1e-5).unwrap();
        let parts = rdp_epsilon_composed(&[(0.01, 1.0, 1000), (0.01, 1.0, 2000)], 1e-5).unwrap();
        assert!((whole - parts).abs() < 1e-12, "{whole} {parts}");
        // A stretch at a higher rate or lower noise spends more than the same steps did.
        let mixed = rdp_epsilon_composed(&[(0.01, 1.0, 1000), (0.02, 0.8, 2000)], 1e-5).unwrap();
        assert!(mixed > whole, "{mixed} {whole}");
        assert_eq!(rdp_epsilon_composed(&[(0.01, 1.0, 0)], 1e-5).unwrap(), 0.0);
        assert!(rdp_epsilon_composed(&[(0.01, 1.0, 5), (1.5, 1.0, 5)], 1e-5).is_err());
    }

    #[test]
    fn opacus_mnist_example_settings_give_its_published_epsilons() {
        // The figures: Opacus 1.6.0's RDP ε for q = 0.004, δ = 1e-5.
        for (sigma, epochs, expected) in
            [(1.3, 15.0, 0.922), (1.1, 60.0, 2.503), (0.7, 45.0, 6.093)]
        {
            let steps = planned_steps(0.004, epochs).unwrap();
            let eps = rdp_epsilon(0.004, sigma, steps, 1e-5).unwrap();
            assert!((eps - expected).abs() < 5e-4, "σ {sigma}: {eps}");
        }
    }

    #[test]
    fn more_noise_fewer_steps_or_a_larger_delta_spend_less() {
        let eps = |q, sigma, steps, delta| rdp_epsilon(q, sigma, steps, delta).unwrap();
        let base = eps(0.01, 1.0, 1000, 1e-5);
        assert!(eps(0.01, 1.5, 1000, 1e-5) < base);
        assert!(eps(0.01, 1.0, 500, 1e-5) < base);
        assert!(eps(0.01, 1.0, 1000, 1e-3) < base);
        assert!(eps(0.005, 1.0, 1000, 1e-5) < base);
        assert_eq!(eps(0.01, 1.0, 0, 1e-5), 0.0);
        assert_eq!(eps(0.01, 0.0, 10, 1e-5), f64::INFINITY);
    }

    #[test]
    fn the_full_batch_gaussian_has_its_closed_form() {
        // q = 1: RDP α/(2σ²) per step; the conversion at the best order of the grid.
        let (sigma, steps, delta) = (2.0f64, 10u64, 1e-5f64);
        let expected = RDP_ORDERS
            .iter()
            .map(|&a| {
                a / (2.0 * sigma * sigma) * steps as f64 - (delta.ln() + a.ln()) / (a - 1.0)
                    + ((a - 1.0) / a).ln()
            })
            .fold(f64::INFINITY, f64::min);
        assert_eq!(rdp_epsilon(1.0, sigma, steps, delta).unwrap(), expected);
    }

    #[test]
    fn the_tail_of_erfc_joins_its_direct_values() {
        for x in [-3.0, 0.0, 1.0, 5.0, 19.9] {
            assert!((log_erfc(x) - libm::erfc(x).ln()).abs() < 1e-12, "{x}");
        }
        // Both sides of the switch agree, and far out it keeps falling like −x².
        let (below, above) = (libm::erfc(19.999_999).ln(), log_erfc(20.0));
        assert!((below - above).abs() < 1e-4, "{below} {above}");
        assert!(
            (log_erfc(40.0) + 1600.0 + 40f64.ln() + 0.5 * std::f64::consts::PI.ln()).abs() < 1e-3
        );
    }

    #[test]
    fn bad_settings_are_named() {
        for (q, sigma, delta, word) in [
            (0.0, 1.0, 1e-5, "sampling rate"),
            (1.5, 1.0, 1e-5, "sampling rate"),
            (f64::NAN, 1.0, 1e-5, "sampling rate"),
            (0.01, -1.0, 1e-5, "noise multiplier"),
            (0.01, f64::INFINITY, 1e-5, "noise multiplier"),
            (0.01, 1.0, 0.0, "delta"),
            (0.01, 1.0, 1.0, "delta"),
        ] {
            let e = rdp_epsilon(q, sigma, 10, delta).unwrap_err().to_string();
            assert!(e.contains(word), "{e}");
        }
        assert!(planned_steps(0.01, -1.0).is_err());
        assert!(planned_steps(1e-300, 1e300).is_err());
    }
}
