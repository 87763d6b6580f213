//! Normalization: `y = gamma · (x − mean) / sqrt(variance + epsilon) + beta`.
//!
//! Batch normalization takes the statistics over every axis but the last (per channel): in
//! training the batch's own (the gradient flows through them), at inference the moving
//! averages, ordinary inputs of the op. Layer normalization takes them over the last axis
//! (per sample and position), the same in training and inference.

use crate::autograd::tape::{GradOut, Node, Tape, Var};
use crate::error::{Error, Result};

/// Where the normalising statistics come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormStats {
    /// The batch's own mean and (biased) variance, per channel.
    Batch,
    /// Given per-channel tensors (the moving averages).
    Given { mean: Var, variance: Var },
}

impl Tape {
    /// Normalizes `x` per channel (its last axis); `gamma` and `beta` (shape `[channels]`)
    /// scale and shift the result when given. With [`NormStats::Batch`] the batch's mean and
    /// variance can be read back with [`Tape::batch_moments`].
    pub fn batch_norm(
        &mut self,
        x: Var,
        gamma: Option<Var>,
        beta: Option<Var>,
        stats: NormStats,
        epsilon: f32,
    ) -> Result<Var> {
        let shape = self.value(x).shape().to_vec();
        let channels = *shape.last().unwrap_or(&0);
        if shape.len() < 2 || channels == 0 {
            return Err(Error::shape(
                "batch_norm",
                format!("needs (batch, …, channels) inputs, got {shape:?}"),
            ));
        }
        let mut per_channel = vec![gamma, beta];
        if let NormStats::Given { mean, variance } = stats {
            per_channel.extend([Some(mean), Some(variance)]);
        }
        for v in per_channel.into_iter().flatten() {
            if self.value(v).shape() != [channels] {
                return Err(Error::shape(
                    "batch_norm",
                    format!(
                        "per-channel values must have shape [{channels}], got {:?}",
                        self.value(v).shape()
                    ),
                ));
            }
        }
        if !(epsilon.is_finite() && epsilon > 0.0) {
            return Err(Error::invalid(format!(
                "batch_norm epsilon must be positive, got {epsilon}"
            )));
        }
        let requires_grad = [Some(x), gamma, beta]
            .into_iter()
            .flatten()
            .chain(match stats {
                NormStats::Batch => vec![],
                NormStats::Given { mean, variance } => vec![mean, variance],
            })
            .any(|v| self.requires_grad(v));
        let i = self.push(
            super::Op::BatchNorm {
                x,
                gamma,
                beta,
                stats,
            },
            &shape,
            requires_grad,
        );
        let (before, out) = self.split(i);
        let input = before[x.0].value.data();
        // aux = [mean, 1/std, variance], each per channel.
        out.aux.clear();
        out.aux.resize(3 * channels, 0.0);
        let (mean, rest) = out.aux.split_at_mut(channels);
        let (inv_std, variance) = rest.split_at_mut(channels);
        match stats {
            NormStats::Batch => {
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
            NormStats::Given {
                mean: m,
                variance: v,
            } => {
                mean.copy_from_slice(before[m.0].value.data());
                variance.copy_from_slice(before[v.0].value.data());
            }
        }
        for (s, &v) in inv_std.iter_mut().zip(variance.iter()) {
            *s = 1.0 / (v + epsilon).sqrt();
        }
        let ones = vec![1.0; channels];
        let zeros = vec![0.0; channels];
        let g = gamma.map_or(&ones[..], |g| before[g.0].value.data());
        let b = beta.map_or(&zeros[..], |b| before[b.0].value.data());
        for (y, x) in out
            .value
            .data_mut()
            .chunks_exact_mut(channels)
            .zip(input.chunks_exact(channels))
        {
            for c in 0..channels {
                y[c] = g[c] * (x[c] - mean[c]) * inv_std[c] + b[c];
            }
        }
        Ok(Var(i))
    }

    /// Normalizes each row of `x` over its last axis (layer normalization); `gamma` and
    /// `beta` (shape `[features]`) scale and shift the result when given.
    pub fn layer_norm(
        &mut self,
        x: Var,
        gamma: Option<Var>,
        beta: Option<Var>,
        epsilon: f32,
    ) -> Result<Var> {
        let shape = self.value(x).shape().to_vec();
        let features = *shape.last().unwrap_or(&0);
        if features == 0 {
            return Err(Error::shape(
                "layer_norm",
                format!("needs inputs with a non-empty last axis, got {shape:?}"),
            ));
        }
        for v in [gamma, beta].into_iter().flatten() {
            if self.value(v).shape() != [features] {
                return Err(Error::shape(
                    "layer_norm",
                    format!(
                        "scale and shift must have shape [{features}], got {:?}",
                        self.value(v).shape()
                    ),
                ));
            }
        }
        if !(epsilon.is_finite() && epsilon > 0.0) {
            return Err(Error::invalid(format!(
                "layer_norm epsilon must be positive, got {epsilon}"
            )));
        }
        let requires_grad = [Some(x), gamma, beta]
            .into_iter()
            .flatten()
            .any(|v| self.requires_grad(v));
        let i = self.push(
            super::Op::LayerNorm { x, gamma, beta },
            &shape,
            requires_grad,
        );
        let (before, out) = self.split(i);
        let rows = before[x.0].value.len() / features;
        // aux = [mean, 1/std] per row.
        out.aux.clear();
        out.aux.resize(2 * rows, 0.0);
        let g = gamma.map(|g| before[g.0].value.data());
        let b = beta.map(|b| before[b.0].value.data());
        for (r, (y, xr)) in out
            .value
            .data_mut()
            .chunks_exact_mut(features)
            .zip(before[x.0].value.data().chunks_exact(features))
            .enumerate()
        {
            let mean = xr.iter().map(|&v| v as f64).sum::<f64>() / features as f64;
            let variance =
                xr.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / features as f64;
            let inv_std = (1.0 / (variance + epsilon as f64).sqrt()) as f32;
            let mean = mean as f32;
            out.aux[r] = mean;
            out.aux[rows + r] = inv_std;
            for (c, (o, &v)) in y.iter_mut().zip(xr).enumerate() {
                let normed = (v - mean) * inv_std;
                *o = g.map_or(normed, |g| normed * g[c]) + b.map_or(0.0, |b| b[c]);
            }
        }
        Ok(Var(i))
    }

    /// The batch mean and variance (per channel) that a [`NormStats::Batch`] normalization
    /// `y` used.
    pub fn batch_moments(&self, y: Var) -> (&[f32], &[f32]) {
        let aux = self.aux(y);
        let channels = aux.len() / 3;
        (&aux[..channels], &aux[2 * channels..])
    }
}

pub(crate) fn backward_batch_norm(
    x: Var,
    gamma: Option<Var>,
    beta: Option<Var>,
    stats: NormStats,
    out: &Node,
    nodes: &mut [Node],
) {
    let channels = out.aux.len() / 3;
    let (mean, rest) = out.aux.split_at(channels);
    let inv_std = &rest[..channels];
    let dy = out.grad.data();
    let rows = dy.len() / channels;
    let ones = vec![1.0; channels];
    let scale: Vec<f32> = gamma.map_or(ones, |g| nodes[g.0].value.data().to_vec());
    let input = nodes[x.0].value.data();

    // Per-channel sums: Σ dy and Σ dy · x̂.
    let mut sum_dy = vec![0f64; channels];
    let mut sum_dy_xhat = vec![0f64; channels];
    for (d, xr) in dy.chunks_exact(channels).zip(input.chunks_exact(channels)) {
        for c in 0..channels {
            let xhat = (xr[c] - mean[c]) * inv_std[c];
            sum_dy[c] += d[c] as f64;
            sum_dy_xhat[c] += (d[c] * xhat) as f64;
        }
    }

    if let Some(mut grad) = GradOut::take(nodes, x) {
        let input = nodes[x.0].value.data();
        let batch = matches!(stats, NormStats::Batch);
        let values = dy
            .chunks_exact(channels)
            .zip(input.chunks_exact(channels))
            .flat_map(|(d, xr)| (0..channels).map(move |c| (c, d[c], xr[c])))
            .map(|(c, d, xv)| {
                let k = scale[c] * inv_std[c];
                if batch {
                    // dx = γ/σ · (dy − mean(dy) − x̂ · mean(dy · x̂))
                    let xhat = (xv - mean[c]) * inv_std[c];
                    k * (d
                        - (sum_dy[c] / rows as f64) as f32
                        - xhat * (sum_dy_xhat[c] / rows as f64) as f32)
                } else {
                    k * d
                }
            });
        grad.fill_from(values);
        grad.put(nodes);
    }
    if let Some(g) = gamma {
        per_channel(nodes, g, sum_dy_xhat.iter().map(|&v| v as f32));
    }
    if let Some(b) = beta {
        per_channel(nodes, b, sum_dy.iter().map(|&v| v as f32));
    }
    if let NormStats::Given { mean: m, variance } = stats {
        // ∂y/∂mean = −γ/σ;  ∂y/∂variance = −½ γ (x − mean) / σ³ = −½ γ x̂ / σ².
        per_channel(
            nodes,
            m,
            (0..channels).map(|c| -scale[c] * inv_std[c] * sum_dy[c] as f32),
        );
        per_channel(
            nodes,
            variance,
            (0..channels)
                .map(|c| -0.5 * scale[c] * inv_std[c] * inv_std[c] * sum_dy_xhat[c] as f32),
        );
    }
}

pub(crate) fn backward_layer_norm(
    x: Var,
    gamma: Option<Var>,
    beta: Option<Var>,
    out: &Node,
    nodes: &mut [Node],
) {
    let features = *out.value.shape().last().expect("checked when recorded");
    let rows = out.value.len() / features;
    let (mean, inv_std) = out.aux.split_at(rows);
    let dy = out.grad.data();
    let scale: Vec<f32> =
        gamma.map_or_else(|| vec![1.0; features], |g| nodes[g.0].value.data().to_vec());
    let mut sum_dy = vec![0f64; features];
    let mut sum_dy_xhat = vec![0f64; features];
    let input = nodes[x.0].value.data();
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
    if let Some(mut grad) = GradOut::take(nodes, x) {
        let input = nodes[x.0].value.data();
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
        grad.fill_from(values.into_iter());
        grad.put(nodes);
    }
    if let Some(g) = gamma {
        per_channel(nodes, g, sum_dy_xhat.iter().map(|&v| v as f32));
    }
    if let Some(b) = beta {
        per_channel(nodes, b, sum_dy.iter().map(|&v| v as f32));
    }
}

fn per_channel(nodes: &mut [Node], v: Var, values: impl Iterator<Item = f32>) {
    if let Some(mut grad) = GradOut::take(nodes, v) {
        grad.fill_from(values);
        grad.put(nodes);
    }
}

#[cfg(test)]
mod tests {
    use super::NormStats;
    use crate::autograd::gradcheck::check_gradients;
    use crate::{Tape, Tensor};

    #[test]
    fn batch_statistics_gradients_match_finite_differences() {
        // (batch 4, 3 channels), and NHWC (2, 2, 3, 2) with scale and shift.
        check_gradients(&[&[4, 3]], 1, |tape, v| {
            tape.batch_norm(v[0], None, None, NormStats::Batch, 1e-3)
        })
        .unwrap();
        check_gradients(&[&[2, 2, 3, 2], &[2], &[2]], 2, |tape, v| {
            tape.batch_norm(v[0], Some(v[1]), Some(v[2]), NormStats::Batch, 1e-3)
        })
        .unwrap();
    }

    #[test]
    fn given_statistics_gradients_match_finite_differences() {
        // The variance input must stay positive: square it.
        check_gradients(&[&[3, 2], &[2], &[2], &[2], &[2]], 3, |tape, v| {
            let variance = tape.square(v[4])?;
            tape.batch_norm(
                v[0],
                Some(v[1]),
                Some(v[2]),
                NormStats::Given {
                    mean: v[3],
                    variance,
                },
                1e-3,
            )
        })
        .unwrap();
    }

    #[test]
    fn layer_norm_gradients_match_finite_differences() {
        check_gradients(&[&[3, 5]], 4, |tape, v| {
            tape.layer_norm(v[0], None, None, 1e-5)
        })
        .unwrap();
        check_gradients(&[&[2, 3, 4], &[4], &[4]], 6, |tape, v| {
            tape.layer_norm(v[0], Some(v[1]), Some(v[2]), 1e-3)
        })
        .unwrap();
    }

    #[test]
    fn layer_norm_by_hand() {
        // Row [1, 3]: mean 2, variance 1; row [5, 5]: variance 0, so the output is beta.
        let mut tape = Tape::new();
        let x = tape.constant(&Tensor::new(&[2, 2], vec![1.0, 3.0, 5.0, 5.0]).unwrap());
        let gamma = tape.constant(&Tensor::new(&[2], vec![2.0, 1.0]).unwrap());
        let beta = tape.constant(&Tensor::new(&[2], vec![0.5, -1.0]).unwrap());
        let y = tape.layer_norm(x, Some(gamma), Some(beta), 1e-12).unwrap();
        assert_eq!(tape.value(y).data(), &[-1.5, 0.0, 0.5, -1.0]);
        assert!(tape.layer_norm(x, Some(beta), None, 0.0).is_err());
    }

    #[test]
    fn normalizes_by_hand() {
        // Channel 0: 1, 3 → mean 2, variance 1; channel 1: 0, 0 → mean 0, variance 0.
        let mut tape = Tape::new();
        let x = tape.constant(&Tensor::new(&[2, 2], vec![1.0, 0.0, 3.0, 0.0]).unwrap());
        let gamma = tape.constant(&Tensor::new(&[2], vec![2.0, 1.0]).unwrap());
        let beta = tape.constant(&Tensor::new(&[2], vec![0.5, 7.0]).unwrap());
        let y = tape
            .batch_norm(x, Some(gamma), Some(beta), NormStats::Batch, 1e-3)
            .unwrap();
        let s = 1.0 / (1.0f32 + 1e-3).sqrt();
        let expected = [0.5 - 2.0 * s, 7.0, 0.5 + 2.0 * s, 7.0];
        for (got, want) in tape.value(y).data().iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
        let (mean, variance) = tape.batch_moments(y);
        assert_eq!(mean, &[2.0, 0.0]);
        assert_eq!(variance, &[1.0, 0.0]);
        // Shapes are checked.
        let bad = tape.constant(&Tensor::zeros(&[3]));
        assert!(tape
            .batch_norm(x, Some(bad), None, NormStats::Batch, 1e-3)
            .is_err());
        assert!(tape
            .batch_norm(x, None, None, NormStats::Batch, 0.0)
            .is_err());
    }
}
