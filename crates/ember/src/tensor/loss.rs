//! Loss kernels: a scalar from a batch of predictions and targets, averaged over the batch as
//! Keras does, and its gradient. The cross-entropies that start from logits are fused with
//! their softmax / sigmoid: stable for any logit, and the gradient is simply `p - y`.

use super::activation::{log_sum_exp, sigmoid, softmax_in_place};
use super::elementwise::store;
use super::Tensor;
use crate::error::{Error, Result};

/// Keras's fuzz factor: probabilities are clipped to `[EPSILON, 1 - EPSILON]` before a log.
pub const EPSILON: f32 = 1e-7;

/// The loss computations the tape knows. "Sparse" targets are class indices, one per row;
/// the others are the same shape as the prediction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossOp {
    /// Cross-entropy of softmax(logits) against one-hot (or soft) targets.
    SoftmaxCrossEntropy,
    /// Cross-entropy of softmax(logits) against class indices.
    SparseSoftmaxCrossEntropy,
    /// Cross-entropy of probabilities (rows renormalised, then clipped) against one-hot targets.
    CrossEntropy,
    /// Cross-entropy of probabilities against class indices.
    SparseCrossEntropy,
    /// Binary cross-entropy of sigmoid(logits), elementwise.
    SigmoidBinaryCrossEntropy,
    /// Binary cross-entropy of probabilities (clipped), elementwise.
    BinaryCrossEntropy,
    MeanSquaredError,
}

impl LossOp {
    pub fn is_sparse(self) -> bool {
        matches!(
            self,
            LossOp::SparseSoftmaxCrossEntropy | LossOp::SparseCrossEntropy
        )
    }

    /// Averaged per row (cross-entropies over classes) rather than per element.
    pub fn per_row(self) -> bool {
        matches!(
            self,
            LossOp::SoftmaxCrossEntropy
                | LossOp::SparseSoftmaxCrossEntropy
                | LossOp::CrossEntropy
                | LossOp::SparseCrossEntropy
        )
    }
}

/// Checks a loss's operands: the target against the prediction's shape, and the number of
/// sample weights (one per row) when there are any.
pub fn check_loss(
    op: LossOp,
    prediction: &[usize],
    target: &Tensor,
    weights: Option<usize>,
) -> Result<()> {
    check_target(op, prediction, target)?;
    let rows =
        prediction.iter().product::<usize>() / prediction.last().copied().unwrap_or(1).max(1);
    if let Some(weights) = weights {
        if weights != rows {
            return Err(Error::shape(
                "loss",
                format!("{weights} sample weights for {rows} samples"),
            ));
        }
    }
    Ok(())
}

/// The loss of predictions `pd` (rows of `classes` values) against targets `yd`, each row's
/// term multiplied by its weight when given. The softmax losses leave their probabilities in
/// `probs`, for the backward pass; the others leave it untouched.
pub fn loss(
    op: LossOp,
    pd: &[f32],
    classes: usize,
    yd: &[f32],
    weights: Option<&[f32]>,
    probs: &mut Vec<f32>,
) -> f32 {
    let weight = |r: usize| weights.map_or(1.0, |w| w[r] as f64);
    let rows = pd.len() / classes.max(1);
    let mut total = 0.0f64;
    match op {
        LossOp::SoftmaxCrossEntropy | LossOp::SparseSoftmaxCrossEntropy => {
            // Keep the probabilities for the backward pass.
            probs.clear();
            probs.extend_from_slice(pd);
            for (r, (z, probs)) in pd
                .chunks(classes)
                .zip(probs.chunks_mut(classes))
                .enumerate()
            {
                let lse = log_sum_exp(z);
                softmax_in_place(probs);
                let row_loss = if op.is_sparse() {
                    (lse - z[yd[r] as usize]) as f64
                } else {
                    let t = &yd[r * classes..(r + 1) * classes];
                    z.iter()
                        .zip(t)
                        .map(|(z, t)| (t * (lse - z)) as f64)
                        .sum::<f64>()
                };
                total += weight(r) * row_loss;
            }
        }
        LossOp::CrossEntropy | LossOp::SparseCrossEntropy => {
            for (r, row) in pd.chunks(classes).enumerate() {
                let s: f32 = row.iter().sum();
                for (j, &pj) in row.iter().enumerate() {
                    let t = target_at(op, yd, r, j, classes);
                    if t != 0.0 {
                        let q = (pj / s).clamp(EPSILON, 1.0 - EPSILON);
                        total -= weight(r) * (t * q.ln()) as f64;
                    }
                }
            }
        }
        LossOp::SigmoidBinaryCrossEntropy => {
            for (k, (&z, &t)) in pd.iter().zip(yd).enumerate() {
                total +=
                    weight(k / classes) * (z.max(0.0) - z * t + (-z.abs()).exp().ln_1p()) as f64;
            }
        }
        LossOp::BinaryCrossEntropy => {
            for (k, (&p, &t)) in pd.iter().zip(yd).enumerate() {
                let p = p.clamp(EPSILON, 1.0 - EPSILON);
                total -= weight(k / classes) * (t * p.ln() + (1.0 - t) * (1.0 - p).ln()) as f64;
            }
        }
        LossOp::MeanSquaredError => {
            for (k, (&p, &t)) in pd.iter().zip(yd).enumerate() {
                total += weight(k / classes) * ((p - t) * (p - t)) as f64;
            }
        }
    }
    let count = if op.per_row() { rows } else { pd.len() };
    (total / count.max(1) as f64) as f32
}

/// The gradient of [`loss`] with respect to the predictions, from the loss's gradient
/// `grad_loss` and the `probs` it left: written into `dx`, or added when accumulating.
#[allow(clippy::too_many_arguments)]
pub fn loss_backward(
    op: LossOp,
    pd: &[f32],
    classes: usize,
    yd: &[f32],
    weights: Option<&[f32]>,
    probs: &[f32],
    grad_loss: f32,
    dx: &mut Tensor,
    accumulate: bool,
) {
    let dx = dx.data_mut();
    let weight = |r: usize| weights.map_or(1.0, |w| w[r]);
    let rows = pd.len() / classes.max(1);
    let count = if op.per_row() { rows } else { pd.len() };
    let scale = grad_loss / count.max(1) as f32;
    let at = |k: usize| (k / classes, k % classes);
    match op {
        LossOp::SoftmaxCrossEntropy | LossOp::SparseSoftmaxCrossEntropy => {
            // d/dz of -Σ t log softmax(z) = p · Σt - t
            let row_sums: Vec<f32> = (0..rows)
                .map(|r| match op.is_sparse() {
                    true => 1.0,
                    false => yd[r * classes..(r + 1) * classes].iter().sum(),
                })
                .collect();
            store(
                dx,
                (0..pd.len()).map(|k| {
                    let (r, j) = at(k);
                    scale * weight(r) * (probs[k] * row_sums[r] - target_at(op, yd, r, j, classes))
                }),
                accumulate,
            );
        }
        LossOp::CrossEntropy | LossOp::SparseCrossEntropy => {
            // q = p / s, loss = -Σ t log q. With c_j = t_j / q_j (0 where q is clipped):
            // d loss / d p_k = -(c_k - Σ_j c_j q_j) / s
            let sums: Vec<f32> = pd.chunks(classes).map(|row| row.iter().sum()).collect();
            let c = |k: usize| {
                let (r, j) = at(k);
                let q = pd[k] / sums[r];
                if q > EPSILON && q < 1.0 - EPSILON {
                    target_at(op, yd, r, j, classes) / q
                } else {
                    0.0
                }
            };
            let cq: Vec<f32> = (0..rows)
                .map(|r| {
                    (r * classes..(r + 1) * classes)
                        .map(|k| c(k) * pd[k] / sums[r])
                        .sum()
                })
                .collect();
            store(
                dx,
                (0..pd.len()).map(|k| {
                    let r = k / classes;
                    -scale * weight(r) * (c(k) - cq[r]) / sums[r]
                }),
                accumulate,
            );
        }
        LossOp::SigmoidBinaryCrossEntropy => {
            store(
                dx,
                pd.iter()
                    .zip(yd)
                    .enumerate()
                    .map(|(k, (&z, &t))| scale * weight(k / classes) * (sigmoid(z) - t)),
                accumulate,
            );
        }
        LossOp::BinaryCrossEntropy => {
            store(
                dx,
                pd.iter().zip(yd).enumerate().map(|(k, (&p, &t))| {
                    if p > EPSILON && p < 1.0 - EPSILON {
                        -scale * weight(k / classes) * (t / p - (1.0 - t) / (1.0 - p))
                    } else {
                        0.0
                    }
                }),
                accumulate,
            );
        }
        LossOp::MeanSquaredError => {
            store(
                dx,
                pd.iter()
                    .zip(yd)
                    .enumerate()
                    .map(|(k, (&p, &t))| scale * weight(k / classes) * 2.0 * (p - t)),
                accumulate,
            );
        }
    }
}

/// The target for row `r`, class `j`: read directly, or 1/0 from a class index.
#[inline]
fn target_at(op: LossOp, y: &[f32], r: usize, j: usize, classes: usize) -> f32 {
    if op.is_sparse() {
        (y[r] as usize == j) as u8 as f32
    } else {
        y[r * classes + j]
    }
}

fn check_target(op: LossOp, prediction: &[usize], target: &Tensor) -> Result<()> {
    let classes = *prediction.last().unwrap_or(&1);
    let rows: usize = prediction.iter().product::<usize>() / classes.max(1);
    if op.is_sparse() {
        if target.len() != rows {
            return Err(Error::shape(
                "loss",
                format!(
                    "sparse targets need one class index per row: prediction {prediction:?}, targets {:?}",
                    target.shape()
                ),
            ));
        }
        if let Some(bad) = target
            .data()
            .iter()
            .find(|&&t| !(t >= 0.0 && t.fract() == 0.0 && (t as usize) < classes))
        {
            return Err(Error::invalid(format!(
                "class index {bad} is not an integer in 0..{classes}"
            )));
        }
    } else if target.shape() != prediction {
        return Err(Error::shape(
            "loss",
            format!(
                "prediction {prediction:?} and target {:?} differ",
                target.shape()
            ),
        ));
    }
    Ok(())
}

/// One sample's softmax cross-entropy in f64, for full-batch solvers: `z` holds the logits
/// and becomes the probabilities; returns −log p(label), computed stably as
/// log Σ exp(z − max) + max − z[label].
pub fn softmax_cross_entropy_f64(z: &mut [f64], label: usize) -> f64 {
    let top = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let total: f64 = z.iter().map(|zi| (zi - top).exp()).sum();
    let loss = total.ln() + top - z[label];
    z.iter_mut().for_each(|zi| *zi = (*zi - top).exp() / total);
    loss
}

/// log softmax(`logits`) in f64, exact for confident rows: the largest logit's
/// log-probability is −log1p(Σ others' e^(z − max)), so a margin of 40 gives −4e-18, not the 0
/// that log Σ e^(z − max) rounds to.
pub fn log_softmax_f64(logits: &[f32]) -> Vec<f64> {
    let top = super::argmax(logits);
    let max = logits[top] as f64;
    let rest: f64 = logits
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != top)
        .map(|(_, &v)| (v as f64 - max).exp())
        .sum();
    let log_total = rest.ln_1p();
    logits.iter().map(|&v| v as f64 - max - log_total).collect()
}

/// Binary cross-entropy of a sigmoid output from its logit `z` against target `t`, in f64:
/// t · softplus(−z) + (1 − t) · softplus(z), exact for confident predictions.
pub fn sigmoid_cross_entropy_f64(z: f32, t: f32) -> f64 {
    let softplus = |x: f64| x.max(0.0) + (-x.abs()).exp().ln_1p();
    let (z, t) = (z as f64, t as f64);
    t * softplus(-z) + (1.0 - t) * softplus(z)
}

/// −log softmax(`logits`)[`label`] in f64: a language model's next-token loss, summed for
/// perplexity.
pub fn logits_nll_f64(logits: &[f32], label: usize) -> f64 {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    let sum: f64 = logits.iter().map(|&v| (v as f64 - max).exp()).sum();
    max + sum.ln() - logits[label] as f64
}
