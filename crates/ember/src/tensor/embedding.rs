//! Embedding kernels: rows of a table gathered by integer ids, and their gradient scattered back.

use super::Tensor;
use crate::error::{Error, Result};

/// Checks an embedding's operands, a table (vocabulary, dim) and ids (integers in
/// `0..vocabulary`, stored as f32): returns `dim`.
pub fn embedding_dim(table: &[usize], ids: &[f32]) -> Result<usize> {
    let &[vocabulary, dim] = table else {
        return Err(Error::shape(
            "embedding",
            format!("the table must be (vocabulary, dim), got {table:?}"),
        ));
    };
    if let Some(bad) = ids
        .iter()
        .find(|&&id| !(id >= 0.0 && id.fract() == 0.0 && (id as usize) < vocabulary))
    {
        return Err(Error::invalid(format!(
            "embedding id {bad} is not an integer in 0..{vocabulary}"
        )));
    }
    Ok(dim)
}

/// [`gather`] into a tensor shaped (…ids, dim).
pub fn embedding_lookup(table: &[f32], dim: usize, ids: &[f32], out: &mut Tensor) {
    gather(table, dim, ids, out.data_mut());
}

/// `out` (ids, dim) = the rows of `table` at `ids`.
pub fn gather(table: &[f32], dim: usize, ids: &[f32], out: &mut [f32]) {
    for (o, &id) in out.chunks_exact_mut(dim).zip(ids) {
        let id = id as usize;
        o.copy_from_slice(&table[id * dim..(id + 1) * dim]);
    }
}

/// The gradient of [`gather`]: each output row's gradient added onto the row it came from.
pub fn scatter_add(grad_out: &[f32], dim: usize, ids: &[f32], grad_table: &mut Tensor) {
    let grad_table = grad_table.data_mut();
    for (g, &id) in grad_out.chunks_exact(dim).zip(ids) {
        let id = id as usize;
        grad_table[id * dim..(id + 1) * dim]
            .iter_mut()
            .zip(g)
            .for_each(|(d, v)| *d += v);
    }
}
