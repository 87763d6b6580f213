//! Target encoders.

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// One-hot encodes integer class labels (Keras `to_categorical`): shape (n,) → (n, classes).
/// With `num_classes` None, uses the largest label + 1.
///
/// ```
/// let y = ember::Tensor::new(&[3], vec![0., 2., 1.]).unwrap();
/// let onehot = ember::to_categorical(&y, None).unwrap();
/// assert_eq!(onehot.data(), &[1., 0., 0., 0., 0., 1., 0., 1., 0.]);
/// ```
pub fn to_categorical(labels: &Tensor, num_classes: Option<usize>) -> Result<Tensor> {
    let mut classes = 0;
    for (i, &v) in labels.data().iter().enumerate() {
        if !(v >= 0.0 && v.fract() == 0.0) {
            return Err(Error::invalid(format!(
                "label {v} at index {i} is not a non-negative integer"
            )));
        }
        classes = classes.max(v as usize + 1);
    }
    if let Some(n) = num_classes {
        if classes > n {
            return Err(Error::invalid(format!(
                "label {} does not fit in {n} classes",
                classes - 1
            )));
        }
        classes = n;
    }
    let ones = labels
        .data()
        .iter()
        .enumerate()
        .map(|(r, &v)| (r * classes + v as usize, 1.0));
    Tensor::from_entries(&[labels.len(), classes], ones)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_labels() {
        let t = |v: Vec<f32>| Tensor::new(&[v.len()], v).unwrap();
        assert!(to_categorical(&t(vec![0., -1.]), None).is_err());
        assert!(to_categorical(&t(vec![0.5]), None).is_err());
        assert!(to_categorical(&t(vec![f32::NAN]), None).is_err());
        assert!(to_categorical(&t(vec![3.]), Some(3)).is_err());
        assert_eq!(
            to_categorical(&t(vec![1.]), Some(4)).unwrap().shape(),
            &[1, 4]
        );
    }
}
