//! Feature standardization for tensors of samples: each column to zero mean and unit
//! variance over the training rows (scikit-learn's `StandardScaler`), saved with the model.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::tensor::{stats, Tensor};

/// Per-column means and standard deviations fitted on training rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StandardScaler {
    pub mean: Vec<f32>,
    /// The population standard deviation, 1 for a constant column (left centred, unscaled).
    pub scale: Vec<f32>,
}

impl StandardScaler {
    /// Fits on the rows of `x` (samples, features).
    pub fn fit(x: &Tensor) -> Result<Self> {
        let width = x.row_len();
        let rows = x.shape().first().copied().unwrap_or(0);
        if rows == 0 || width == 0 {
            return Err(Error::invalid("cannot fit a scaler on no samples"));
        }
        let (mean, variance) = stats::column_moments(x.data(), width);
        let scale = variance
            .iter()
            .map(|v| {
                let std = v.sqrt();
                if std > 1e-12 {
                    std as f32
                } else {
                    1.0
                }
            })
            .collect();
        Ok(StandardScaler {
            mean: mean.into_iter().map(|m| m as f32).collect(),
            scale,
        })
    }

    /// `(x - mean) / scale`, column by column.
    pub fn transform(&self, x: &Tensor) -> Result<Tensor> {
        let width = self.mean.len();
        if x.row_len() != width {
            return Err(Error::invalid(format!(
                "the scaler was fitted on {width} features, these rows have {}",
                x.row_len()
            )));
        }
        let mut out = x.clone();
        out.standardize_columns(&self.mean, &self.scale);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standardizes_by_hand() {
        // Columns: 1, 2, 3 (mean 2, population std sqrt(2/3)) and a constant 5.
        let x = Tensor::new(&[3, 2], vec![1.0, 5.0, 2.0, 5.0, 3.0, 5.0]).unwrap();
        let scaler = StandardScaler::fit(&x).unwrap();
        assert_eq!(scaler.mean, [2.0, 5.0]);
        assert!((scaler.scale[0] - (2.0f32 / 3.0).sqrt()).abs() < 1e-6);
        assert_eq!(scaler.scale[1], 1.0);
        let y = scaler
            .transform(&Tensor::new(&[1, 2], vec![4.0, 6.0]).unwrap())
            .unwrap();
        assert!((y.data()[0] - 2.0 / (2.0f32 / 3.0).sqrt()).abs() < 1e-5);
        assert_eq!(y.data()[1], 1.0);
    }

    #[test]
    fn rows_of_another_width_are_an_error() {
        let scaler = StandardScaler::fit(&Tensor::new(&[2, 1], vec![0.0, 1.0]).unwrap()).unwrap();
        let err = scaler
            .transform(&Tensor::new(&[1, 2], vec![0.0, 0.0]).unwrap())
            .unwrap_err();
        assert!(err.to_string().contains("fitted on 1 features"), "{err}");
    }
}
