//! `TerminateOnNaN`: end training quietly when the loss stops being a number.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::train::{Callback, Control, Sequential};

/// Keras `TerminateOnNaN`. Without it, a NaN loss makes `fit` return an error; with it,
/// `fit` stops and returns the history so far.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminateOnNan {}

impl Callback for TerminateOnNan {
    fn on_batch_end(
        &mut self,
        _model: &mut Sequential,
        batch: usize,
        loss: f32,
    ) -> Result<Control> {
        if loss.is_finite() {
            Ok(Control::Continue)
        } else {
            eprintln!("Batch {batch}: invalid loss {loss}, terminating training");
            Ok(Control::Stop)
        }
    }
}
