//! The callback hooks `fit` calls, Keras's `keras.callbacks.Callback`. The callbacks
//! themselves (early stopping, checkpoints, schedules, …) live in `crate::callbacks`.

use super::history::{EpochLog, History};
use super::Model;
use crate::error::Result;

/// Whether training goes on after a callback has run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    Continue,
    Stop,
}

/// Hooks into the training loop. Epochs are numbered from 1, as printed.
pub trait Callback {
    fn on_train_begin(&mut self, _model: &mut Model) -> Result<()> {
        Ok(())
    }

    fn on_epoch_begin(&mut self, _model: &mut Model, _epoch: usize) -> Result<()> {
        Ok(())
    }

    /// After each gradient update, with the batch's loss.
    fn on_batch_end(&mut self, _model: &mut Model, _batch: usize, _loss: f32) -> Result<Control> {
        Ok(Control::Continue)
    }

    /// After each epoch's validation, with its metrics.
    fn on_epoch_end(&mut self, _model: &mut Model, _log: &EpochLog) -> Result<Control> {
        Ok(Control::Continue)
    }

    fn on_train_end(&mut self, _model: &mut Model, _history: &History) -> Result<()> {
        Ok(())
    }
}
