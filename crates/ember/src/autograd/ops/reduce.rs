//! Reductions (sum and mean of all elements) and reshaping.

use crate::autograd::tape::{GradOut, Node, Tape, Var};
use crate::error::{Error, Result};
use crate::tensor::numel;
use crate::tensor::reduce::{copy_backward, mean_factor, scaled_sum, scaled_sum_backward};

impl Tape {
    /// Sum of all elements, as a scalar.
    pub fn sum(&mut self, x: Var) -> Result<Var> {
        self.reduce(super::Op::Sum(x), x, 1.0)
    }

    /// Mean of all elements, as a scalar.
    pub fn mean(&mut self, x: Var) -> Result<Var> {
        let factor = mean_factor(self.value(x).len());
        self.reduce(super::Op::Mean(x), x, factor)
    }

    fn reduce(&mut self, op: super::Op, x: Var, factor: f32) -> Result<Var> {
        let i = self.push(op, &[], self.requires_grad(x));
        let (before, out) = self.split(i);
        out.value.fill(scaled_sum(before[x.0].value.data(), factor));
        Ok(Var(i))
    }

    /// The same values under a new shape with the same number of elements.
    pub fn reshape(&mut self, x: Var, shape: &[usize]) -> Result<Var> {
        let from = self.value(x).shape();
        if crate::tensor::checked_numel(shape) != Some(numel(from)) {
            return Err(Error::shape(
                "reshape",
                format!("cannot reshape {from:?} into {shape:?}"),
            ));
        }
        let i = self.push(super::Op::Reshape(x), shape, self.requires_grad(x));
        let (before, out) = self.split(i);
        out.value.copy_from_slice(before[x.0].value.data());
        Ok(Var(i))
    }
}

/// Every input element receives `factor` times the output's gradient.
pub(crate) fn backward_sum(x: Var, factor: f32, out: &Node, nodes: &mut [Node]) {
    let Some(mut grad) = GradOut::take(nodes, x) else {
        return;
    };
    let acc = grad.accumulate;
    scaled_sum_backward(out.grad.data()[0], factor, &mut grad.buf, acc);
    grad.put(nodes);
}

pub(crate) fn backward_reshape(x: Var, out: &Node, nodes: &mut [Node]) {
    let Some(mut grad) = GradOut::take(nodes, x) else {
        return;
    };
    let acc = grad.accumulate;
    copy_backward(out.grad.data(), &mut grad.buf, acc);
    grad.put(nodes);
}

#[cfg(test)]
mod tests {
    use crate::autograd::gradcheck::check_gradients;

    #[test]
    fn reduction_and_reshape_gradients_match_finite_differences() {
        check_gradients(&[&[2, 3]], 1, |tape, v| tape.sum(v[0])).unwrap();
        check_gradients(&[&[2, 3]], 2, |tape, v| tape.mean(v[0])).unwrap();
        check_gradients(&[&[2, 3]], 3, |tape, v| tape.reshape(v[0], &[3, 2])).unwrap();
    }

    #[test]
    fn mean_value_and_bad_reshape() {
        let mut tape = crate::Tape::new();
        let x = tape.constant(&crate::Tensor::new(&[4], vec![1., 2., 3., 6.]).unwrap());
        let m = tape.mean(x).unwrap();
        assert_eq!(tape.value(m).item().unwrap(), 3.0);
        assert!(tape.reshape(x, &[3]).is_err());
    }
}
