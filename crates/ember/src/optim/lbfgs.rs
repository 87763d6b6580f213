//! L-BFGS (Nocedal & Wright, algorithm 7.4) with a backtracking Armijo line search, for
//! smooth full-batch objectives: a regularized logistic regression converges in tens of
//! iterations to the exact optimum that minibatch optimizers only hover around.

use std::collections::VecDeque;

use crate::tensor::factorization::dot_f64 as dot;

/// Settings of the minimizer, with commented defaults.
#[derive(Clone, Debug)]
pub struct Lbfgs {
    /// Correction pairs kept (10).
    pub memory: usize,
    /// Iterations at most (500).
    pub max_iterations: usize,
    /// Converged when the largest gradient component is below this (1e-7)…
    pub gradient_tolerance: f64,
    /// …or when an iteration lowers the objective by less than this fraction of it (1e-12).
    pub value_tolerance: f64,
}

impl Default for Lbfgs {
    fn default() -> Self {
        Lbfgs {
            memory: 10,
            max_iterations: 500,
            gradient_tolerance: 1e-7,
            value_tolerance: 1e-12,
        }
    }
}

/// Where the minimizer stopped.
#[derive(Clone, Debug)]
pub struct Minimum {
    pub x: Vec<f64>,
    pub value: f64,
    pub iterations: usize,
    /// False when it ran out of iterations or the line search found no lower point.
    pub converged: bool,
}

impl Lbfgs {
    /// Minimizes `objective`, which returns f(x) and writes ∇f(x) into its second argument,
    /// starting from `x`.
    pub fn minimize(
        &self,
        mut x: Vec<f64>,
        mut objective: impl FnMut(&[f64], &mut [f64]) -> f64,
    ) -> Minimum {
        let n = x.len();
        let mut gradient = vec![0.0; n];
        let mut value = objective(&x, &mut gradient);
        // (s, y, 1 / yᵀs), oldest first.
        let mut pairs: VecDeque<(Vec<f64>, Vec<f64>, f64)> = VecDeque::new();
        let (mut trial, mut trial_gradient) = (vec![0.0; n], vec![0.0; n]);
        for iteration in 0..self.max_iterations {
            let largest = gradient.iter().fold(0.0f64, |m, g| m.max(g.abs()));
            if largest < self.gradient_tolerance {
                return self.done(x, value, iteration, true);
            }
            let mut direction = self.direction(&gradient, &pairs);
            let mut slope = dot(&gradient, &direction);
            if slope >= 0.0 {
                // Not a descent direction (curvature information gone stale): restart.
                pairs.clear();
                direction = gradient.iter().map(|g| -g).collect();
                slope = dot(&gradient, &direction);
            }
            // The first step has no curvature to scale it: make it of unit length.
            let mut step = if pairs.is_empty() {
                1.0 / dot(&direction, &direction).sqrt().max(1e-12)
            } else {
                1.0
            };
            let mut accepted = None;
            for _ in 0..60 {
                for ((t, xi), di) in trial.iter_mut().zip(&x).zip(&direction) {
                    *t = xi + step * di;
                }
                let v = objective(&trial, &mut trial_gradient);
                if v.is_finite() && v <= value + 1e-4 * step * slope {
                    accepted = Some(v);
                    break;
                }
                step *= 0.5;
            }
            let Some(new_value) = accepted else {
                return self.done(x, value, iteration, false);
            };
            let s: Vec<f64> = trial.iter().zip(&x).map(|(t, xi)| t - xi).collect();
            let y: Vec<f64> = trial_gradient
                .iter()
                .zip(&gradient)
                .map(|(a, b)| a - b)
                .collect();
            let sy = dot(&s, &y);
            // Keep only pairs of positive curvature, so the implied Hessian stays positive.
            if sy > 1e-12 * dot(&y, &y).max(1e-300) {
                if pairs.len() == self.memory {
                    pairs.pop_front();
                }
                pairs.push_back((s, y, 1.0 / sy));
            }
            std::mem::swap(&mut x, &mut trial);
            std::mem::swap(&mut gradient, &mut trial_gradient);
            let reduction = value - new_value;
            value = new_value;
            if reduction <= self.value_tolerance * value.abs().max(1e-12) {
                return self.done(x, value, iteration + 1, true);
            }
        }
        self.done(x, value, self.max_iterations, false)
    }

    /// -H·g by the two-loop recursion over the stored pairs.
    fn direction(&self, gradient: &[f64], pairs: &VecDeque<(Vec<f64>, Vec<f64>, f64)>) -> Vec<f64> {
        let mut q = gradient.to_vec();
        let mut alphas = Vec::with_capacity(pairs.len());
        for (s, y, rho) in pairs.iter().rev() {
            let alpha = rho * dot(s, &q);
            q.iter_mut().zip(y).for_each(|(qi, yi)| *qi -= alpha * yi);
            alphas.push(alpha);
        }
        if let Some((s, y, _)) = pairs.back() {
            let gamma = dot(s, y) / dot(y, y).max(1e-300);
            q.iter_mut().for_each(|qi| *qi *= gamma);
        }
        for ((s, y, rho), alpha) in pairs.iter().zip(alphas.iter().rev()) {
            let beta = rho * dot(y, &q);
            q.iter_mut()
                .zip(s)
                .for_each(|(qi, si)| *qi += (alpha - beta) * si);
        }
        q.iter_mut().for_each(|qi| *qi = -*qi);
        q
    }

    fn done(&self, x: Vec<f64>, value: f64, iterations: usize, converged: bool) -> Minimum {
        Minimum {
            x,
            value,
            iterations,
            converged,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_minimum_of_rosenbrock() {
        // f = (1 - a)² + 100 (b - a²)², minimum 0 at (1, 1); the classic start (-1.2, 1).
        let minimum = Lbfgs {
            gradient_tolerance: 1e-8,
            value_tolerance: 0.0,
            ..Lbfgs::default()
        }
        .minimize(vec![-1.2, 1.0], |x, g| {
            let (a, b) = (x[0], x[1]);
            g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
            g[1] = 200.0 * (b - a * a);
            (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
        });
        assert!(minimum.converged, "{minimum:?}");
        assert!((minimum.x[0] - 1.0).abs() < 1e-6 && (minimum.x[1] - 1.0).abs() < 1e-6);
        assert!(minimum.iterations < 100, "{minimum:?}");
    }

    #[test]
    fn solves_a_badly_scaled_quadratic() {
        // f = Σ c_i (x_i - i)² with curvatures from 1 to 100: the minimum is x_i = i.
        let c: Vec<f64> = (0..20).map(|i| 10f64.powf(i as f64 / 19.0 * 2.0)).collect();
        let minimum = Lbfgs::default().minimize(vec![0.0; 20], |x, g| {
            let mut f = 0.0;
            for i in 0..20 {
                let d = x[i] - i as f64;
                f += c[i] * d * d;
                g[i] = 2.0 * c[i] * d;
            }
            f
        });
        assert!(minimum.converged, "{minimum:?}");
        assert!(minimum.iterations < 200, "{minimum:?}");
        for (i, xi) in minimum.x.iter().enumerate() {
            // |∇f| < 1e-7 and curvature 2 c ≥ 2 put x within 5e-8.
            assert!((xi - i as f64).abs() < 1e-7, "x[{i}] = {xi}");
        }
    }
}
