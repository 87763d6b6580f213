//! Concatenation of two tensors along their last axis.

use crate::autograd::tape::{GradOut, Node, Tape, Var};
use crate::error::Result;
use crate::tensor::concat::{concat_last, concat_shape, split_last};

impl Tape {
    /// `a` and `b` side by side along the last axis: (…, m) and (…, n) → (…, m + n); every
    /// other axis must match.
    pub fn concat(&mut self, a: Var, b: Var) -> Result<Var> {
        let shape = concat_shape(self.value(a).shape(), self.value(b).shape())?;
        let requires_grad = self.requires_grad(a) || self.requires_grad(b);
        let (m, n) = (last(self.value(a).shape()), last(self.value(b).shape()));
        let i = self.push(super::Op::Concat(a, b), &shape, requires_grad);
        let (before, out) = self.split(i);
        concat_last(
            before[a.0].value.data(),
            m,
            before[b.0].value.data(),
            n,
            &mut out.value,
        );
        Ok(Var(i))
    }
}

fn last(shape: &[usize]) -> usize {
    shape.last().copied().unwrap_or(1)
}

pub(crate) fn backward_concat(a: Var, b: Var, out: &Node, nodes: &mut [Node]) {
    let (m, n) = (
        last(nodes[a.0].value.shape()),
        last(nodes[b.0].value.shape()),
    );
    for (v, start, width) in [(a, 0, m), (b, m, n)] {
        if let Some(mut grad) = GradOut::take(nodes, v) {
            let accumulate = grad.accumulate;
            split_last(
                out.grad.data(),
                m + n,
                start,
                width,
                &mut grad.buf,
                accumulate,
            );
            grad.put(nodes);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::autograd::gradcheck::check_gradients;
    use crate::autograd::Tape;
    use crate::Tensor;

    #[test]
    fn joins_rows_and_passes_gradients_back() {
        let mut tape = Tape::new();
        let a = tape.constant(&Tensor::new(&[2, 1], vec![1.0, 2.0]).unwrap());
        let b = tape.constant(&Tensor::new(&[2, 2], vec![3.0, 4.0, 5.0, 6.0]).unwrap());
        let c = tape.concat(a, b).unwrap();
        assert_eq!(tape.value(c).shape(), &[2, 3]);
        assert_eq!(tape.value(c).data(), &[1.0, 3.0, 4.0, 2.0, 5.0, 6.0]);
        let flat = tape.value(b).clone().reshape(&[4]).unwrap();
        let flat = tape.constant(&flat);
        assert!(tape.concat(a, flat).is_err());
        check_gradients(&[&[3, 2], &[3, 4]], 1, |tape, v| tape.concat(v[0], v[1])).unwrap();
        // The same value on both sides: the gradients add up.
        check_gradients(&[&[2, 3]], 2, |tape, v| tape.concat(v[0], v[0])).unwrap();
    }
}
