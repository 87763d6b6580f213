//! Embedding lookup as a recorded op: rows of a table picked by integer ids; the gradient adds
//! each output row's gradient back onto the row it came from.

use crate::autograd::tape::{GradOut, Node, Tape, Var};
use crate::error::Result;
use crate::tensor::embedding::{embedding_dim, embedding_lookup, scatter_add};

impl Tape {
    /// Rows of `table` (vocabulary, dim) at the integer ids in `ids` (any shape, stored as
    /// f32): the output has shape `ids.shape + [dim]`. An id that is not an integer in
    /// `0..vocabulary` is an error naming it.
    pub fn embedding(&mut self, table: Var, ids: Var) -> Result<Var> {
        let dim = embedding_dim(self.value(table).shape(), self.value(ids).data())?;
        let mut shape = self.value(ids).shape().to_vec();
        shape.push(dim);
        let i = self.push(
            super::Op::Embedding { table, ids },
            &shape,
            self.requires_grad(table),
        );
        let (before, out) = self.split(i);
        let (rows, id_values) = (before[table.0].value.data(), before[ids.0].value.data());
        embedding_lookup(rows, dim, id_values, &mut out.value);
        Ok(Var(i))
    }
}

pub(crate) fn backward_embedding(table: Var, ids: Var, out: &Node, nodes: &mut [Node]) {
    let Some(mut grad) = GradOut::take_zeroed(nodes, table) else {
        return;
    };
    let dim = *grad.buf.shape().last().expect("a 2-D table");
    let id_values = nodes[ids.0].value.data();
    scatter_add(out.grad.data(), dim, id_values, &mut grad.buf);
    grad.put(nodes);
}

#[cfg(test)]
mod tests {
    use crate::autograd::gradcheck::check_gradients_with;
    use crate::{Tape, Tensor};

    #[test]
    fn looks_up_rows_and_rejects_bad_ids() {
        let mut tape = Tape::new();
        let table = tape.constant(&Tensor::new(&[3, 2], vec![0., 1., 10., 11., 20., 21.]).unwrap());
        let ids = tape.constant(&Tensor::new(&[2, 2], vec![2., 0., 1., 1.]).unwrap());
        let y = tape.embedding(table, ids).unwrap();
        assert_eq!(tape.value(y).shape(), &[2, 2, 2]);
        assert_eq!(
            tape.value(y).data(),
            &[20., 21., 0., 1., 10., 11., 10., 11.]
        );
        for bad in [3.0, -1.0, 0.5, f32::NAN] {
            let ids = tape.constant(&Tensor::new(&[1], vec![bad]).unwrap());
            assert!(tape.embedding(table, ids).is_err(), "{bad}");
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        // Id 1 appears twice: its row's gradient is the sum of both outputs' gradients.
        let table =
            Tensor::new(&[4, 3], (0..12).map(|i| (i as f32 * 0.3).sin()).collect()).unwrap();
        let ids = Tensor::new(&[2, 3], vec![1., 3., 1., 0., 2., 1.]).unwrap();
        check_gradients_with(&[], 3, Some(&[table]), |tape, v| {
            let ids = tape.constant(&ids);
            tape.embedding(v[0], ids)
        })
        .unwrap();
    }
}
