//! `EarlyStopping`: stop when a monitored metric has stopped improving.

use serde::{Deserialize, Serialize};

use super::monitor::{improves, value, Mode};
use crate::error::Result;
use crate::model::{Callback, Control, EpochLog, Model};
use crate::tensor::Tensor;

/// Keras `EarlyStopping`: monitor "val_loss", min_delta 0, patience 0, mode auto,
/// restore_best_weights false, no baseline, start_from_epoch 0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EarlyStopping {
    pub monitor: String,
    pub min_delta: f64,
    /// Epochs without improvement before stopping.
    pub patience: usize,
    pub mode: Mode,
    /// Training stops if the metric does not beat this value either.
    pub baseline: Option<f64>,
    /// On stopping, put back the weights of the best epoch.
    pub restore_best_weights: bool,
    /// Epochs to wait before monitoring starts.
    pub start_from_epoch: usize,
    #[serde(skip)]
    state: State,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct State {
    wait: usize,
    best: Option<f64>,
    best_epoch: usize,
    best_weights: Option<Vec<Tensor>>,
    stopped_epoch: Option<usize>,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        EarlyStopping {
            monitor: "val_loss".into(),
            min_delta: 0.0,
            patience: 0,
            mode: Mode::Auto,
            baseline: None,
            restore_best_weights: false,
            start_from_epoch: 0,
            state: State::default(),
        }
    }
}

impl EarlyStopping {
    pub fn new(monitor: &str, patience: usize) -> Self {
        EarlyStopping {
            monitor: monitor.into(),
            patience,
            ..Self::default()
        }
    }

    pub fn restore_best_weights(mut self, restore: bool) -> Self {
        self.restore_best_weights = restore;
        self
    }

    /// The epoch training stopped at, if it did.
    pub fn stopped_epoch(&self) -> Option<usize> {
        self.state.stopped_epoch
    }

    /// The epoch with the best monitored value so far.
    pub fn best_epoch(&self) -> usize {
        self.state.best_epoch
    }
}

impl Callback for EarlyStopping {
    fn on_train_begin(&mut self, _model: &mut Model) -> Result<()> {
        self.state = State::default();
        Ok(())
    }

    fn on_epoch_end(&mut self, model: &mut Model, log: &EpochLog) -> Result<Control> {
        let Some(current) = value(log, &self.monitor) else {
            return Ok(Control::Continue);
        };
        if log.epoch <= self.start_from_epoch {
            return Ok(Control::Continue);
        }
        let maximise = self.mode.maximises(&self.monitor);
        let state = &mut self.state;
        if self.restore_best_weights && state.best_weights.is_none() {
            state.best_weights = Some(model.get_weights());
        }
        state.wait += 1;
        if improves(current, state.best, self.min_delta, maximise) {
            state.best = Some(current);
            state.best_epoch = log.epoch;
            if self.restore_best_weights {
                state.best_weights = Some(model.get_weights());
            }
            if self
                .baseline
                .is_none_or(|b| improves(current, Some(b), self.min_delta, maximise))
            {
                state.wait = 0;
                return Ok(Control::Continue);
            }
        }
        if state.wait >= self.patience && log.epoch > 1 {
            state.stopped_epoch = Some(log.epoch);
            if let Some(best) = state.best_weights.take() {
                model.set_weights(best)?;
            }
            return Ok(Control::Stop);
        }
        Ok(Control::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

    fn log(epoch: usize, val_loss: f64) -> EpochLog {
        EpochLog {
            epoch,
            loss: 0.0,
            accuracy: None,
            val_loss: Some(val_loss),
            val_accuracy: None,
            learning_rate: 0.001,
            train_seconds: 0.0,
            seconds: 0.0,
        }
    }

    fn model() -> Sequential {
        let mut m = Sequential::new(&[2]);
        m.add(Dense::new(1)).unwrap();
        m
    }

    #[test]
    fn stops_after_patience_and_restores_the_best_weights() {
        let mut m = model();
        let mut es = EarlyStopping::new("val_loss", 2).restore_best_weights(true);
        es.on_train_begin(&mut m).unwrap();
        let mut best = None;
        for (epoch, loss) in [(1, 1.0), (2, 0.5), (3, 0.6), (4, 0.7)] {
            // Change the weights every epoch, so restoring is visible.
            let w: Vec<Tensor> = m
                .get_weights()
                .into_iter()
                .map(|t| {
                    let plus_one = t.data().iter().map(|v| v + 1.0).collect();
                    Tensor::new(t.shape(), plus_one).unwrap()
                })
                .collect();
            m.set_weights(w).unwrap();
            if epoch == 2 {
                best = Some(m.get_weights());
            }
            let control = es.on_epoch_end(&mut m, &log(epoch, loss)).unwrap();
            assert_eq!(control == Control::Stop, epoch == 4, "epoch {epoch}");
        }
        assert_eq!(es.stopped_epoch(), Some(4));
        assert_eq!(es.best_epoch(), 2);
        assert_eq!(Some(m.get_weights()), best);
    }

    #[test]
    fn patience_zero_stops_at_the_first_non_improvement_and_min_delta_counts() {
        let mut m = model();
        let mut es = EarlyStopping {
            min_delta: 0.1,
            ..EarlyStopping::new("val_loss", 0)
        };
        es.on_train_begin(&mut m).unwrap();
        assert_eq!(
            es.on_epoch_end(&mut m, &log(1, 1.0)).unwrap(),
            Control::Continue
        );
        assert_eq!(
            es.on_epoch_end(&mut m, &log(2, 0.8)).unwrap(),
            Control::Continue
        );
        // 0.75 improves by less than min_delta.
        assert_eq!(
            es.on_epoch_end(&mut m, &log(3, 0.75)).unwrap(),
            Control::Stop
        );
    }
}
