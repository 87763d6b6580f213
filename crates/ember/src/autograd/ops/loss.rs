//! Loss ops: a scalar from a batch of predictions and constant targets, averaged over the
//! batch as Keras does. The cross-entropies that start from logits are fused with their
//! softmax / sigmoid: stable for any logit, and the gradient is simply `p - y`.

use crate::autograd::tape::{GradOut, Node, Tape, Var};
use crate::error::{Error, Result};
use crate::tensor::activation::{log_sum_exp, sigmoid, softmax_in_place};

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
    fn is_sparse(self) -> bool {
        matches!(
            self,
            LossOp::SparseSoftmaxCrossEntropy | LossOp::SparseCrossEntropy
        )
    }

    /// Averaged per row (cross-entropies over classes) rather than per element.
    fn per_row(self) -> bool {
        matches!(
            self,
            LossOp::SoftmaxCrossEntropy
                | LossOp::SparseSoftmaxCrossEntropy
                | LossOp::CrossEntropy
                | LossOp::SparseCrossEntropy
        )
    }
}

impl Tape {
    /// Records `op(prediction, target)`; `target` is treated as a constant.
    pub fn loss(&mut self, op: LossOp, prediction: Var, target: Var) -> Result<Var> {
        self.weighted_loss(op, prediction, target, None)
    }

    /// Like [`Tape::loss`], with each sample's term multiplied by `weights` (one constant per
    /// sample, e.g. class weights). The mean still divides by the batch size, as Keras does.
    pub fn weighted_loss(
        &mut self,
        op: LossOp,
        prediction: Var,
        target: Var,
        weights: Option<Var>,
    ) -> Result<Var> {
        check_target(op, self.value(prediction).shape(), self.value(target))?;
        let pshape = self.value(prediction).shape();
        let rows = pshape.iter().product::<usize>() / pshape.last().copied().unwrap_or(1).max(1);
        if let Some(w) = weights {
            if self.value(w).len() != rows {
                return Err(Error::shape(
                    "loss",
                    format!("{} sample weights for {rows} samples", self.value(w).len()),
                ));
            }
        }
        let requires_grad = self.requires_grad(prediction);
        let node = super::Op::Loss {
            op,
            prediction,
            target,
            weights,
        };
        let i = self.push(node, &[], requires_grad);
        let (before, out) = self.split(i);
        let (p, y) = (&before[prediction.0].value, &before[target.0].value);
        let weight = |r: usize| weights.map_or(1.0, |w| before[w.0].value.data()[r] as f64);
        let classes = *p.shape().last().unwrap_or(&1);
        let (pd, yd) = (p.data(), y.data());
        let rows = pd.len() / classes.max(1);
        let mut total = 0.0f64;
        match op {
            LossOp::SoftmaxCrossEntropy | LossOp::SparseSoftmaxCrossEntropy => {
                // Keep the probabilities for the backward pass.
                out.aux.clear();
                out.aux.extend_from_slice(pd);
                for (r, (z, probs)) in pd
                    .chunks(classes)
                    .zip(out.aux.chunks_mut(classes))
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
                    total += weight(k / classes)
                        * (z.max(0.0) - z * t + (-z.abs()).exp().ln_1p()) as f64;
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
        out.value.data_mut()[0] = (total / count.max(1) as f64) as f32;
        Ok(Var(i))
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

fn check_target(op: LossOp, prediction: &[usize], target: &crate::Tensor) -> Result<()> {
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

pub(crate) fn backward(
    op: LossOp,
    prediction: Var,
    target: Var,
    weights: Option<Var>,
    out: &Node,
    nodes: &mut [Node],
) {
    let Some(mut grad) = GradOut::take(nodes, prediction) else {
        return;
    };
    let (p, y) = (&nodes[prediction.0].value, &nodes[target.0].value);
    let weight = |r: usize| weights.map_or(1.0, |w| nodes[w.0].value.data()[r]);
    let classes = *p.shape().last().unwrap_or(&1);
    let (pd, yd) = (p.data(), y.data());
    let rows = pd.len() / classes.max(1);
    let count = if op.per_row() { rows } else { pd.len() };
    let scale = out.grad.data()[0] / count.max(1) as f32;
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
            grad.fill_from((0..pd.len()).map(|k| {
                let (r, j) = at(k);
                scale * weight(r) * (out.aux[k] * row_sums[r] - target_at(op, yd, r, j, classes))
            }));
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
            grad.fill_from((0..pd.len()).map(|k| {
                let r = k / classes;
                -scale * weight(r) * (c(k) - cq[r]) / sums[r]
            }));
        }
        LossOp::SigmoidBinaryCrossEntropy => {
            grad.fill_from(
                pd.iter()
                    .zip(yd)
                    .enumerate()
                    .map(|(k, (&z, &t))| scale * weight(k / classes) * (sigmoid(z) - t)),
            );
        }
        LossOp::BinaryCrossEntropy => {
            grad.fill_from(pd.iter().zip(yd).enumerate().map(|(k, (&p, &t))| {
                if p > EPSILON && p < 1.0 - EPSILON {
                    -scale * weight(k / classes) * (t / p - (1.0 - t) / (1.0 - p))
                } else {
                    0.0
                }
            }));
        }
        LossOp::MeanSquaredError => {
            grad.fill_from(
                pd.iter()
                    .zip(yd)
                    .enumerate()
                    .map(|(k, (&p, &t))| scale * weight(k / classes) * 2.0 * (p - t)),
            );
        }
    }
    grad.put(nodes);
}

#[cfg(test)]
mod tests {
    use super::LossOp;
    use crate::autograd::gradcheck::check_gradients_with;
    use crate::{Tape, Tensor};

    fn loss_value(op: LossOp, p: &[f32], shape: &[usize], y: Tensor) -> f32 {
        let mut tape = Tape::new();
        let p = tape.constant(&Tensor::new(shape, p.to_vec()).unwrap());
        let y = tape.constant(&y);
        let l = tape.loss(op, p, y).unwrap();
        tape.value(l).item().unwrap()
    }

    #[test]
    fn hand_computed_values() {
        let onehot = Tensor::new(&[2, 3], vec![0., 0., 1., 1., 0., 0.]).unwrap();
        let labels = Tensor::new(&[2], vec![2., 0.]).unwrap();
        // logits rows [1, 2, 3] and [0, 0, 0]:
        // row 1: log(e + e² + e³) - 3 = 0.40760596; row 2: log 3 = 1.09861229
        let expected = (0.407_605_96 + 1.098_612_3) / 2.0;
        let z = [1., 2., 3., 0., 0., 0.];
        for (op, y) in [
            (LossOp::SoftmaxCrossEntropy, onehot.clone()),
            (LossOp::SparseSoftmaxCrossEntropy, labels.clone()),
        ] {
            assert!((loss_value(op, &z, &[2, 3], y) - expected).abs() < 1e-6);
        }
        // probabilities [0.2, 0.3, 0.5] and [0.6, 0.2, 0.2]: -(ln 0.5 + ln 0.6) / 2
        let p = [0.2, 0.3, 0.5, 0.6, 0.2, 0.2];
        let expected = -(0.5f32.ln() + 0.6f32.ln()) / 2.0;
        assert!((loss_value(LossOp::CrossEntropy, &p, &[2, 3], onehot) - expected).abs() < 1e-6);
        assert!(
            (loss_value(LossOp::SparseCrossEntropy, &p, &[2, 3], labels) - expected).abs() < 1e-6
        );
        // BCE of p = [0.9, 0.2] against [1, 0]: -(ln 0.9 + ln 0.8) / 2
        let y = Tensor::new(&[2, 1], vec![1., 0.]).unwrap();
        let expected = -(0.9f32.ln() + 0.8f32.ln()) / 2.0;
        assert!(
            (loss_value(LossOp::BinaryCrossEntropy, &[0.9, 0.2], &[2, 1], y.clone()) - expected)
                .abs()
                < 1e-6
        );
        // the same from logits: logit(0.9) = ln 9, logit(0.2) = -ln 4
        let z = [9f32.ln(), -(4f32.ln())];
        assert!(
            (loss_value(LossOp::SigmoidBinaryCrossEntropy, &z, &[2, 1], y.clone()) - expected)
                .abs()
                < 1e-6
        );
        // MSE of [1, 4] against [1, 0] = 16 / 2
        assert_eq!(
            loss_value(LossOp::MeanSquaredError, &[1., 4.], &[2, 1], y),
            8.0
        );
    }

    #[test]
    fn sample_weights_scale_each_term() {
        // Rows with losses l0, l1 and weights 2, 0.5: (2 l0 + 0.5 l1) / 2.
        let p = Tensor::new(&[2, 1], vec![1.0, 4.0]).unwrap();
        let y = Tensor::new(&[2, 1], vec![0.0, 2.0]).unwrap();
        let w = Tensor::new(&[2], vec![2.0, 0.5]).unwrap();
        let mut tape = Tape::new();
        let (pv, yv, wv) = (tape.constant(&p), tape.constant(&y), tape.constant(&w));
        let l = tape
            .weighted_loss(LossOp::MeanSquaredError, pv, yv, Some(wv))
            .unwrap();
        assert_eq!(tape.value(l).item().unwrap(), (2.0 * 1.0 + 0.5 * 4.0) / 2.0);
        let short = tape.constant(&Tensor::new(&[1], vec![1.0]).unwrap());
        assert!(tape
            .weighted_loss(LossOp::MeanSquaredError, pv, yv, Some(short))
            .is_err());
    }

    #[test]
    fn logits_losses_are_stable_for_huge_logits() {
        let y = Tensor::new(&[1, 2], vec![1., 0.]).unwrap();
        let v = loss_value(LossOp::SoftmaxCrossEntropy, &[1000., -1000.], &[1, 2], y);
        assert_eq!(v, 0.0);
        let y = Tensor::new(&[1, 1], vec![0.]).unwrap();
        let v = loss_value(LossOp::SigmoidBinaryCrossEntropy, &[100.], &[1, 1], y);
        assert!((v - 100.0).abs() < 1e-4);
    }

    #[test]
    fn bad_targets_are_errors() {
        let mut tape = Tape::new();
        let p = tape.constant(&Tensor::zeros(&[2, 3]));
        let wrong_shape = tape.constant(&Tensor::zeros(&[2, 2]));
        assert!(tape
            .loss(LossOp::SoftmaxCrossEntropy, p, wrong_shape)
            .is_err());
        let out_of_range = tape.constant(&Tensor::new(&[2], vec![0., 3.]).unwrap());
        assert!(tape
            .loss(LossOp::SparseSoftmaxCrossEntropy, p, out_of_range)
            .is_err());
        let fractional = tape.constant(&Tensor::new(&[2], vec![0.5, 1.]).unwrap());
        assert!(tape
            .loss(LossOp::SparseCrossEntropy, p, fractional)
            .is_err());
    }

    #[test]
    fn loss_gradients_match_finite_differences() {
        let onehot = Tensor::new(
            &[3, 4],
            vec![0., 1., 0., 0., 1., 0., 0., 0., 0., 0., 0., 1.],
        )
        .unwrap();
        let labels = Tensor::new(&[3], vec![1., 0., 3.]).unwrap();
        let soft = Tensor::new(
            &[3, 4],
            vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.5, 0., 0., 0.25, 0.25, 0.25, 0.25],
        )
        .unwrap();
        let binary = Tensor::new(
            &[3, 4],
            vec![1., 0., 1., 1., 0., 0., 1., 0., 1., 1., 0., 0.],
        )
        .unwrap();
        let cases = [
            (LossOp::SoftmaxCrossEntropy, onehot.clone()),
            (LossOp::SoftmaxCrossEntropy, soft),
            (LossOp::SparseSoftmaxCrossEntropy, labels.clone()),
            (LossOp::SigmoidBinaryCrossEntropy, binary.clone()),
            (LossOp::MeanSquaredError, binary.clone()),
        ];
        let weights = Tensor::new(&[3], vec![0.5, 2.0, 1.5]).unwrap();
        for (op, y) in cases {
            check_gradients_with(&[&[3, 4]], 31, None, |tape, v| {
                let t = tape.constant(&y);
                tape.loss(op, v[0], t)
            })
            .unwrap_or_else(|e| panic!("{op:?}: {e}"));
            check_gradients_with(&[&[3, 4]], 41, None, |tape, v| {
                let t = tape.constant(&y);
                let w = tape.constant(&weights);
                tape.weighted_loss(op, v[0], t, Some(w))
            })
            .unwrap_or_else(|e| panic!("weighted {op:?}: {e}"));
        }
        // Probability losses need inputs in (0, 1): feed them through a sigmoid.
        for (op, y) in [
            (LossOp::CrossEntropy, onehot),
            (LossOp::SparseCrossEntropy, labels),
            (LossOp::BinaryCrossEntropy, binary),
        ] {
            check_gradients_with(&[&[3, 4]], 37, None, |tape, v| {
                let p = tape.sigmoid(v[0])?;
                let t = tape.constant(&y);
                tape.loss(op, p, t)
            })
            .unwrap_or_else(|e| panic!("{op:?}: {e}"));
            check_gradients_with(&[&[3, 4]], 43, None, |tape, v| {
                let p = tape.sigmoid(v[0])?;
                let t = tape.constant(&y);
                let w = tape.constant(&weights);
                tape.weighted_loss(op, p, t, Some(w))
            })
            .unwrap_or_else(|e| panic!("weighted {op:?}: {e}"));
        }
    }
}
