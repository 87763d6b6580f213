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

    /// Each sample's loss from the model's `outputs` (after its activation) and `targets`
    /// (Keras's `reduction="none"`): what a membership-inference audit ranks.
    pub fn per_sample(self, outputs: &Tensor, targets: &Tensor) -> Result<Vec<f32>> {
        let (op, _) = self.op(Activation::Linear);
        (0..outputs.rows())
            .map(|i| {
                let (o, t) = (outputs.slice_rows(i, i + 1)?, targets.slice_rows(i, i + 1)?);
                forward::loss(op, &o, &t, None)
            })
            .collect()
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
    fn each_sample_s_loss_averages_to_the_batch_s() {
        let p = Tensor::new(&[3, 3], vec![0.7, 0.2, 0.1, 0.1, 0.1, 0.8, 0.3, 0.3, 0.4]).unwrap();
        let y = Tensor::new(&[3, 3], vec![1., 0., 0., 0., 1., 0., 0., 0., 1.]).unwrap();
        let each = Loss::CategoricalCrossentropy.per_sample(&p, &y).unwrap();
        for (got, want) in each.iter().zip([0.7f32, 0.1, 0.4]) {
            assert!((got + want.ln()).abs() < 1e-6, "{each:?}");
        }
        let sparse = Tensor::new(&[3], vec![0., 1., 2.]).unwrap();
        let same = Loss::SparseCategoricalCrossentropy
            .per_sample(&p, &sparse)
            .unwrap();
        assert!(each.iter().zip(&same).all(|(a, b)| (a - b).abs() < 1e-6));
        let mse = Loss::MeanSquaredError.per_sample(&p, &y).unwrap();
        assert!(
            (mse[0] - (0.09 + 0.04 + 0.01) / 3.0).abs() < 1e-6,
            "{mse:?}"
        );
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
