//! Elementwise ops: broadcasting add / sub / mul / div, unary maths, and scaling.

use crate::autograd::tape::{GradOut, Node, Tape, Var};
use crate::error::Result;
use crate::tensor::broadcast::{broadcast_shape, for_each_offset};

/// Binary elementwise operations, with NumPy broadcasting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// Unary elementwise maths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Exp,
    /// Natural logarithm.
    Log,
    Sqrt,
    Square,
}

impl BinaryOp {
    fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
        }
    }

    /// (d out / d a, d out / d b) at (a, b).
    fn partials(self, a: f32, b: f32) -> (f32, f32) {
        match self {
            BinaryOp::Add => (1.0, 1.0),
            BinaryOp::Sub => (1.0, -1.0),
            BinaryOp::Mul => (b, a),
            BinaryOp::Div => (1.0 / b, -a / (b * b)),
        }
    }
}

impl UnaryOp {
    fn apply(self, x: f32) -> f32 {
        match self {
            UnaryOp::Neg => -x,
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => x.ln(),
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Square => x * x,
        }
    }

    /// d out / d x, from the input x and the output y.
    fn derivative(self, x: f32, y: f32) -> f32 {
        match self {
            UnaryOp::Neg => -1.0,
            UnaryOp::Exp => y,
            UnaryOp::Log => 1.0 / x,
            UnaryOp::Sqrt => 0.5 / y,
            UnaryOp::Square => 2.0 * x,
        }
    }
}

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
        let (ad, bd) = (av.data(), bv.data());
        let od = out.value.data_mut();
        if av.shape() == bv.shape() {
            // No broadcasting: a straight zip, which vectorises.
            for ((o, &x), &y) in od.iter_mut().zip(ad).zip(bd) {
                *o = op.apply(x, y);
            }
        } else {
            for_each_offset(&shape, av.shape(), bv.shape(), |o, ia, ib| {
                od[o] = op.apply(ad[ia], bd[ib])
            });
        }
        Ok(Var(i))
    }

    /// Any unary elementwise op.
    pub fn unary(&mut self, op: UnaryOp, x: Var) -> Result<Var> {
        let shape = self.value(x).shape().to_vec();
        let i = self.push(super::Op::Unary(op, x), &shape, self.requires_grad(x));
        let (before, out) = self.split(i);
        for (o, &v) in out
            .value
            .data_mut()
            .iter_mut()
            .zip(before[x.0].value.data())
        {
            *o = op.apply(v);
        }
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
        for (o, &v) in out
            .value
            .data_mut()
            .iter_mut()
            .zip(before[x.0].value.data())
        {
            *o = v * factor;
        }
        Ok(Var(i))
    }
}

pub(crate) fn backward_binary(op: BinaryOp, a: Var, b: Var, out: &Node, nodes: &mut [Node]) {
    let g = out.grad.data();
    let shape = out.value.shape();
    // Broadcast axes sum their gradient contributions, so these buffers always accumulate.
    for (which, var) in [(0, a), (1, b)] {
        let Some(mut grad) = GradOut::take_zeroed(nodes, var) else {
            continue;
        };
        let (av, bv) = (&nodes[a.0].value, &nodes[b.0].value);
        let (ad, bd) = (av.data(), bv.data());
        let gd = grad.buf.data_mut();
        for_each_offset(shape, av.shape(), bv.shape(), |o, ia, ib| {
            let (da, db) = op.partials(ad[ia], bd[ib]);
            if which == 0 {
                gd[ia] += g[o] * da;
            } else {
                gd[ib] += g[o] * db;
            }
        });
        grad.put(nodes);
    }
}

pub(crate) fn backward_unary(op: UnaryOp, x: Var, out: &Node, nodes: &mut [Node]) {
    let Some(mut grad) = GradOut::take(nodes, x) else {
        return;
    };
    let xd = nodes[x.0].value.data();
    let (yd, g) = (out.value.data(), out.grad.data());
    grad.fill_from(
        xd.iter()
            .zip(yd)
            .zip(g)
            .map(|((&x, &y), &g)| g * op.derivative(x, y)),
    );
    grad.put(nodes);
}

pub(crate) fn backward_scale(x: Var, factor: f32, out: &Node, nodes: &mut [Node]) {
    let Some(mut grad) = GradOut::take(nodes, x) else {
        return;
    };
    grad.fill_from(out.grad.data().iter().map(|&g| g * factor));
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
