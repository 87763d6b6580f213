//! `ReduceLROnPlateau`: lower the learning rate when a metric stops improving.

use serde::{Deserialize, Serialize};

use super::monitor::{value, Mode};
use crate::error::Result;
use crate::model::{Callback, Control, EpochLog, Model};

/// Keras `ReduceLROnPlateau`: monitor "val_loss", factor 0.1, patience 10, mode auto,
/// min_delta 1e-4, cooldown 0, min_lr 0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReduceLrOnPlateau {
    pub monitor: String,
    /// The learning rate is multiplied by this (in (0, 1)).
    pub factor: f32,
    pub patience: usize,
    pub mode: Mode,
    pub min_delta: f64,
    /// Epochs to wait after a reduction before counting again.
    pub cooldown: usize,
    pub min_lr: f32,
    #[serde(skip)]
    state: State,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct State {
    best: Option<f64>,
    wait: usize,
    cooldown_left: usize,
}

impl Default for ReduceLrOnPlateau {
    fn default() -> Self {
        ReduceLrOnPlateau {
            monitor: "val_loss".into(),
            factor: 0.1,
            patience: 10,
            mode: Mode::Auto,
            min_delta: 1e-4,
            cooldown: 0,
            min_lr: 0.0,
            state: State::default(),
        }
    }
}

impl ReduceLrOnPlateau {
    pub fn new(monitor: &str, factor: f32, patience: usize) -> Self {
        ReduceLrOnPlateau {
            monitor: monitor.into(),
            factor,
            patience,
            ..Self::default()
        }
    }
}

impl Callback for ReduceLrOnPlateau {
    fn on_train_begin(&mut self, _model: &mut Model) -> Result<()> {
        self.state = State::default();
        Ok(())
    }

    fn on_epoch_end(&mut self, model: &mut Model, log: &EpochLog) -> Result<Control> {
        let Some(current) = value(log, &self.monitor) else {
            return Ok(Control::Continue);
        };
        let maximise = self.mode.maximises(&self.monitor);
        let state = &mut self.state;
        if state.cooldown_left > 0 {
            state.cooldown_left -= 1;
            state.wait = 0;
        }
        let better = match state.best {
            None => true,
            Some(best) if maximise => current > best + self.min_delta,
            Some(best) => current < best - self.min_delta,
        };
        if better {
            state.best = Some(current);
            state.wait = 0;
        } else if state.cooldown_left == 0 {
            state.wait += 1;
            if state.wait >= self.patience {
                let lr = model.learning_rate();
                if lr > self.min_lr {
                    model.set_learning_rate((lr * self.factor).max(self.min_lr))?;
                    state.cooldown_left = self.cooldown;
                    state.wait = 0;
                }
            }
        }
        Ok(Control::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

    #[test]
    fn reduces_after_patience_then_cools_down() {
        let mut m = Sequential::new(&[1]);
        m.add(Dense::new(1)).unwrap();
        m.compile(Sgd::new(1.0), Loss::MeanSquaredError, &[])
            .unwrap();
        let mut cb = ReduceLrOnPlateau {
            cooldown: 1,
            min_lr: 0.05,
            ..ReduceLrOnPlateau::new("loss", 0.5, 2)
        };
        cb.on_train_begin(&mut m).unwrap();
        let log = |epoch, loss| EpochLog {
            epoch,
            loss,
            accuracy: None,
            val_loss: None,
            val_accuracy: None,
            learning_rate: 0.0,
            train_seconds: 0.0,
            seconds: 0.0,
        };
        let mut rates = Vec::new();
        for (epoch, loss) in [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0].iter().enumerate() {
            cb.on_epoch_end(&mut m, &log(epoch + 1, *loss)).unwrap();
            rates.push(m.learning_rate());
        }
        // Plateau from epoch 2: waits 1, 2 → reduce at 3; epoch 4 ends the cooldown and
        // counts 1, epoch 5 counts 2 → reduce; and so on (Keras's counting).
        assert_eq!(rates, vec![1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125]);
        for _ in 0..20 {
            cb.on_epoch_end(&mut m, &log(9, 1.0)).unwrap();
        }
        assert_eq!(m.learning_rate(), 0.05, "never below min_lr");
    }
}
