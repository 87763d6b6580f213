//! Gauss–Legendre quadrature on [0, 1]: the points at which Integrated Gradients evaluates
//! the gradient along its path, and their weights (Captum's default `gausslegendre`).

/// `n` Gauss–Legendre nodes and weights on [0, 1]: ∫₀¹ f ≈ Σ wᵢ f(xᵢ), exact for polynomials
/// of degree below 2n. Nodes are the roots of the Legendre polynomial Pₙ, found by Newton's
/// method from Tricomi's estimate, in increasing order.
pub fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut nodes = vec![0.0; n];
    let mut weights = vec![0.0; n];
    for i in 0..n.div_ceil(2) {
        // The i-th largest root of Pₙ on [-1, 1].
        let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut derivative = 0.0;
        for _ in 0..100 {
            let (p, dp) = legendre(n, x);
            derivative = dp;
            let step = p / dp;
            x -= step;
            if step.abs() < 1e-15 {
                break;
            }
        }
        let (_, dp) = legendre(n, x);
        if dp != 0.0 {
            derivative = dp;
        }
        let w = 2.0 / ((1.0 - x * x) * derivative * derivative);
        // Map [-1, 1] to [0, 1]: x ↦ (x + 1) / 2, weights halved.
        nodes[n - 1 - i] = (1.0 + x) / 2.0;
        nodes[i] = (1.0 - x) / 2.0;
        weights[n - 1 - i] = w / 2.0;
        weights[i] = w / 2.0;
    }
    (nodes, weights)
}

/// Pₙ(x) and Pₙ'(x) by the three-term recurrence.
fn legendre(n: usize, x: f64) -> (f64, f64) {
    let (mut p0, mut p1) = (1.0, x);
    if n == 0 {
        return (1.0, 0.0);
    }
    for k in 2..=n {
        let k = k as f64;
        let p2 = ((2.0 * k - 1.0) * x * p1 - (k - 1.0) * p0) / k;
        p0 = p1;
        p1 = p2;
    }
    let dp = n as f64 * (x * p1 - p0) / (x * x - 1.0);
    (p1, dp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_and_weights_match_published_values_and_integrate_polynomials_exactly() {
        // Abramowitz & Stegun 25.4.30, n = 3 on [-1, 1]: ±√(3/5) with weight 5/9, 0 with 8/9.
        let (x, w) = gauss_legendre(3);
        let r = (0.6f64).sqrt();
        for (a, b) in x.iter().zip([(1.0 - r) / 2.0, 0.5, (1.0 + r) / 2.0]) {
            assert!((a - b).abs() < 1e-14, "{x:?}");
        }
        for (a, b) in w.iter().zip([5.0 / 18.0, 8.0 / 18.0, 5.0 / 18.0]) {
            assert!((a - b).abs() < 1e-14, "{w:?}");
        }
        for n in [1, 2, 5, 20, 50, 128] {
            let (x, w) = gauss_legendre(n);
            assert!(x.windows(2).all(|p| p[0] < p[1]) && x[0] > 0.0 && x[n - 1] < 1.0);
            assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12, "n={n}");
            // ∫₀¹ x^k = 1/(k+1), exactly for k < 2n.
            for k in 0..(2 * n).min(40) {
                let q: f64 = x.iter().zip(&w).map(|(x, w)| w * x.powi(k as i32)).sum();
                assert!((q - 1.0 / (k as f64 + 1.0)).abs() < 1e-12, "n={n} k={k}");
            }
        }
    }
}
