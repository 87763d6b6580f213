//! Matrix products: plain `matmul`, and the fused dense op `activation(x · w + b)`.

use crate::autograd::tape::{GradOut, Node, Scratch, Tape, Var};
use crate::error::Result;
use crate::tensor::activation::Activation;
use crate::tensor::linear::{
    bias_grad, linear, linear_dims, linear_per_sample_grads, linear_shape, matmul_dims,
};
use crate::tensor::matmul::{matmul_into, MatRef};

impl Tape {
    /// Matrix product of two 2-D tensors: (m, k) · (k, n) → (m, n).
    pub fn matmul(&mut self, a: Var, b: Var) -> Result<Var> {
        let (m, k, n) = matmul_dims(self.value(a).shape(), self.value(b).shape())?;
        let requires_grad = self.requires_grad(a) || self.requires_grad(b);
        let i = self.push(super::Op::MatMul(a, b), &[m, n], requires_grad);
        let (before, out) = self.split(i);
        matmul_into(
            &mut out.value,
            MatRef::new(before[a.0].value.data(), m, k),
            MatRef::new(before[b.0].value.data(), k, n),
            false,
        );
        Ok(Var(i))
    }

    /// The dense layer in one op: `activation(x · w + b)` over the last axis of `x`.
    /// x: (…, in), w: (in, units), b: (units) → (…, units).
    /// Fused: the bias is the product's starting value and the activation runs in place,
    /// so the layer writes its output once.
    pub fn linear(
        &mut self,
        x: Var,
        w: Var,
        b: Option<Var>,
        activation: Activation,
    ) -> Result<Var> {
        let (inputs, units) = linear_dims(
            self.value(x).shape(),
            self.value(w).shape(),
            b.map(|b| self.value(b).shape()),
        )?;
        if activation.needs_input() {
            // Its gradient needs the pre-activation values: record them as their own node.
            let z = self.linear(x, w, b, Activation::Linear)?;
            return self.activation(activation, z);
        }
        let rows = self.value(x).len() / inputs.max(1);
        let shape = linear_shape(self.value(x).shape(), units);
        let requires_grad = self.requires_grad(x)
            || self.requires_grad(w)
            || b.is_some_and(|b| self.requires_grad(b));
        let op = super::Op::Linear {
            x,
            w,
            b,
            activation,
        };
        let i = self.push(op, &shape, requires_grad);
        let (before, out) = self.split(i);
        linear(
            before[x.0].value.data(),
            before[w.0].value.data(),
            b.map(|b| before[b.0].value.data()),
            rows,
            inputs,
            units,
            activation,
            &mut out.value,
        );
        Ok(Var(i))
    }
}

pub(crate) fn backward_matmul(a: Var, b: Var, out: &Node, nodes: &mut [Node]) {
    let g = out.grad.data();
    let (m, k) = (nodes[a.0].value.shape()[0], nodes[a.0].value.shape()[1]);
    let n = nodes[b.0].value.shape()[1];
    if let Some(mut grad) = GradOut::take(nodes, a) {
        // da = g · bᵀ
        let acc = grad.accumulate;
        let bv = MatRef::new(nodes[b.0].value.data(), k, n);
        matmul_into(&mut grad.buf, MatRef::new(g, m, n), bv.t(), acc);
        grad.put(nodes);
    }
    if let Some(mut grad) = GradOut::take(nodes, b) {
        // db = aᵀ · g
        let acc = grad.accumulate;
        let av = MatRef::new(nodes[a.0].value.data(), m, k);
        matmul_into(&mut grad.buf, av.t(), MatRef::new(g, m, n), acc);
        grad.put(nodes);
    }
}

pub(crate) fn backward_linear(
    x: Var,
    w: Var,
    b: Option<Var>,
    activation: Activation,
    out: &Node,
    nodes: &mut [Node],
    scratch: &mut Scratch,
) {
    let per_example = scratch.per_example;
    let scratch = &mut scratch.first;
    let units = *out
        .value
        .shape()
        .last()
        .expect("dense output has a last axis");
    let inputs = nodes[w.0].value.shape()[0];
    let rows = out.value.len() / units.max(1);
    // dz: the gradient before the activation. For a linear activation it is the output's.
    let dz: &[f32] = if activation == Activation::Linear {
        out.grad.data()
    } else {
        scratch.resize(out.value.len(), 0.0);
        activation.backward(out.value.data(), out.grad.data(), scratch, units, false);
        scratch
    };
    let dz_mat = MatRef::new(dz, rows, units);
    // Per-example weights (see `Tape::backward_per_example`) keep each sample's xᵢᵀ · dzᵢ
    // and column sums apart; other weights take the batch's sums.
    let w_batch = super::per_example_weight(nodes, w, per_example);
    let b_batch = b.and_then(|b| super::per_example_weight(nodes, b, per_example));
    if let Some(batch) = w_batch.or(b_batch) {
        let mut w_grad = w_batch.and_then(|_| GradOut::take_per_example(nodes, w, batch));
        let mut b_grad = b
            .filter(|_| b_batch.is_some())
            .and_then(|b| GradOut::take_per_example(nodes, b, batch));
        let accumulate = super::per_example_accumulate([w_grad.as_mut(), b_grad.as_mut()]);
        linear_per_sample_grads(
            nodes[x.0].value.data(),
            dz,
            (batch, inputs, units),
            (
                w_grad.as_mut().map(|g| &mut g.buf),
                b_grad.as_mut().map(|g| &mut g.buf),
            ),
            accumulate,
        );
        for grad in [w_grad, b_grad].into_iter().flatten() {
            grad.put(nodes);
        }
    }
    if let Some(mut grad) = w_batch.is_none().then(|| GradOut::take(nodes, w)).flatten() {
        // dw = xᵀ · dz
        let acc = grad.accumulate;
        let xv = MatRef::new(nodes[x.0].value.data(), rows, inputs);
        matmul_into(&mut grad.buf, xv.t(), dz_mat, acc);
        grad.put(nodes);
    }
    if let Some(mut grad) = b
        .filter(|_| b_batch.is_none())
        .and_then(|b| GradOut::take_zeroed(nodes, b))
    {
        // db = column sums of dz
        bias_grad(dz, units, &mut grad.buf);
        grad.put(nodes);
    }
    if let Some(mut grad) = GradOut::take(nodes, x) {
        // dx = dz · wᵀ (skipped for inputs: the first layer never pays for it)
        let acc = grad.accumulate;
        let wv = MatRef::new(nodes[w.0].value.data(), inputs, units);
        matmul_into(&mut grad.buf, dz_mat, wv.t(), acc);
        grad.put(nodes);
    }
}

#[cfg(test)]
mod tests {
    use crate::autograd::gradcheck::check_gradients;
    use crate::tensor::activation::Activation;
    use crate::{Tape, Tensor};

    #[test]
    fn matmul_gradients_match_finite_differences() {
        check_gradients(&[&[3, 4], &[4, 2]], 7, |tape, v| tape.matmul(v[0], v[1])).unwrap();
    }

    #[test]
    fn linear_gradients_match_finite_differences() {
        for act in [
            Activation::Linear,
            Activation::Relu,
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::Softmax,
        ] {
            check_gradients(&[&[5, 3], &[3, 4], &[4]], 13, |tape, v| {
                tape.linear(v[0], v[1], Some(v[2]), act)
            })
            .unwrap_or_else(|e| panic!("{act:?}: {e}"));
            check_gradients(&[&[2, 3, 3], &[3, 2]], 17, |tape, v| {
                tape.linear(v[0], v[1], None, act)
            })
            .unwrap_or_else(|e| panic!("{act:?} without bias, rank 3: {e}"));
        }
    }

    #[test]
    fn linear_equals_matmul_plus_bias_by_hand() {
        let mut tape = Tape::new();
        let x = tape.constant(&Tensor::new(&[1, 2], vec![1., 2.]).unwrap());
        let w = tape.constant(&Tensor::new(&[2, 2], vec![1., -1., 2., 0.5]).unwrap());
        let b = tape.constant(&Tensor::new(&[2], vec![0.5, -3.]).unwrap());
        // [1, 2] · [[1, -1], [2, 0.5]] = [5, 0]; + b = [5.5, -3]; relu → [5.5, 0]
        let y = tape.linear(x, w, Some(b), Activation::Relu).unwrap();
        assert_eq!(tape.value(y).data(), &[5.5, 0.0]);
        let bad = tape.constant(&Tensor::zeros(&[1, 3]));
        assert!(tape.linear(bad, w, Some(b), Activation::Relu).is_err());
    }
}
