//! Losses by their Keras names, and how each pairs with the model's output activation.

use serde::{Deserialize, Serialize};

use crate::autograd::{LossOp, Tape, Var};
use crate::error::Result;
use crate::metrics::AccuracyKind;
use crate::tensor::activation::Activation;
use crate::tensor::{forward, Tensor};

/// A training loss, named as in Keras (`loss="categorical_crossentropy"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// One-hot targets; the model outputs probabilities (softmax).
    CategoricalCrossentropy,
    /// Integer class targets; the model outputs probabilities (softmax).
    SparseCategoricalCrossentropy,
    /// 0/1 targets; the model outputs probabilities (sigmoid).
    BinaryCrossentropy,
    #[serde(alias = "mse")]
    MeanSquaredError,
}

impl Loss {
    pub fn name(self) -> &'static str {
        match self {
            Loss::CategoricalCrossentropy => "categorical_crossentropy",
            Loss::SparseCategoricalCrossentropy => "sparse_categorical_crossentropy",
            Loss::BinaryCrossentropy => "binary_crossentropy",
            Loss::MeanSquaredError => "mean_squared_error",
        }
    }

    /// Records the loss of a model whose last layer produced `logits` and ends with
    /// `activation`. Returns (loss, model output). A softmax (sigmoid) output with the
    /// matching cross-entropy is fused into one op computed from the logits, which is
    /// what Keras does too: exact for any logit, and cheaper.
    pub fn record(
        self,
        tape: &mut Tape,
        logits: Var,
        activation: Activation,
        target: Var,
    ) -> Result<(Var, Var)> {
        self.record_weighted(tape, logits, activation, target, None)
    }

    /// Like [`Loss::record`], each sample's term multiplied by its weight in `weights`.
    pub fn record_weighted(
        self,
        tape: &mut Tape,
        logits: Var,
        activation: Activation,
        target: Var,
        weights: Option<Var>,
    ) -> Result<(Var, Var)> {
        let (op, fused) = self.op(activation);
        let output = tape.activation(activation, logits)?;
        let prediction = if fused { logits } else { output };
        let loss = tape.weighted_loss(op, prediction, target, weights)?;
        Ok((loss, output))
    }

    /// The loss of `logits` (the output before `activation`) against `target`, without a
    /// tape: the same value [`Loss::record`] records. Returns (loss, model output).
    pub fn evaluate(
        self,
        logits: Tensor,
        activation: Activation,
        target: &Tensor,
    ) -> Result<(f32, Tensor)> {
        let (op, fused) = self.op(activation);
        if !fused {
            let output = forward::activation(activation, logits);
            return Ok((forward::loss(op, &output, target, None)?, output));
        }
        let loss = forward::loss(op, &logits, target, None)?;
        Ok((loss, forward::activation(activation, logits)))
    }

    /// The loss op for an output ending in `activation`, and whether it starts from the
    /// logits: a softmax (sigmoid) output with the matching cross-entropy is fused into one
    /// op, which is what Keras does too: exact for any logit, and cheaper.
    fn op(self, activation: Activation) -> (LossOp, bool) {
        match (self, activation) {
            (Loss::CategoricalCrossentropy, Activation::Softmax) => {
                (LossOp::SoftmaxCrossEntropy, true)
            }
            (Loss::SparseCategoricalCrossentropy, Activation::Softmax) => {
                (LossOp::SparseSoftmaxCrossEntropy, true)
            }
            (Loss::BinaryCrossentropy, Activation::Sigmoid) => {
                (LossOp::SigmoidBinaryCrossEntropy, true)
            }
            (Loss::CategoricalCrossentropy, _) => (LossOp::CrossEntropy, false),
            (Loss::SparseCategoricalCrossentropy, _) => (LossOp::SparseCrossEntropy, false),
            (Loss::BinaryCrossentropy, _) => (LossOp::BinaryCrossEntropy, false),
            (Loss::MeanSquaredError, _) => (LossOp::MeanSquaredError, false),
        }
    }

    /// Each sample's loss (Keras's `reduction="none"`) from the `logits` of an output that
    /// ends in `activation`, against `targets`. A cross-entropy fused with its activation is
    /// computed in f64 from the logits, exactly even for confident predictions (whose
    /// probabilities round to 1 and whose batch loss rounds to 0): what a membership-inference
    /// audit ranks. Other pairs are computed as [`Loss::evaluate`] computes a batch's.
    pub fn per_sample(
        self,
        logits: &Tensor,
        activation: Activation,
        targets: &Tensor,
    ) -> Result<Vec<f32>> {
        use crate::tensor::loss::{log_softmax_f64, sigmoid_cross_entropy_f64};
        let (op, fused) = self.op(activation);
        let rows = logits.rows();
        let width = logits.row_len().max(1);
        if fused {
            crate::tensor::loss::check_loss(op, logits.shape(), targets, None)?;
        }
        let z = logits.data().chunks(width);
        let t = targets.data();
        Ok(match (self, fused) {
            (Loss::CategoricalCrossentropy, true) => z
                .zip(t.chunks(width))
                .map(|(z, t)| {
                    let log_p = log_softmax_f64(z);
                    -t.iter()
                        .zip(&log_p)
                        .map(|(&t, &l)| f64::from(t) * l)
                        .sum::<f64>() as f32
                })
                .collect(),
            (Loss::SparseCategoricalCrossentropy, true) => z
                .zip(t)
                .map(|(z, &label)| -log_softmax_f64(z)[label as usize] as f32)
                .collect(),
            (Loss::BinaryCrossentropy, true) => logits
                .data()
                .iter()
                .zip(t)
                .map(|(&z, &t)| sigmoid_cross_entropy_f64(z, t) as f32)
                .collect(),
            _ => (0..rows)
                .map(|i| {
                    let (z, t) = (logits.slice_rows(i, i + 1)?, targets.slice_rows(i, i + 1)?);
                    Ok(self.evaluate(z, activation, &t)?.0)
                })
                .collect::<Result<Vec<f32>>>()?,
        })
    }

    /// Which accuracy "accuracy" means with this loss (Keras's rule): sparse for the sparse
    /// cross-entropy, binary for binary cross-entropy or a single output, else categorical.
    pub fn accuracy_kind(self, outputs: usize) -> AccuracyKind {
        match self {
            Loss::SparseCategoricalCrossentropy => AccuracyKind::Sparse,
            Loss::BinaryCrossentropy => AccuracyKind::Binary,
            _ if outputs == 1 => AccuracyKind::Binary,
            _ => AccuracyKind::Categorical,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sample_s_loss_is_the_batch_s_of_one_and_confident_ones_stay_apart() {
        let z = Tensor::new(&[3, 3], vec![2.0, 0.5, -1.0, 0.1, 0.1, 3.0, 30.0, 0.0, 0.0]).unwrap();
        let y = Tensor::new(&[3, 3], vec![1., 0., 0., 0., 1., 0., 1., 0., 0.]).unwrap();
        let each = Loss::CategoricalCrossentropy
            .per_sample(&z, Activation::Softmax, &y)
            .unwrap();
        let (batch, _) = Loss::CategoricalCrossentropy
            .evaluate(z.clone(), Activation::Softmax, &y)
            .unwrap();
        assert!(
            (each.iter().sum::<f32>() / 3.0 - batch).abs() < 1e-6,
            "{each:?}"
        );
        // A margin of 30: its probability rounds to 1 in f32, its loss (2e-13) does not vanish.
        assert!(
            (each[2] as f64 / (2.0 * (-30f64).exp()) - 1.0).abs() < 1e-5,
            "{each:?}"
        );
        let sparse = Tensor::new(&[3], vec![0., 1., 0.]).unwrap();
        let same = Loss::SparseCategoricalCrossentropy
            .per_sample(&z, Activation::Softmax, &sparse)
            .unwrap();
        assert_eq!(each, same);
        let binary = Tensor::new(&[2, 1], vec![40.0, -2.0]).unwrap();
        let labels = Tensor::new(&[2, 1], vec![1.0, 0.0]).unwrap();
        let bce = Loss::BinaryCrossentropy
            .per_sample(&binary, Activation::Sigmoid, &labels)
            .unwrap();
        assert!(
            (bce[0] as f64 / (-40f64).exp() - 1.0).abs() < 1e-5,
            "{bce:?}"
        );
        assert!(
            (bce[1] as f64 - (1.0 + (-2f64).exp()).ln()).abs() < 1e-6,
            "{bce:?}"
        );
        let mse = Loss::MeanSquaredError
            .per_sample(&z, Activation::Linear, &y)
            .unwrap();
        assert!((mse[0] - (1.0 + 0.25 + 1.0) / 3.0).abs() < 1e-6, "{mse:?}");
    }

    #[test]
    fn fused_and_unfused_paths_agree() {
        // A softmax output with categorical cross-entropy (fused) equals cross-entropy
        // computed on the softmax probabilities (unfused, via a linear output + softmax layer).
        let logits = Tensor::new(&[2, 3], vec![0.5, -1.0, 2.0, 0.1, 0.2, -0.3]).unwrap();
        let y = Tensor::new(&[2, 3], vec![0., 0., 1., 0., 1., 0.]).unwrap();
        let mut tape = Tape::new();
        let z = tape.param(logits);
        let t = tape.constant(&y);
        let (fused, out) = Loss::CategoricalCrossentropy
            .record(&mut tape, z, Activation::Softmax, t)
            .unwrap();
        let probs = tape.value(out).clone();
        let p = tape.constant(&probs);
        let (plain, _) = Loss::CategoricalCrossentropy
            .record(&mut tape, p, Activation::Linear, t)
            .unwrap();
        let (a, b) = (
            tape.value(fused).item().unwrap(),
            tape.value(plain).item().unwrap(),
        );
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }

    #[test]
    fn names_parse_like_keras() {
        let l: Loss = toml::Value::String("mse".into()).try_into().unwrap();
        assert_eq!(l, Loss::MeanSquaredError);
        assert_eq!(
            Loss::CategoricalCrossentropy.accuracy_kind(10),
            AccuracyKind::Categorical
        );
        assert_eq!(
            Loss::MeanSquaredError.accuracy_kind(1),
            AccuracyKind::Binary
        );
    }
}
