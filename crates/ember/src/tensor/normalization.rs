//! Normalization kernels, `y = gamma · (x − mean) / sqrt(variance + epsilon) + beta`: batch
//! normalization per channel (the last axis) and layer normalization per row, with gradients.

use super::elementwise::store;
use super::Tensor;
use crate::error::{Error, Result};

/// Checks a batch normalization's operands, x (batch, …, channels) and the per-channel values
/// (gamma, beta, and given statistics): returns the number of channels.
pub fn batch_norm_channels(x: &[usize], per_channel: &[&[usize]], epsilon: f32) -> Result<usize> {
    let channels = *x.last().unwrap_or(&0);
    if x.len() < 2 || channels == 0 {
        return Err(Error::shape(
            "batch_norm",
            format!("needs (batch, …, channels) inputs, got {x:?}"),
        ));
    }
    for shape in per_channel {
        if *shape != [channels] {
            return Err(Error::shape(
                "batch_norm",
                format!("per-channel values must have shape [{channels}], got {shape:?}"),
            ));
        }
    }
    if !(epsilon.is_finite() && epsilon > 0.0) {
        return Err(Error::invalid(format!(
            "batch_norm epsilon must be positive, got {epsilon}"
        )));
    }
    Ok(channels)
}

/// Batch normalization of `input` (rows of `channels` values) into `out`. The statistics are
/// `given` (mean, variance) or, when None, the batch's own (mean and biased variance).
/// `stats` (3 · channels) receives [mean, 1/std, variance] per channel, for the backward pass.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm(
    input: &[f32],
    channels: usize,
    gamma: Option<&[f32]>,
    beta: Option<&[f32]>,
    given: Option<(&[f32], &[f32])>,
    epsilon: f32,
    stats: &mut [f32],
    out: &mut Tensor,
) {
    let out = out.data_mut();
    let (mean, rest) = stats.split_at_mut(channels);
    let (inv_std, variance) = rest.split_at_mut(channels);
    match given {
        None => {
            // Two passes in f64: a long f32 sum loses digits.
            let rows = input.len() / channels;
            let mut sum = vec![0f64; channels];
            for row in input.chunks_exact(channels) {
                for (s, &v) in sum.iter_mut().zip(row) {
                    *s += v as f64;
                }
            }
            let means: Vec<f64> = sum.iter().map(|s| s / rows as f64).collect();
            let mut square = vec![0f64; channels];
            for row in input.chunks_exact(channels) {
                for ((s, &v), m) in square.iter_mut().zip(row).zip(&means) {
                    let d = v as f64 - m;
                    *s += d * d;
                }
            }
            for c in 0..channels {
                mean[c] = means[c] as f32;
                variance[c] = (square[c] / rows as f64) as f32;
            }
        }
        Some((m, v)) => {
            mean.copy_from_slice(m);
            variance.copy_from_slice(v);
        }
    }
    for (s, &v) in inv_std.iter_mut().zip(variance.iter()) {
        *s = 1.0 / (v + epsilon).sqrt();
    }
    let ones = vec![1.0; channels];
    let zeros = vec![0.0; channels];
    let g = gamma.unwrap_or(&ones);
    let b = beta.unwrap_or(&zeros);
    for (y, x) in out
        .chunks_exact_mut(channels)
        .zip(input.chunks_exact(channels))
    {
        for c in 0..channels {
            y[c] = g[c] * (x[c] - mean[c]) * inv_std[c] + b[c];
        }
    }
}

/// Per-column sums of a normalization's backward pass: Σ dy and Σ dy · x̂.
pub struct NormSums {
    pub sum_dy: Vec<f64>,
    pub sum_dy_xhat: Vec<f64>,
}

impl NormSums {
    /// The gradient of gamma, Σ dy · x̂.
    pub fn gamma_grad(&self) -> Vec<f32> {
        self.sum_dy_xhat.iter().map(|&v| v as f32).collect()
    }

    /// The gradient of beta, Σ dy.
    pub fn beta_grad(&self) -> Vec<f32> {
        self.sum_dy.iter().map(|&v| v as f32).collect()
    }
}

/// The sums of a batch normalization's backward pass; `stats` as [`batch_norm`] left them.
pub fn batch_norm_sums(dy: &[f32], input: &[f32], stats: &[f32]) -> NormSums {
    let channels = stats.len() / 3;
    let (mean, rest) = stats.split_at(channels);
    let inv_std = &rest[..channels];
    let mut sum_dy = vec![0f64; channels];
    let mut sum_dy_xhat = vec![0f64; channels];
    for (d, xr) in dy.chunks_exact(channels).zip(input.chunks_exact(channels)) {
        for c in 0..channels {
            let xhat = (xr[c] - mean[c]) * inv_std[c];
            sum_dy[c] += d[c] as f64;
            sum_dy_xhat[c] += (d[c] * xhat) as f64;
        }
    }
    NormSums {
        sum_dy,
        sum_dy_xhat,
    }
}

/// The input gradient of a batch normalization (`scale`: gamma, or ones): through the batch's
/// statistics when `batch_stats`, otherwise with the statistics held constant.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_input_grad(
    dy: &[f32],
    input: &[f32],
    scale: &[f32],
    stats: &[f32],
    sums: &NormSums,
    batch_stats: bool,
    dx: &mut Tensor,
    accumulate: bool,
) {
    let channels = stats.len() / 3;
    let (mean, rest) = stats.split_at(channels);
    let inv_std = &rest[..channels];
    let rows = dy.len() / channels;
    let (sum_dy, sum_dy_xhat) = (&sums.sum_dy, &sums.sum_dy_xhat);
    let values = dy
        .chunks_exact(channels)
        .zip(input.chunks_exact(channels))
        .flat_map(|(d, xr)| (0..channels).map(move |c| (c, d[c], xr[c])))
        .map(|(c, d, xv)| {
            let k = scale[c] * inv_std[c];
            if batch_stats {
                // dx = γ/σ · (dy − mean(dy) − x̂ · mean(dy · x̂))
                let xhat = (xv - mean[c]) * inv_std[c];
                k * (d
                    - (sum_dy[c] / rows as f64) as f32
                    - xhat * (sum_dy_xhat[c] / rows as f64) as f32)
            } else {
                k * d
            }
        });
    store(dx.data_mut(), values, accumulate);
}

/// The gradients of given statistics (mean, variance):
/// ∂y/∂mean = −γ/σ;  ∂y/∂variance = −½ γ (x − mean) / σ³ = −½ γ x̂ / σ².
pub fn batch_norm_stats_grads(scale: &[f32], stats: &[f32], sums: &NormSums) -> [Vec<f32>; 2] {
    let channels = stats.len() / 3;
    let inv_std = &stats[channels..2 * channels];
    let (sum_dy, sum_dy_xhat) = (&sums.sum_dy, &sums.sum_dy_xhat);
    [
        (0..channels)
            .map(|c| -scale[c] * inv_std[c] * sum_dy[c] as f32)
            .collect(),
        (0..channels)
            .map(|c| -0.5 * scale[c] * inv_std[c] * inv_std[c] * sum_dy_xhat[c] as f32)
            .collect(),
    ]
}

/// Checks a layer normalization's operands, x (…, features) and gamma / beta (features):
/// returns the number of features.
pub fn layer_norm_features(x: &[usize], per_feature: &[&[usize]], epsilon: f32) -> Result<usize> {
    let features = *x.last().unwrap_or(&0);
    if features == 0 {
        return Err(Error::shape(
            "layer_norm",
            format!("needs inputs with a non-empty last axis, got {x:?}"),
        ));
    }
    for shape in per_feature {
        if *shape != [features] {
            return Err(Error::shape(
                "layer_norm",
                format!("scale and shift must have shape [{features}], got {shape:?}"),
            ));
        }
    }
    if !(epsilon.is_finite() && epsilon > 0.0) {
        return Err(Error::invalid(format!(
            "layer_norm epsilon must be positive, got {epsilon}"
        )));
    }
    Ok(features)
}

/// Layer normalization of each row of `input` (rows of `features` values) into `out`; `stats`
/// (2 · rows) receives [mean, 1/std] per row, for the backward pass.
pub fn layer_norm(
    input: &[f32],
    features: usize,
    gamma: Option<&[f32]>,
    beta: Option<&[f32]>,
    epsilon: f32,
    stats: &mut [f32],
    out: &mut Tensor,
) {
    let out = out.data_mut();
    let rows = input.len() / features;
    for (r, (y, xr)) in out
        .chunks_exact_mut(features)
        .zip(input.chunks_exact(features))
        .enumerate()
    {
        let mean = xr.iter().map(|&v| v as f64).sum::<f64>() / features as f64;
        let variance = xr.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / features as f64;
        let inv_std = (1.0 / (variance + epsilon as f64).sqrt()) as f32;
        let mean = mean as f32;
        stats[r] = mean;
        stats[rows + r] = inv_std;
        for (c, (o, &v)) in y.iter_mut().zip(xr).enumerate() {
            let normed = (v - mean) * inv_std;
            *o = gamma.map_or(normed, |g| normed * g[c]) + beta.map_or(0.0, |b| b[c]);
        }
    }
}

/// The per-feature sums of a layer normalization's backward pass; `stats` as [`layer_norm`]
/// left them.
pub fn layer_norm_sums(dy: &[f32], input: &[f32], features: usize, stats: &[f32]) -> NormSums {
    let rows = dy.len() / features;
    let (mean, inv_std) = stats.split_at(rows);
    let mut sum_dy = vec![0f64; features];
    let mut sum_dy_xhat = vec![0f64; features];
    for (r, (d, xr)) in dy
        .chunks_exact(features)
        .zip(input.chunks_exact(features))
        .enumerate()
    {
        for c in 0..features {
            let xhat = (xr[c] - mean[r]) * inv_std[r];
            sum_dy[c] += d[c] as f64;
            sum_dy_xhat[c] += (d[c] * xhat) as f64;
        }
    }
    NormSums {
        sum_dy,
        sum_dy_xhat,
    }
}

/// The input gradient of a layer normalization (`scale`: gamma, or ones).
pub fn layer_norm_input_grad(
    dy: &[f32],
    input: &[f32],
    scale: &[f32],
    stats: &[f32],
    dx: &mut Tensor,
    accumulate: bool,
) {
    let features = scale.len();
    let rows = dy.len() / features;
    let (mean, inv_std) = stats.split_at(rows);
    let mut values = Vec::with_capacity(dy.len());
    for (r, (d, xr)) in dy
        .chunks_exact(features)
        .zip(input.chunks_exact(features))
        .enumerate()
    {
        // dx = 1/σ · (g − mean(g) − x̂ · mean(g · x̂)) with g = γ · dy, over the row.
        let (mut g_mean, mut gx_mean) = (0f64, 0f64);
        for c in 0..features {
            let g = (scale[c] * d[c]) as f64;
            let xhat = ((xr[c] - mean[r]) * inv_std[r]) as f64;
            g_mean += g;
            gx_mean += g * xhat;
        }
        g_mean /= features as f64;
        gx_mean /= features as f64;
        for c in 0..features {
            let g = (scale[c] * d[c]) as f64;
            let xhat = ((xr[c] - mean[r]) * inv_std[r]) as f64;
            values.push((inv_std[r] as f64 * (g - g_mean - xhat * gx_mean)) as f32);
        }
    }
    store(dx.data_mut(), values.into_iter(), accumulate);
}

/// Keras's moving average of a batch statistic: `moving = momentum · moving + (1 − momentum) ·
/// batch`, per channel.
pub fn update_moving_average(moving: &mut super::Tensor, batch: &[f32], momentum: f32) {
    for (a, &b) in moving.data_mut().iter_mut().zip(batch) {
        *a = momentum * *a + (1.0 - momentum) * b;
    }
}
