//! Gradient attributions for any network with one input: saliency, SmoothGrad, Integrated
//! Gradients and Grad-CAM. Each takes a batch `x` (samples first), one target class per
//! sample, and a baseline batch of the same shape (the reference input: a black image, the
//! training mean of a table); each returns one [`Explanation`] per sample, its attributions
//! in the input's order (an image's pixels row by row, channels last).

use crate::error::{Error, Result};
use crate::model::Model;
use crate::tensor::filter::{grad_cam_map, resize_bilinear};
use crate::tensor::random::Rng;
use crate::tensor::Tensor;

use super::quadrature::gauss_legendre;
use super::Explanation;

/// Rows per backward pass: enough to fill the kernels, few enough to bound the tape.
const CHUNK: usize = 64;

/// The default number of Integrated Gradients points: completeness within 1% on the MNIST
/// MLP and convnet (see the tests).
pub const DEFAULT_STEPS: usize = 64;

/// Saliency: the magnitude of the gradient of the target's probability with respect to each
/// input value, |∂p/∂x| (Simonyan et al.; Captum's `Saliency`, `abs=True`).
pub fn saliency(
    model: &Model,
    x: &Tensor,
    targets: &[usize],
    baseline: &Tensor,
) -> Result<Vec<Explanation>> {
    check(x, targets, baseline)?;
    let baseline_scores = scores(model, baseline, targets)?;
    let mut out = Vec::with_capacity(x.rows());
    for rows in chunks(x.rows()) {
        let g = model.output_gradients(&x.gather_rows(&rows)?, &pick(targets, &rows), None)?;
        for (k, &r) in rows.iter().enumerate() {
            out.push(Explanation {
                target: targets[r],
                score: g.scores[k],
                baseline_score: baseline_scores[r],
                attributions: row(&g.input, k).iter().map(|v| v.abs()).collect(),
            });
        }
    }
    Ok(out)
}

/// SmoothGrad's settings: how many noisy copies, and the noise's standard deviation as a
/// fraction of the sample's range (max − min); Smilkov et al. suggest 10–20%.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SmoothGrad {
    pub samples: usize,
    pub noise: f32,
    pub seed: u64,
}

impl Default for SmoothGrad {
    fn default() -> Self {
        Self {
            samples: 50,
            noise: 0.15,
            seed: 0,
        }
    }
}

/// SmoothGrad: saliency averaged over copies of the input with Gaussian noise added
/// (Captum's `NoiseTunnel(Saliency)`, `nt_type="smoothgrad"`): the mean of |∂p/∂x| over
/// the copies. The score is at the clean input.
pub fn smooth_grad(
    model: &Model,
    x: &Tensor,
    targets: &[usize],
    baseline: &Tensor,
    options: SmoothGrad,
) -> Result<Vec<Explanation>> {
    check(x, targets, baseline)?;
    let valid = (1..=10_000).contains(&options.samples)
        && options.noise.is_finite()
        && options.noise >= 0.0;
    if !valid {
        return Err(Error::invalid(format!(
            "SmoothGrad takes 1 to 10000 samples and a noise level ≥ 0, got {} and {}",
            options.samples, options.noise
        )));
    }
    let baseline_scores = scores(model, baseline, targets)?;
    let clean = scores(model, x, targets)?;
    let mut rng = Rng::seed(options.seed);
    let mut out = Vec::with_capacity(x.rows());
    for r in 0..x.rows() {
        let sample = row(x, r);
        let (lo, hi) = sample
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        let std = options.noise * (hi - lo);
        let sum = gradient_sum(
            model,
            x.shape(),
            targets[r],
            options.samples,
            |_, data| data.extend(sample.iter().map(|&v| v + rng.normal(std))),
            |_, g| g.abs() as f64,
        )?;
        out.push(Explanation {
            target: targets[r],
            score: clean[r],
            baseline_score: baseline_scores[r],
            attributions: sum
                .iter()
                .map(|s| (s / options.samples as f64) as f32)
                .collect(),
        });
    }
    Ok(out)
}

/// Integrated Gradients: (x − x′) ⊙ ∫₀¹ ∂p/∂x (x′ + α (x − x′)) dα, the integral by
/// Gauss–Legendre quadrature on `steps` points (Captum's default method). By completeness
/// the attributions add up to p(x) − p(x′), up to the quadrature's error, which `steps`
/// controls ([`DEFAULT_STEPS`] holds it within 1% on MNIST).
pub fn integrated_gradients(
    model: &Model,
    x: &Tensor,
    targets: &[usize],
    baseline: &Tensor,
    steps: usize,
) -> Result<Vec<Explanation>> {
    check(x, targets, baseline)?;
    if !(1..=4096).contains(&steps) {
        return Err(Error::invalid(format!(
            "Integrated Gradients takes 1 to 4096 steps, got {steps}"
        )));
    }
    let (alphas, weights) = gauss_legendre(steps);
    let clean = scores(model, x, targets)?;
    let baseline_scores = scores(model, baseline, targets)?;
    let mut out = Vec::with_capacity(x.rows());
    for r in 0..x.rows() {
        let (sample, base) = (row(x, r), row(baseline, r));
        let integral = gradient_sum(
            model,
            x.shape(),
            targets[r],
            steps,
            |k, data| {
                let a = alphas[k] as f32;
                data.extend(sample.iter().zip(base).map(|(&v, &b)| b + a * (v - b)));
            },
            |k, g| weights[k] * g as f64,
        )?;
        out.push(Explanation {
            target: targets[r],
            score: clean[r],
            baseline_score: baseline_scores[r],
            attributions: integral
                .iter()
                .zip(sample.iter().zip(base))
                .map(|(s, (&v, &b))| (s * (v - b) as f64) as f32)
                .collect(),
        });
    }
    Ok(out)
}

/// Grad-CAM: the output A of `layer` (an image layer; by default the last convolution's
/// activation), each channel weighted by the mean over positions of ∂y/∂A, y the target's
/// logit (Selvaraju et al. differentiate the score before the softmax), summed over channels, negative
/// values cut (ReLU), resized bilinearly to the input's height and width and repeated over
/// its channels.
pub fn grad_cam(
    model: &Model,
    x: &Tensor,
    targets: &[usize],
    baseline: &Tensor,
    layer: Option<&str>,
) -> Result<Vec<Explanation>> {
    check(x, targets, baseline)?;
    let &[_, height, width, channels] = x.shape() else {
        return Err(Error::invalid(format!(
            "Grad-CAM explains images (height, width, channels), not samples of shape {:?}",
            &x.shape()[1..]
        )));
    };
    let layer = match layer {
        Some(name) => name,
        None => model.last_image_layer().ok_or_else(|| {
            Error::invalid(
                "Grad-CAM needs a layer with an image output (a convolution); this model has none",
            )
        })?,
    };
    let &[h, w, k] = model.layer_output_shape(layer)? else {
        return Err(Error::invalid(format!(
            "Grad-CAM needs a layer with an image output; '{layer}' gives samples of shape {:?}",
            model.layer_output_shape(layer)?
        )));
    };
    let baseline_scores = scores(model, baseline, targets)?;
    let mut out = Vec::with_capacity(x.rows());
    for rows in chunks(x.rows()) {
        let g =
            model.logit_gradients(&x.gather_rows(&rows)?, &pick(targets, &rows), Some(layer))?;
        let (activations, gradients) =
            g.layer.ok_or_else(|| Error::invalid("no layer gradient"))?;
        for (i, &r) in rows.iter().enumerate() {
            let (a, d) = (row(&activations, i), row(&gradients, i));
            let cam = grad_cam_map(a, d, k);
            let map = resize_bilinear(&cam, (h, w), (height, width))?;
            out.push(Explanation {
                target: targets[r],
                score: g.scores[i],
                baseline_score: baseline_scores[r],
                attributions: map
                    .iter()
                    .flat_map(|&v| std::iter::repeat_n(v, channels))
                    .collect(),
            });
        }
    }
    Ok(out)
}

/// The model's probability of each row's target (one minus the output for target 0 of a
/// one-unit output).
pub fn scores(model: &Model, x: &Tensor, targets: &[usize]) -> Result<Vec<f32>> {
    let out = model.predict(x, 256)?;
    let width = out.row_len();
    Ok(targets
        .iter()
        .enumerate()
        .map(|(r, &t)| match width {
            1 if t == 0 => 1.0 - out.data()[r],
            1 => out.data()[r],
            _ => out.data()[r * width + t],
        })
        .collect())
}

/// Σₖ term(k, ∂p/∂x at point k) over `points` inputs of one sample's shape, each written by
/// `point(k, row)`, run through the model [`CHUNK`] at a time: SmoothGrad's noisy copies,
/// Integrated Gradients' points along the path.
fn gradient_sum(
    model: &Model,
    shape: &[usize],
    target: usize,
    points: usize,
    mut point: impl FnMut(usize, &mut Vec<f32>),
    term: impl Fn(usize, f32) -> f64,
) -> Result<Vec<f64>> {
    let width: usize = shape[1..].iter().product();
    let mut sum = vec![0.0f64; width];
    for rows in chunks(points) {
        let mut data = Vec::with_capacity(rows.len() * width);
        for &k in &rows {
            point(k, &mut data);
        }
        let mut batch = shape.to_vec();
        batch[0] = rows.len();
        let g =
            model.output_gradients(&Tensor::new(&batch, data)?, &vec![target; rows.len()], None)?;
        for (i, &k) in rows.iter().enumerate() {
            for (s, &v) in sum.iter_mut().zip(row(&g.input, i)) {
                *s += term(k, v);
            }
        }
    }
    Ok(sum)
}

/// The row numbers 0..n in runs of at most [`CHUNK`].
fn chunks(n: usize) -> impl Iterator<Item = Vec<usize>> {
    (0..n)
        .step_by(CHUNK)
        .map(move |start| (start..(start + CHUNK).min(n)).collect())
}

fn pick(targets: &[usize], rows: &[usize]) -> Vec<usize> {
    rows.iter().map(|&r| targets[r]).collect()
}

/// Row `r` of a batch.
fn row(t: &Tensor, r: usize) -> &[f32] {
    let w = t.row_len();
    &t.data()[r * w..(r + 1) * w]
}

fn check(x: &Tensor, targets: &[usize], baseline: &Tensor) -> Result<()> {
    if baseline.shape() != x.shape() {
        return Err(Error::invalid(format!(
            "the baseline has shape {:?}, the inputs {:?}",
            baseline.shape(),
            x.shape()
        )));
    }
    if targets.len() != x.rows() {
        return Err(Error::invalid(format!(
            "{} targets for {} samples",
            targets.len(),
            x.rows()
        )));
    }
    Ok(())
}
