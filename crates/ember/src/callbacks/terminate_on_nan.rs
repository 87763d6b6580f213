//! `TerminateOnNaN`: end training quietly when the loss stops being a number.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{Callback, Control, Model};

/// Keras `TerminateOnNaN`. Without it, a NaN loss makes `fit` return an error; with it,
/// `fit` stops and returns the history so far.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminateOnNan {}

impl Callback for TerminateOnNan {
    fn on_batch_end(&mut self, _model: &mut Model, batch: usize, loss: f32) -> Result<Control> {
        if loss.is_finite() {
            Ok(Control::Continue)
        } else {
            eprintln!("Batch {batch}: invalid loss {loss}, terminating training");
            Ok(Control::Stop)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

    #[test]
    fn stops_training_instead_of_failing() {
        let x = Tensor::new(&[4, 1], vec![1e18, -1e18, 1e18, -1e18]).unwrap();
        let y = Tensor::new(&[4, 1], vec![1e18, 0.0, 1e18, 0.0]).unwrap();
        let mut m = Sequential::new(&[1]);
        m.add(Dense::new(1)).unwrap();
        m.compile(Sgd::new(1.0), Loss::MeanSquaredError, &[])
            .unwrap();
        let options = FitOptions {
            epochs: 5,
            verbose: Verbosity::Silent,
            ..Default::default()
        };
        let history = m
            .fit_with_callbacks(&x, &y, &options, &mut [&mut TerminateOnNan::default()])
            .unwrap();
        assert!(history.stopped_early);
        assert!(history.epochs.len() < 5);
    }
}
