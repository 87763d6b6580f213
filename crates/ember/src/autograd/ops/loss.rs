//! Loss ops: a scalar from a batch of predictions and constant targets, averaged over the
//! batch as Keras does; the kernels are in `tensor::loss`.

use crate::autograd::tape::{GradOut, Node, Tape, Var};
use crate::error::Result;
pub use crate::tensor::loss::LossOp;
use crate::tensor::loss::{check_loss, loss, loss_backward};

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
        check_loss(
            op,
            self.value(prediction).shape(),
            self.value(target),
            weights.map(|w| self.value(w).len()),
        )?;
        let requires_grad = self.requires_grad(prediction);
        let node = super::Op::Loss {
            op,
            prediction,
            target,
            weights,
        };
        let i = self.push(node, &[], requires_grad);
        let (before, out) = self.split(i);
        let p = &before[prediction.0].value;
        let classes = *p.shape().last().unwrap_or(&1);
        let y = before[target.0].value.data();
        let w = weights.map(|w| before[w.0].value.data());
        let value = loss(op, p.data(), classes, y, w, &mut out.aux);
        out.value.fill(value);
        Ok(Var(i))
    }
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
    let acc = grad.accumulate;
    let p = &nodes[prediction.0].value;
    let classes = *p.shape().last().unwrap_or(&1);
    let y = nodes[target.0].value.data();
    let w = weights.map(|w| nodes[w.0].value.data());
    let (probs, grad_loss) = (&out.aux, out.grad.data()[0]);
    let dx = &mut grad.buf;
    loss_backward(op, p.data(), classes, y, w, probs, grad_loss, dx, acc);
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
