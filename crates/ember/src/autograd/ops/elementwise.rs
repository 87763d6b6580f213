//! Elementwise ops: broadcasting add / sub / mul / div, unary maths, and scaling.

use crate::autograd::tape::{GradOut, Node, Tape, Var};
use crate::error::Result;
use crate::tensor::broadcast::broadcast_shape;
use crate::tensor::elementwise;
pub use crate::tensor::elementwise::{BinaryOp, UnaryOp};

impl Tape {
    /// `a + b` with broadcasting.
    pub fn add(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(BinaryOp::Add, a, b)
    }

    /// `a - b` with broadcasting.
    pub fn sub(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(BinaryOp::Sub, a, b)
    }

    /// `a * b` (elementwise) with broadcasting.
    pub fn mul(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(BinaryOp::Mul, a, b)
    }

    /// `a / b` (elementwise) with broadcasting.
    pub fn div(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(BinaryOp::Div, a, b)
    }

    /// Any binary elementwise op.
    pub fn binary(&mut self, op: BinaryOp, a: Var, b: Var) -> Result<Var> {
        let shape = broadcast_shape(self.value(a).shape(), self.value(b).shape())?;
        let requires_grad = self.requires_grad(a) || self.requires_grad(b);
        let i = self.push(super::Op::Binary(op, a, b), &shape, requires_grad);
        let (before, out) = self.split(i);
        let (av, bv) = (&before[a.0].value, &before[b.0].value);
        elementwise::binary(
            op,
            &shape,
            (av.data(), av.shape()),
            (bv.data(), bv.shape()),
            &mut out.value,
        );
        Ok(Var(i))
    }

    /// Any unary elementwise op.
    pub fn unary(&mut self, op: UnaryOp, x: Var) -> Result<Var> {
        let shape = self.value(x).shape().to_vec();
        let i = self.push(super::Op::Unary(op, x), &shape, self.requires_grad(x));
        let (before, out) = self.split(i);
        elementwise::unary(op, before[x.0].value.data(), &mut out.value);
        Ok(Var(i))
    }

    pub fn neg(&mut self, x: Var) -> Result<Var> {
        self.unary(UnaryOp::Neg, x)
    }

    pub fn exp(&mut self, x: Var) -> Result<Var> {
        self.unary(UnaryOp::Exp, x)
    }

    pub fn log(&mut self, x: Var) -> Result<Var> {
        self.unary(UnaryOp::Log, x)
    }

    pub fn sqrt(&mut self, x: Var) -> Result<Var> {
        self.unary(UnaryOp::Sqrt, x)
    }

    pub fn square(&mut self, x: Var) -> Result<Var> {
        self.unary(UnaryOp::Square, x)
    }

    /// `x * factor` for a constant `factor`.
    pub fn scale(&mut self, x: Var, factor: f32) -> Result<Var> {
        let shape = self.value(x).shape().to_vec();
        let i = self.push(super::Op::Scale(x, factor), &shape, self.requires_grad(x));
        let (before, out) = self.split(i);
        elementwise::scale(before[x.0].value.data(), factor, &mut out.value);
        Ok(Var(i))
    }
}

pub(crate) fn backward_binary(op: BinaryOp, a: Var, b: Var, out: &Node, nodes: &mut [Node]) {
    // Broadcast axes sum their gradient contributions, so these buffers always accumulate.
    for (which, var) in [(0, a), (1, b)] {
        let Some(mut grad) = GradOut::take_zeroed(nodes, var) else {
            continue;
        };
        let (av, bv) = (&nodes[a.0].value, &nodes[b.0].value);
        elementwise::binary_backward(
            op,
            which,
            out.value.shape(),
            (av.data(), av.shape()),
            (bv.data(), bv.shape()),
            out.grad.data(),
            &mut grad.buf,
        );
        grad.put(nodes);
    }
}

pub(crate) fn backward_unary(op: UnaryOp, x: Var, out: &Node, nodes: &mut [Node]) {
    let Some(mut grad) = GradOut::take(nodes, x) else {
        return;
    };
    let acc = grad.accumulate;
    let (xd, yd, g) = (nodes[x.0].value.data(), out.value.data(), out.grad.data());
    elementwise::unary_backward(op, xd, yd, g, &mut grad.buf, acc);
    grad.put(nodes);
}

pub(crate) fn backward_scale(x: Var, factor: f32, out: &Node, nodes: &mut [Node]) {
    let Some(mut grad) = GradOut::take(nodes, x) else {
        return;
    };
    let acc = grad.accumulate;
    elementwise::scale_backward(out.grad.data(), factor, &mut grad.buf, acc);
    grad.put(nodes);
}

#[cfg(test)]
mod tests {
    use crate::autograd::gradcheck::check_gradients;
    use crate::autograd::{BinaryOp, UnaryOp};
    use crate::tensor::Tensor;

    fn t(shape: &[usize], data: &[f32]) -> Tensor {
        Tensor::new(shape, data.to_vec()).unwrap()
    }

    #[test]
    fn forward_values_with_broadcasting() {
        let mut tape = crate::Tape::new();
        let a = tape.constant(&t(&[2, 2], &[1., 2., 3., 4.]));
        let b = tape.constant(&t(&[2], &[10., 20.]));
        let s = tape.add(a, b).unwrap();
        assert_eq!(tape.value(s).data(), &[11., 22., 13., 24.]);
        let d = tape.div(b, a).unwrap();
        assert_eq!(tape.value(d).data(), &[10., 10., 10. / 3., 5.]);
        let c = tape.constant(&t(&[3], &[1., 2., 3.]));
        assert!(tape.add(a, c).is_err());
    }

    #[test]
    fn binary_gradients_match_finite_differences() {
        let shapes: [(&[usize], &[usize]); 4] = [
            (&[2, 3], &[2, 3]),
            (&[2, 3], &[3]),
            (&[2, 1], &[1, 3]),
            (&[], &[2, 2]),
        ];
        for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div] {
            for (sa, sb) in shapes {
                check_gradients(&[sa, sb], 11, |tape, v| tape.binary(op, v[0], v[1]))
                    .unwrap_or_else(|e| panic!("{op:?} {sa:?} {sb:?}: {e}"));
            }
        }
    }

    #[test]
    fn same_input_twice_accumulates() {
        check_gradients(&[&[3]], 5, |tape, v| tape.mul(v[0], v[0])).unwrap();
    }

    #[test]
    fn unary_and_scale_gradients_match_finite_differences() {
        for op in [UnaryOp::Neg, UnaryOp::Exp, UnaryOp::Square] {
            check_gradients(&[&[2, 3]], 3, |tape, v| tape.unary(op, v[0])).unwrap();
        }
        // log and sqrt need positive inputs.
        for op in [UnaryOp::Log, UnaryOp::Sqrt] {
            check_gradients(&[&[2, 3]], 3, |tape, v| {
                let p = tape.square(v[0])?;
                let c = tape.constant(&crate::Tensor::scalar(0.5));
                let shifted = tape.add(p, c)?;
                tape.unary(op, shifted)
            })
            .unwrap();
        }
        check_gradients(&[&[4]], 3, |tape, v| tape.scale(v[0], -2.5)).unwrap();
    }
}
