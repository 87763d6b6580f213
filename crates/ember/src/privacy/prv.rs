//! The PRV accountant (Gopi, Lee & Wutschitz 2021, "Numerical Composition of Differential
//! Privacy"): the privacy loss of one step of the subsampled Gaussian as a random variable,
//! discretised on a fine grid, composed over the steps by FFT, and read back as the ε at which
//! the composed loss exceeds δ — Opacus's PRV accountant: its grid (mesh from `eps_error`,
//! width from the RDP tail bound), its mean-preserving discretisation, and the upper bound it
//! reports (the estimate plus `eps_error`).

use rustfft::num_complex::Complex;
use rustfft::FftPlanner;

use super::{check_rate, rdp::rdp_epsilon};
use crate::error::{Error, Result};

/// The accuracy Opacus's PRV accountant works to by default: ε within this of the truth.
const EPS_ERROR: f64 = 0.01;

/// Grid points beyond which the accountant refuses: the grid's five buffers take 48 bytes a
/// point, so about 800 MB at most (the fixture's largest case, 500,000 steps at q = 1e-4,
/// needs 2.6 million points).
const MAX_GRID: usize = 1 << 24;

/// ε of `steps` steps of the subsampled Gaussian mechanism at sampling rate `q` and noise
/// multiplier `sigma`, for `delta`: Opacus's upper bound, with `eps_error` 0.01 and a `delta`
/// error of δ/1000. Infinite without noise, 0 without steps.
pub fn prv_epsilon(q: f64, sigma: f64, steps: u64, delta: f64) -> Result<f64> {
    check_rate(q)?;
    super::check_noise_and_delta(sigma, delta)?;
    if steps == 0 {
        return Ok(0.0);
    }
    if sigma == 0.0 {
        return Ok(f64::INFINITY);
    }
    let delta_error = delta / 1000.0;
    let prv = Prv { q, sigma };
    // The grid: wide enough that the composed loss's mass beyond it is below the δ error
    // (bounded through RDP), fine enough for `EPS_ERROR`.
    let n = steps as f64;
    let width = rdp_epsilon(q, sigma, steps, delta_error / 4.0)?
        .max(rdp_epsilon(q, sigma, 1, delta_error / (8.0 * n))?)
        .max(EPS_ERROR)
        + 3.0;
    let mesh = EPS_ERROR / (n * (12.0 / delta_error).ln() / 2.0).sqrt();
    let grid = Grid::aligned(-width, width, mesh)?;
    let (pmf, shift) = discretise(&prv, &grid)?;
    let composed = compose(&pmf, steps);
    // The composed grid: each step's mean shift added `steps` times.
    let t_min = grid.t_min + shift * n;
    let dt = grid.dt();
    let estimate = epsilon_at(&composed, t_min, dt, delta - delta_error)?;
    Ok(estimate + EPS_ERROR)
}

/// The privacy loss of one step of the Poisson-subsampled Gaussian (Gopi et al., B.4).
struct Prv {
    q: f64,
    sigma: f64,
}

impl Prv {
    /// P(loss ≤ t).
    fn cdf(&self, t: f64) -> f64 {
        let (q, s) = (self.q, self.sigma);
        if t <= (1.0 - q).ln() {
            return 0.0;
        }
        let z = ((t.exp() + q - 1.0) / q).ln();
        let scale = 2.0 * std::f64::consts::SQRT_2 * s;
        -q * libm::erfc((2.0 * z * s * s - 1.0) / scale) / 2.0
            - (1.0 - q) * libm::erfc((2.0 * z * s * s + 1.0) / scale) / 2.0
            + 1.0
    }
}

/// An evenly spaced grid of `size` (even) points from `t_min` to `t_max`.
struct Grid {
    t_min: f64,
    t_max: f64,
    size: usize,
}

impl Grid {
    /// The grid from `t_min` to `t_max` (rounded out to multiples of `dt`), an even number of
    /// points.
    fn aligned(t_min: f64, t_max: f64, dt: f64) -> Result<Grid> {
        let t_min = (t_min / dt).floor() * dt;
        let mut t_max = (t_max / dt).ceil() * dt;
        let points = ((t_max - t_min) / dt).round() + 1.0;
        if !(points.is_finite() && points <= MAX_GRID as f64) {
            return Err(Error::invalid(format!(
                "the PRV accountant would need a grid of {points:e} points for these settings \
                 (at most {MAX_GRID:e}); use the RDP accountant"
            )));
        }
        let mut size = points as usize;
        if !size.is_multiple_of(2) {
            size += 1;
            t_max += dt;
        }
        Ok(Grid { t_min, t_max, size })
    }

    fn dt(&self) -> f64 {
        (self.t_max - self.t_min) / (self.size - 1) as f64
    }

    /// The i-th point, as numpy's linspace places it.
    fn t(&self, i: usize) -> f64 {
        match i + 1 == self.size {
            true => self.t_max,
            false => self.t_min + i as f64 * self.dt(),
        }
    }
}

/// The loss truncated to the grid's span and discretised: each point's probability (of the
/// interval of width dt around it), and the shift that gives the discrete loss the truncated
/// loss's mean.
fn discretise(prv: &Prv, grid: &Grid) -> Result<(Vec<f64>, f64)> {
    let (c_min, c_max) = (prv.cdf(grid.t_min), prv.cdf(grid.t_max));
    let mass = c_max - c_min;
    let cdf = |t: f64| {
        if t < grid.t_min {
            0.0
        } else if t < grid.t_max {
            (prv.cdf(t) - c_min) / mass
        } else {
            1.0
        }
    };
    let dt = grid.dt();
    let pmf: Vec<f64> = (0..grid.size)
        .map(|i| {
            let t = grid.t(i);
            cdf(t + dt / 2.0) - cdf(t - dt / 2.0)
        })
        .collect();
    let mean_discrete: f64 = pmf.iter().enumerate().map(|(i, p)| grid.t(i) * p).sum();
    // E[T] = Σ over pieces [b·F(b) − a·F(a) − ∫ₐᵇ F], on Opacus's pieces (log-spaced about 0).
    let lower = grid.t_min.abs().log10().trunc() as i32;
    let upper = grid.t_max.log10().trunc() as i32;
    let logspace = |from: i32, to: i32| {
        (0..10).map(move |k| 10f64.powf(from as f64 + (to - from) as f64 * k as f64 / 9.0))
    };
    let mut points = vec![grid.t_min];
    points.extend(logspace(lower, -5).map(|x| -x));
    points.push(0.0);
    points.extend(logspace(-5, upper));
    points.push(grid.t_max);
    let mean: f64 = points
        .windows(2)
        .map(|w| {
            let (a, b) = (w[0], w[1]);
            b * cdf(b) - a * cdf(a) - integrate(&cdf, a, b)
        })
        .sum();
    let shift = mean - mean_discrete;
    if shift.abs() >= dt / 2.0 {
        return Err(Error::invalid(format!(
            "the PRV accountant's discretisation is off by {shift:e} (grid step {dt:e}): \
             use the RDP accountant for these settings"
        )));
    }
    Ok((pmf, shift))
}

/// ∫ₐᵇ f by adaptive Gauss–Kronrod (7–15 points), to about 1e-12.
fn integrate(f: &dyn Fn(f64) -> f64, a: f64, b: f64) -> f64 {
    const NODES: [f64; 8] = [
        0.991_455_371_120_812_6,
        0.949_107_912_342_758_5,
        0.864_864_423_359_769_1,
        0.741_531_185_599_394_4,
        0.586_087_235_467_691_1,
        0.405_845_151_377_397_2,
        0.207_784_955_007_898_5,
        0.0,
    ];
    const KRONROD: [f64; 8] = [
        0.022_935_322_010_529_22,
        0.063_092_092_629_978_55,
        0.104_790_010_322_250_2,
        0.140_653_259_715_525_9,
        0.169_004_726_639_267_9,
        0.190_350_578_064_785_4,
        0.204_432_940_075_298_9,
        0.209_482_141_084_727_8,
    ];
    const GAUSS: [f64; 4] = [
        0.129_484_966_168_869_7,
        0.279_705_391_489_276_7,
        0.381_830_050_505_118_9,
        0.417_959_183_673_469_4,
    ];
    fn piece(f: &dyn Fn(f64) -> f64, a: f64, b: f64, depth: u32) -> f64 {
        let (mid, half) = ((a + b) / 2.0, (b - a) / 2.0);
        let (mut kronrod, mut gauss) = (0.0, 0.0);
        for (k, &x) in NODES.iter().enumerate() {
            let values = match x == 0.0 {
                true => f(mid),
                false => f(mid - half * x) + f(mid + half * x),
            };
            kronrod += KRONROD[k] * values;
            if k % 2 == 1 {
                gauss += GAUSS[k / 2] * values;
            }
        }
        let (kronrod, gauss) = (kronrod * half, gauss * half);
        if depth >= 40 || (kronrod - gauss).abs() <= 1e-13 * kronrod.abs().max(1e-3) {
            return kronrod;
        }
        piece(f, a, mid, depth + 1) + piece(f, mid, b, depth + 1)
    }
    piece(f, a, b, 0)
}

/// The distribution of the sum of `steps` independent copies of `pmf`, on a grid of the same
/// size (circularly, by FFT, then rotated into place as Opacus does).
fn compose(pmf: &[f64], steps: u64) -> Vec<f64> {
    let size = pmf.len();
    let mut planner = FftPlanner::new();
    let mut spectrum: Vec<Complex<f64>> = pmf.iter().map(|&p| Complex::new(p, 0.0)).collect();
    planner.plan_fft_forward(size).process(&mut spectrum);
    for c in &mut spectrum {
        *c = power(*c, steps);
    }
    planner.plan_fft_inverse(size).process(&mut spectrum);
    let mut rotate = (steps - 1) as usize % size;
    if steps.is_multiple_of(2) {
        rotate = (rotate + size / 2) % size;
    }
    let mut composed = vec![0.0; size];
    for (i, c) in spectrum.iter().enumerate() {
        composed[(i + rotate) % size] = c.re / size as f64;
    }
    composed
}

/// z to the power n, in polar form.
fn power(z: Complex<f64>, n: u64) -> Complex<f64> {
    let (r, theta) = z.to_polar();
    Complex::from_polar(r.powf(n as f64), theta * n as f64)
}

/// The smallest ε on the grid (points `t_min + i·dt`) at which the composed loss `pmf`
/// gives at most `delta`: δ(ε) = Σ_{t ≥ ε} p(t)·(1 − e^{ε − t}).
fn epsilon_at(pmf: &[f64], t_min: f64, dt: f64, delta: f64) -> Result<f64> {
    let size = pmf.len();
    let t = |i: usize| t_min + i as f64 * dt;
    // Tail sums of p and of p·e^{−t}, from the right.
    let (mut d1, mut d2) = (vec![0.0; size], vec![0.0; size]);
    let (mut s1, mut s2) = (0.0, 0.0);
    for i in (0..size).rev() {
        s1 += pmf[i];
        s2 += pmf[i] * (-t(i)).exp();
        (d1[i], d2[i]) = (s1, s2);
    }
    // The first point whose −δ(t) = e^t·d2 − d1 reaches −delta.
    let i = (0..size)
        .find(|&i| t(i).exp() * d2[i] - d1[i] >= -delta)
        .unwrap_or(size);
    if i == 0 || i == size {
        return Err(Error::invalid(
            "the PRV accountant's grid does not reach this delta: use the RDP accountant",
        ));
    }
    Ok(((d1[i] - delta) / d2[i]).ln())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privacy::tests::fixture;

    #[test]
    fn prv_epsilon_equals_opacus_on_its_fixture() {
        // To 3 significant digits (within 2e-6 on all but one setting): the exception,
        // 7e-4 at q = 1e-4 over 500,000 steps, is Opacus's, whose quadrature of a step's mean
        // loss works to 1.5e-8, about that mean itself, and 500,000 steps add the error up.
        for c in fixture().cases {
            let eps = prv_epsilon(c.q, c.sigma, c.steps, c.delta).unwrap();
            let relative = (eps - c.prv).abs() / c.prv;
            assert!(
                relative < 1e-3,
                "q {} σ {} steps {} δ {}: {eps} against Opacus's {}",
                c.q,
                c.sigma,
                c.steps,
                c.delta,
                c.prv
            );
        }
    }

    #[test]
    fn opacus_mnist_example_settings_give_its_published_prv_epsilons() {
        for (sigma, epochs, expected) in
            [(1.3, 15.0, 0.844), (1.1, 60.0, 2.306), (0.7, 45.0, 5.442)]
        {
            let steps = crate::privacy::planned_steps(0.004, epochs).unwrap();
            let eps = prv_epsilon(0.004, sigma, steps, 1e-5).unwrap();
            assert!((eps - expected).abs() < 5e-4, "σ {sigma}: {eps}");
        }
    }

    #[test]
    fn prv_is_tighter_than_rdp_and_bounded_cases_are_exact() {
        let (q, sigma, steps, delta) = (0.01, 1.0, 1000, 1e-5);
        let prv = prv_epsilon(q, sigma, steps, delta).unwrap();
        assert!(prv < rdp_epsilon(q, sigma, steps, delta).unwrap());
        assert_eq!(prv_epsilon(q, sigma, 0, delta).unwrap(), 0.0);
        assert_eq!(prv_epsilon(q, 0.0, 10, delta).unwrap(), f64::INFINITY);
        assert!(prv_epsilon(q, sigma, 10, 0.0).is_err());
        assert!(prv_epsilon(0.0, sigma, 10, delta).is_err());
        // A grid too large for memory is refused, not allocated.
        let e = prv_epsilon(1e-6, 0.5, u64::MAX / 2, delta)
            .unwrap_err()
            .to_string();
        assert!(e.contains("grid") || e.contains("RDP"), "{e}");
    }

    #[test]
    fn a_power_of_a_complex_number_in_polar_form() {
        let z = Complex::new(0.6, -0.7);
        let mut product = Complex::new(1.0, 0.0);
        for _ in 0..13 {
            product *= z;
        }
        assert!((power(z, 13) - product).norm() < 1e-14);
    }
}
