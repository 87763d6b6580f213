//! Multinomial logistic regression fitted exactly: softmax(x · W + b) minimizing the mean
//! cross-entropy plus l2 · Σ W² by L-BFGS on the full batch, from zero weights. It is the
//! head that frozen pretrained features call for: with more features than samples, a
//! minibatch optimizer stops short of the optimum, and where it stops (the intercept above
//! all) decides the errors; the exact optimum is scikit-learn's `LogisticRegression`.

use super::sequential::Sequential;
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::metrics::Metric;
use crate::nn::Dense;
use crate::optim::{Adam, Lbfgs, Minimum};
use crate::tensor::activation::Activation;
use crate::tensor::loss::softmax_cross_entropy_f64;
use crate::tensor::matmul::{matmul, MatRef};
use crate::tensor::Tensor;

/// The regression's settings.
#[derive(Clone, Debug)]
pub struct SoftmaxRegression {
    /// The penalty on the kernel: l2 · Σ W² is added to the mean loss. scikit-learn's
    /// `C` corresponds to l2 = 1 / (C · samples) for two classes.
    pub l2: f32,
    pub solver: Lbfgs,
}

impl SoftmaxRegression {
    pub fn new(l2: f32) -> Self {
        SoftmaxRegression {
            l2,
            solver: Lbfgs::default(),
        }
    }

    /// Fits on the rows of `x` (samples, features) with class indices `labels` below
    /// `classes`, and returns the model — one Dense(classes, softmax) layer with the
    /// penalty, compiled for sparse categorical cross-entropy, ready to evaluate, save and
    /// predict — with where the solver stopped.
    pub fn fit(
        &self,
        x: &Tensor,
        labels: &[usize],
        classes: usize,
    ) -> Result<(Sequential, Minimum)> {
        let (n, d) = (x.rows(), x.row_len());
        if n == 0 || n != labels.len() || x.shape().len() != 2 {
            return Err(Error::shape(
                "SoftmaxRegression",
                format!("{:?} samples for {} labels", x.shape(), labels.len()),
            ));
        }
        if let Some(&bad) = labels.iter().find(|&&l| l >= classes) {
            return Err(Error::invalid(format!(
                "label {bad} is not below the {classes} classes"
            )));
        }
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return Err(Error::invalid(format!(
                "l2 must be a finite number ≥ 0, got {}",
                self.l2
            )));
        }
        let problem = Problem {
            x: x.data(),
            labels,
            n,
            d,
            k: classes,
            l2: self.l2 as f64,
        };
        let minimum = self
            .solver
            .minimize(vec![0.0; (d + 1) * classes], |theta, grad| {
                problem.value_and_gradient(theta, grad)
            });
        let (kernel, bias) = minimum.x.split_at(d * classes);
        let mut model = Sequential::new(&[d]);
        model.add(
            Dense::new(classes)
                .activation(Activation::Softmax)
                .kernel_l2(self.l2),
        )?;
        model.compile(
            Adam::default(),
            Loss::SparseCategoricalCrossentropy,
            &[Metric::Accuracy],
        )?;
        let to_f32 = |v: &[f64]| v.iter().map(|&t| t as f32).collect::<Vec<f32>>();
        model.set_weights(vec![
            Tensor::new(&[d, classes], to_f32(kernel))?,
            Tensor::new(&[classes], to_f32(bias))?,
        ])?;
        Ok((model, minimum))
    }
}

/// The objective over θ = (W row-major (d, k), then b (k)).
struct Problem<'a> {
    x: &'a [f32],
    labels: &'a [usize],
    n: usize,
    d: usize,
    k: usize,
    l2: f64,
}

impl Problem<'_> {
    /// Mean cross-entropy + l2 · Σ W², and its gradient into `grad`.
    fn value_and_gradient(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let (n, d, k) = (self.n, self.d, self.k);
        let w: Vec<f32> = theta[..d * k].iter().map(|&t| t as f32).collect();
        let b = &theta[d * k..];
        // (n, k) logits through the gemm kernels; the rest in f64 on the small outputs.
        let mut logits = vec![0.0f32; n * k];
        matmul(
            &mut logits,
            MatRef::new(self.x, n, d),
            MatRef::new(&w, d, k),
            false,
        );
        let mut residual = vec![0.0f32; n * k];
        let mut loss = 0.0f64;
        let mut bias_grad = vec![0.0f64; k];
        let mut p = vec![0.0f64; k];
        for ((row, r), &label) in logits
            .chunks_exact(k)
            .zip(residual.chunks_exact_mut(k))
            .zip(self.labels)
        {
            for ((pc, &v), bi) in p.iter_mut().zip(row).zip(b) {
                *pc = v as f64 + bi;
            }
            loss += softmax_cross_entropy_f64(&mut p, label);
            for c in 0..k {
                let g = (p[c] - f64::from(u8::from(c == label))) / n as f64;
                r[c] = g as f32;
                bias_grad[c] += g;
            }
        }
        let mut kernel_grad = vec![0.0f32; d * k];
        matmul(
            &mut kernel_grad,
            MatRef::new(self.x, n, d).t(),
            MatRef::new(&residual, n, k),
            false,
        );
        let mut penalty = 0.0f64;
        for ((g, &kg), &t) in grad.iter_mut().zip(&kernel_grad).zip(&theta[..d * k]) {
            *g = kg as f64 + 2.0 * self.l2 * t;
            penalty += t * t;
        }
        grad[d * k..].copy_from_slice(&bias_grad);
        loss / n as f64 + self.l2 * penalty
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gradient_matches_finite_differences() {
        let x: Vec<f32> = (0..12).map(|i| ((i * 7 % 5) as f32 - 2.0) * 0.4).collect();
        let labels = [0, 2, 1, 2];
        let problem = Problem {
            x: &x,
            labels: &labels,
            n: 4,
            d: 3,
            k: 3,
            l2: 0.05,
        };
        let theta: Vec<f64> = (0..12).map(|i| ((i * 5 % 7) as f64 - 3.0) * 0.1).collect();
        let mut grad = vec![0.0; 12];
        problem.value_and_gradient(&theta, &mut grad);
        let mut scratch = vec![0.0; 12];
        for i in 0..12 {
            let h = 1e-3;
            let (mut up, mut down) = (theta.clone(), theta.clone());
            up[i] += h;
            down[i] -= h;
            let numeric = (problem.value_and_gradient(&up, &mut scratch)
                - problem.value_and_gradient(&down, &mut scratch))
                / (2.0 * h);
            assert!(
                (numeric - grad[i]).abs() < 1e-4,
                "θ[{i}]: {numeric} vs {}",
                grad[i]
            );
        }
    }

    #[test]
    fn finds_the_known_optimum_of_two_points() {
        // x = +1 is class 1, x = -1 class 0. By symmetry b = 0 and W = (-a/2, a/2), so the
        // objective is ln(1 + e^-a) + l2 · a² / 2, least where σ(-a) = l2 · a.
        let l2 = 0.1f64;
        let (mut lo, mut hi) = (0.0f64, 20.0f64);
        for _ in 0..100 {
            let a = (lo + hi) / 2.0;
            if 1.0 / (1.0 + a.exp()) > l2 * a {
                lo = a;
            } else {
                hi = a;
            }
        }
        let a = (lo + hi) / 2.0;
        let x = Tensor::new(&[2, 1], vec![1.0, -1.0]).unwrap();
        let (model, minimum) = SoftmaxRegression::new(l2 as f32)
            .fit(&x, &[1, 0], 2)
            .unwrap();
        assert!(minimum.converged, "{minimum:?}");
        let weights = model.get_weights();
        let (kernel, bias) = (weights[0].data(), weights[1].data());
        assert!(
            (kernel[1] as f64 - a / 2.0).abs() < 1e-4,
            "{kernel:?} vs a = {a}"
        );
        assert!((kernel[0] as f64 + a / 2.0).abs() < 1e-4, "{kernel:?}");
        assert!(bias.iter().all(|b| b.abs() < 1e-4), "{bias:?}");
    }

    #[test]
    fn bad_labels_and_penalties_are_errors() {
        let x = Tensor::new(&[2, 1], vec![1.0, -1.0]).unwrap();
        let fit = |l2: f32, labels: &[usize]| {
            SoftmaxRegression::new(l2)
                .fit(&x, labels, 2)
                .err()
                .map(|e| e.to_string())
        };
        assert!(fit(0.1, &[0, 2]).unwrap().contains("label 2"));
        assert!(fit(0.1, &[0]).is_some());
        assert!(fit(f32::NAN, &[0, 1]).unwrap().contains("l2"));
    }
}
