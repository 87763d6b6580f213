//! Batched matrix products and fused multi-head scaled dot-product attention as recorded ops;
//! the kernels (and the layout they expect) are in `tensor::attention`.

use crate::autograd::tape::{GradOut, Node, Tape, Var};
use crate::error::Result;
use crate::tensor::attention::{
    attention, attention_backward, attention_dims, attention_probs_len, batch_matmul,
    batch_matmul_dims, batch_matmul_grad_a, batch_matmul_grad_b,
};

impl Tape {
    /// `a · b` for each of a batch of matrices: (batch, m, k) · (batch, k, n) → (batch, m, n).
    pub fn batch_matmul(&mut self, a: Var, b: Var) -> Result<Var> {
        let dims = batch_matmul_dims(self.value(a).shape(), self.value(b).shape())?;
        let [batch, m, _, n] = dims;
        let requires_grad = self.requires_grad(a) || self.requires_grad(b);
        let i = self.push(super::Op::BatchMatMul(a, b), &[batch, m, n], requires_grad);
        let (before, out) = self.split(i);
        let (av, bv) = (before[a.0].value.data(), before[b.0].value.data());
        batch_matmul(av, bv, dims, &mut out.value);
        Ok(Var(i))
    }

    /// Multi-head scaled dot-product attention over `heads` heads (see `tensor::attention`).
    pub fn attention(
        &mut self,
        q: Var,
        k: Var,
        v: Var,
        mask: Option<Var>,
        heads: usize,
    ) -> Result<Var> {
        let shape = self.value(q).shape().to_vec();
        let dims = attention_dims(
            &shape,
            self.value(k).shape(),
            self.value(v).shape(),
            mask.map(|m| self.value(m).shape()),
            heads,
        )?;
        let requires_grad = [q, k, v].iter().any(|&x| self.requires_grad(x));
        let i = self.push(
            super::Op::Attention { q, k, v, heads },
            &shape,
            requires_grad,
        );
        let (before, out) = self.split(i);
        out.aux.resize(attention_probs_len(dims, heads), 0.0);
        let inputs = (
            before[q.0].value.data(),
            before[k.0].value.data(),
            before[v.0].value.data(),
        );
        let mask = mask.map(|m| before[m.0].value.data());
        attention(inputs, mask, dims, heads, &mut out.value, &mut out.aux);
        Ok(Var(i))
    }
}

pub(crate) fn backward_attention(
    [q, k, v]: [Var; 3],
    heads: usize,
    out: &Node,
    nodes: &mut [Node],
) {
    let &[batch, seq, width] = out.value.shape() else {
        return;
    };
    let inputs = (
        nodes[q.0].value.data(),
        nodes[k.0].value.data(),
        nodes[v.0].value.data(),
    );
    let dims = [batch, seq, width];
    let grads = attention_backward(inputs, &out.aux, out.grad.data(), dims, heads);
    // One input at a time, so that q, k and v may be the same variable.
    for (which, var) in [q, k, v].into_iter().enumerate() {
        if let Some(mut grad) = GradOut::take(nodes, var) {
            let acc = grad.accumulate;
            grads.store(which, &mut grad.buf, acc);
            grad.put(nodes);
        }
    }
}

pub(crate) fn backward_batch_matmul(a: Var, b: Var, out: &Node, nodes: &mut [Node]) {
    let &[batch, m, n] = out.value.shape() else {
        return;
    };
    let dims = [batch, m, nodes[a.0].value.shape()[2], n];
    let g = out.grad.data();
    if let Some(mut grad) = GradOut::take(nodes, a) {
        let acc = grad.accumulate;
        batch_matmul_grad_a(g, nodes[b.0].value.data(), dims, &mut grad.buf, acc);
        grad.put(nodes);
    }
    if let Some(mut grad) = GradOut::take(nodes, b) {
        let acc = grad.accumulate;
        batch_matmul_grad_b(g, nodes[a.0].value.data(), dims, &mut grad.buf, acc);
        grad.put(nodes);
    }
}

#[cfg(test)]
mod tests {
    use crate::autograd::gradcheck::check_gradients;
    use crate::{Tape, Tensor};

    #[test]
    fn batch_matmul_by_hand_and_gradients() {
        let mut tape = Tape::new();
        let a = tape.constant(&Tensor::new(&[2, 1, 2], vec![1., 2., 3., 4.]).unwrap());
        let b = tape.constant(&Tensor::new(&[2, 2, 1], vec![5., 6., 7., 8.]).unwrap());
        let y = tape.batch_matmul(a, b).unwrap();
        assert_eq!(tape.value(y).data(), &[17., 53.]);
        assert!(tape.batch_matmul(a, a).is_err());
        check_gradients(&[&[3, 2, 4], &[3, 4, 5]], 8, |tape, v| {
            tape.batch_matmul(v[0], v[1])
        })
        .unwrap();
    }

    #[test]
    fn attention_by_hand() {
        // One head, two positions; equal scores → the mean of the values. With the second key
        // masked, every query reads the first value only.
        let mut tape = Tape::new();
        let q = tape.constant(&Tensor::new(&[1, 2, 2], vec![0., 0., 0., 0.]).unwrap());
        let v = tape.constant(&Tensor::new(&[1, 2, 2], vec![1., 2., 3., 4.]).unwrap());
        let y = tape.attention(q, q, v, None, 1).unwrap();
        assert_eq!(tape.value(y).data(), &[2., 3., 2., 3.]);
        let mask = tape.constant(&Tensor::new(&[1, 2], vec![1., 0.]).unwrap());
        let y = tape.attention(q, q, v, Some(mask), 1).unwrap();
        assert_eq!(tape.value(y).data(), &[1., 2., 1., 2.]);
        assert!(tape.attention(q, q, v, None, 3).is_err());
    }

    #[test]
    fn attention_gradients_match_finite_differences() {
        // Two samples, three positions, two heads of two; the second sample's last key masked.
        check_gradients(&[&[2, 3, 4], &[2, 3, 4], &[2, 3, 4]], 12, |tape, v| {
            let mask = tape.constant(&Tensor::new(&[2, 3], vec![1., 1., 1., 1., 1., 0.]).unwrap());
            tape.attention(v[0], v[1], v[2], Some(mask), 2)
        })
        .unwrap();
        // Self-attention: one variable as queries, keys and values.
        check_gradients(&[&[1, 3, 4]], 13, |tape, v| {
            tape.attention(v[0], v[0], v[0], None, 2)
        })
        .unwrap();
    }
}
