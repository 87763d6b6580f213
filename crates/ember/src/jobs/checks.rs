//! The settings the training jobs share, checked before anything is read; errors name the
//! options as the command line gives them.

use crate::error::{Error, Result};

/// Refuses a learning rate that is not a positive number.
pub fn learning_rate(rate: Option<f32>) -> Result<()> {
    match rate.filter(|r| !(r.is_finite() && *r > 0.0)) {
        Some(rate) => Err(Error::invalid(format!(
            "--learning-rate must be a positive number, got {rate}"
        ))),
        None => Ok(()),
    }
}

/// Refuses a share of the training rows for validation outside [0, 1).
pub fn validation_split(split: Option<f32>) -> Result<()> {
    match split.filter(|s| !(0.0..1.0).contains(s)) {
        Some(split) => Err(Error::invalid(format!(
            "--validation-split must be in [0, 1), got {split}"
        ))),
        None => Ok(()),
    }
}

/// Refuses a share of the rows or documents held out for the test outside (0, 1).
pub fn test_size(size: f32) -> Result<()> {
    match size > 0.0 && size < 1.0 {
        true => Ok(()),
        false => Err(Error::invalid(format!(
            "--test-size must be in (0, 1), got {size}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_settings_are_refused_by_name() {
        assert!(learning_rate(None).is_ok() && learning_rate(Some(0.01)).is_ok());
        for bad in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            let message = learning_rate(Some(bad)).unwrap_err().to_string();
            assert!(message.contains("--learning-rate must be a positive number"));
        }
        assert!(validation_split(Some(0.0)).is_ok() && validation_split(None).is_ok());
        for bad in [1.0, -0.1, f32::NAN] {
            let message = validation_split(Some(bad)).unwrap_err().to_string();
            assert!(message.contains("--validation-split must be in [0, 1)"));
        }
        assert!(test_size(0.2).is_ok());
        for bad in [0.0, 1.0, f32::NAN] {
            let message = test_size(bad).unwrap_err().to_string();
            assert!(message.contains("--test-size must be in (0, 1)"));
        }
    }
}
