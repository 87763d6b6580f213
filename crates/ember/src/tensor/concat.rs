//! Joining and splitting along the last axis: the kernels of `Concatenate`.

use super::Tensor;
use crate::error::{Error, Result};

fn last(shape: &[usize]) -> usize {
    shape.last().copied().unwrap_or(1)
}

/// The shape of `a` and `b` joined along their last axis, or an error when other axes differ.
pub fn concat_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    if a.is_empty() || a.len() != b.len() || a[..a.len() - 1] != b[..b.len() - 1] {
        return Err(Error::shape(
            "concatenate",
            format!("cannot join {a:?} and {b:?} along the last axis"),
        ));
    }
    let mut shape = a.to_vec();
    *shape.last_mut().expect("checked non-empty") += last(b);
    Ok(shape)
}

/// Writes each row of `a` (rows of `a_width`) followed by the same row of `b` (rows of
/// `b_width`) into `out`.
pub fn concat_last(a: &[f32], a_width: usize, b: &[f32], b_width: usize, out: &mut Tensor) {
    let width = a_width + b_width;
    for (row, out) in out.data_mut().chunks_exact_mut(width.max(1)).enumerate() {
        out[..a_width].copy_from_slice(&a[row * a_width..(row + 1) * a_width]);
        out[a_width..].copy_from_slice(&b[row * b_width..(row + 1) * b_width]);
    }
}

/// The part of each row of `joined` (rows of `width`) from column `start`, `part_width` wide,
/// written into `part`, or added to it when `accumulate`: the gradient of one side of a
/// concatenation.
pub fn split_last(
    joined: &[f32],
    width: usize,
    start: usize,
    part_width: usize,
    part: &mut Tensor,
    accumulate: bool,
) {
    for (row, part) in part
        .data_mut()
        .chunks_exact_mut(part_width.max(1))
        .enumerate()
    {
        let from = &joined[row * width + start..row * width + start + part_width];
        if accumulate {
            part.iter_mut().zip(from).for_each(|(p, g)| *p += g);
        } else {
            part.copy_from_slice(from);
        }
    }
}
