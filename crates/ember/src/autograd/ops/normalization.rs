//! Normalization: `y = gamma · (x − mean) / sqrt(variance + epsilon) + beta`.
//!
//! Batch normalization takes the statistics over every axis but the last (per channel): in
//! training the batch's own (the gradient flows through them), at inference the moving
//! averages, ordinary inputs of the op. Layer normalization takes them over the last axis
//! (per sample and position), the same in training and inference.

use crate::autograd::tape::{GradOut, Node, Tape, Var};
use crate::error::Result;
use crate::tensor::normalization::{
    batch_norm, batch_norm_channels, batch_norm_input_grad, batch_norm_stats_grads,
    batch_norm_sums, layer_norm, layer_norm_features, layer_norm_input_grad, layer_norm_sums,
};
use crate::tensor::reduce::copy_backward;

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
        let mut per_channel = vec![gamma, beta];
        if let NormStats::Given { mean, variance } = stats {
            per_channel.extend([Some(mean), Some(variance)]);
        }
        let per_channel: Vec<&[usize]> = per_channel
            .into_iter()
            .flatten()
            .map(|v| self.value(v).shape())
            .collect();
        let channels = batch_norm_channels(&shape, &per_channel, epsilon)?;
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
        // aux = [mean, 1/std, variance], each per channel.
        out.aux.clear();
        out.aux.resize(3 * channels, 0.0);
        let given = match stats {
            NormStats::Batch => None,
            NormStats::Given { mean, variance } => {
                Some((before[mean.0].value.data(), before[variance.0].value.data()))
            }
        };
        batch_norm(
            before[x.0].value.data(),
            channels,
            gamma.map(|g| before[g.0].value.data()),
            beta.map(|b| before[b.0].value.data()),
            given,
            epsilon,
            &mut out.aux,
            &mut out.value,
        );
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
        let per_feature: Vec<&[usize]> = [gamma, beta]
            .into_iter()
            .flatten()
            .map(|v| self.value(v).shape())
            .collect();
        let features = layer_norm_features(&shape, &per_feature, epsilon)?;
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
        layer_norm(
            before[x.0].value.data(),
            features,
            gamma.map(|g| before[g.0].value.data()),
            beta.map(|b| before[b.0].value.data()),
            epsilon,
            &mut out.aux,
            &mut out.value,
        );
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

/// `gamma`'s value, or ones when there is none.
fn scale_of(nodes: &[Node], gamma: Option<Var>, len: usize) -> Vec<f32> {
    gamma.map_or_else(|| vec![1.0; len], |g| nodes[g.0].value.data().to_vec())
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
    let dy = out.grad.data();
    let scale = scale_of(nodes, gamma, channels);
    let sums = batch_norm_sums(dy, nodes[x.0].value.data(), &out.aux);
    if let Some(mut grad) = GradOut::take(nodes, x) {
        let acc = grad.accumulate;
        let batch = matches!(stats, NormStats::Batch);
        let input = nodes[x.0].value.data();
        let dx = &mut grad.buf;
        batch_norm_input_grad(dy, input, &scale, &out.aux, &sums, batch, dx, acc);
        grad.put(nodes);
    }
    if let Some(g) = gamma {
        per_channel(nodes, g, &sums.gamma_grad());
    }
    if let Some(b) = beta {
        per_channel(nodes, b, &sums.beta_grad());
    }
    if let NormStats::Given { mean, variance } = stats {
        let [d_mean, d_variance] = batch_norm_stats_grads(&scale, &out.aux, &sums);
        per_channel(nodes, mean, &d_mean);
        per_channel(nodes, variance, &d_variance);
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
    let dy = out.grad.data();
    let scale = scale_of(nodes, gamma, features);
    let sums = layer_norm_sums(dy, nodes[x.0].value.data(), features, &out.aux);
    if let Some(mut grad) = GradOut::take(nodes, x) {
        let acc = grad.accumulate;
        let input = nodes[x.0].value.data();
        layer_norm_input_grad(dy, input, &scale, &out.aux, &mut grad.buf, acc);
        grad.put(nodes);
    }
    if let Some(g) = gamma {
        per_channel(nodes, g, &sums.gamma_grad());
    }
    if let Some(b) = beta {
        per_channel(nodes, b, &sums.beta_grad());
    }
}

/// Writes per-channel gradients the kernels computed into `v`'s gradient.
fn per_channel(nodes: &mut [Node], v: Var, values: &[f32]) {
    if let Some(mut grad) = GradOut::take(nodes, v) {
        let acc = grad.accumulate;
        copy_backward(values, &mut grad.buf, acc);
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
