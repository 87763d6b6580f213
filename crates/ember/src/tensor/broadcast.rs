//! NumPy broadcasting for elementwise binary kernels.

use crate::error::{Error, Result};

/// The shape two operands broadcast to, aligning trailing axes; an axis of size 1 stretches.
///
/// ```
/// use ember::tensor::broadcast::broadcast_shape;
/// assert_eq!(broadcast_shape(&[4, 1, 3], &[5, 1]).unwrap(), vec![4, 5, 3]);
/// assert!(broadcast_shape(&[2, 3], &[4]).is_err());
/// ```
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for (i, size) in out.iter_mut().enumerate() {
        let da = axis_from_end(a, rank - 1 - i);
        let db = axis_from_end(b, rank - 1 - i);
        *size = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(Error::shape(
                    "broadcast",
                    format!("shapes {a:?} and {b:?} are not broadcastable"),
                ))
            }
        };
    }
    Ok(out)
}

/// Size of the axis `k` places from the end, 1 when the shape is shorter.
fn axis_from_end(shape: &[usize], k: usize) -> usize {
    if k < shape.len() {
        shape[shape.len() - 1 - k]
    } else {
        1
    }
}

/// Strides of `shape` read under `out_shape`: zero along broadcast axes.
fn broadcast_strides(shape: &[usize], out_shape: &[usize]) -> Vec<usize> {
    let rank = out_shape.len();
    let mut strides = vec![0; rank];
    let mut stride = 1;
    for k in 0..rank {
        let axis = rank - 1 - k;
        let size = axis_from_end(shape, k);
        strides[axis] = if size == 1 { 0 } else { stride };
        stride *= size;
    }
    strides
}

/// Calls `f(out_offset, a_offset, b_offset)` for every element of the broadcast output.
pub fn for_each_offset(
    out_shape: &[usize],
    a_shape: &[usize],
    b_shape: &[usize],
    mut f: impl FnMut(usize, usize, usize),
) {
    let total: usize = out_shape.iter().product();
    if a_shape == b_shape {
        (0..total).for_each(|i| f(i, i, i));
        return;
    }
    let a_strides = broadcast_strides(a_shape, out_shape);
    let b_strides = broadcast_strides(b_shape, out_shape);
    let rank = out_shape.len();
    let mut index = vec![0usize; rank];
    let (mut a_off, mut b_off) = (0usize, 0usize);
    for out in 0..total {
        f(out, a_off, b_off);
        // Advance the multi-index like an odometer, updating offsets incrementally.
        for axis in (0..rank).rev() {
            index[axis] += 1;
            a_off += a_strides[axis];
            b_off += b_strides[axis];
            if index[axis] < out_shape[axis] {
                break;
            }
            a_off -= a_strides[axis] * out_shape[axis];
            b_off -= b_strides[axis] * out_shape[axis];
            index[axis] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_follow_numpy_rules() {
        // a: (2, 3), b: (3,) -> b repeats for each row.
        let mut seen = Vec::new();
        for_each_offset(&[2, 3], &[2, 3], &[3], |o, a, b| seen.push((o, a, b)));
        assert_eq!(
            seen,
            vec![
                (0, 0, 0),
                (1, 1, 1),
                (2, 2, 2),
                (3, 3, 0),
                (4, 4, 1),
                (5, 5, 2)
            ]
        );
        // a: (2, 1), b: (1, 3) -> outer sum.
        let mut seen = Vec::new();
        for_each_offset(&[2, 3], &[2, 1], &[1, 3], |_, a, b| seen.push((a, b)));
        assert_eq!(seen, vec![(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]);
        // a scalar broadcasts everywhere.
        let mut seen = Vec::new();
        for_each_offset(&[2], &[], &[2], |_, a, b| seen.push((a, b)));
        assert_eq!(seen, vec![(0, 0), (0, 1)]);
    }
}
