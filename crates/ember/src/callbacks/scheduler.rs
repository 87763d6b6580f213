//! `LearningRateScheduler`: set the learning rate at the start of every epoch.

use std::f32::consts::PI;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{Callback, Model};

/// A learning-rate schedule. `epoch` counts from 0 (Keras's convention for schedules) and
/// `initial` is the learning rate the schedule starts from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// `initial · factor^⌊epoch / every⌋`.
    Step { every: usize, factor: f32 },
    /// `initial · rate^epoch`.
    Exponential { rate: f32 },
    /// Cosine decay from `initial` to `min_lr` over `epochs`, then `min_lr`.
    Cosine {
        epochs: usize,
        #[serde(default)]
        min_lr: f32,
    },
}

impl Schedule {
    pub fn rate(&self, epoch: usize, initial: f32) -> f32 {
        match *self {
            Schedule::Step { every, factor } => {
                initial * factor.powi((epoch / every.max(1)) as i32)
            }
            Schedule::Exponential { rate } => initial * rate.powi(epoch as i32),
            Schedule::Cosine { epochs, min_lr } => {
                let progress = epoch.min(epochs) as f32 / epochs.max(1) as f32;
                min_lr + (initial - min_lr) * 0.5 * (1.0 + (PI * progress).cos())
            }
        }
    }
}

/// What decides the rate: a built-in schedule, or any function of (epoch from 0, current rate).
enum Rule {
    Builtin(Schedule),
    Function(Box<dyn FnMut(usize, f32) -> f32>),
}

/// Keras `LearningRateScheduler`.
///
/// ```
/// use ember::callbacks::{LearningRateScheduler, Schedule};
/// let halve_every_5 = LearningRateScheduler::new(Schedule::Step { every: 5, factor: 0.5 });
/// let custom = LearningRateScheduler::from_fn(|epoch, lr| if epoch < 10 { lr } else { lr * 0.9 });
/// ```
pub struct LearningRateScheduler {
    rule: Rule,
    /// The rate built-in schedules start from; None takes the optimizer's at train begin.
    initial: Option<f32>,
}

impl LearningRateScheduler {
    pub fn new(schedule: Schedule) -> Self {
        LearningRateScheduler {
            rule: Rule::Builtin(schedule),
            initial: None,
        }
    }

    /// A schedule starting from a fixed rate (so a resumed run continues the same curve).
    pub fn starting_at(schedule: Schedule, initial: f32) -> Self {
        LearningRateScheduler {
            rule: Rule::Builtin(schedule),
            initial: Some(initial),
        }
    }

    pub fn from_fn(f: impl FnMut(usize, f32) -> f32 + 'static) -> Self {
        LearningRateScheduler {
            rule: Rule::Function(Box::new(f)),
            initial: None,
        }
    }
}

impl Callback for LearningRateScheduler {
    fn on_train_begin(&mut self, model: &mut Model) -> Result<()> {
        self.initial.get_or_insert(model.learning_rate());
        Ok(())
    }

    fn on_epoch_begin(&mut self, model: &mut Model, epoch: usize) -> Result<()> {
        let current = model.learning_rate();
        let rate = match &mut self.rule {
            Rule::Builtin(schedule) => schedule.rate(epoch - 1, self.initial.unwrap_or(current)),
            Rule::Function(f) => f(epoch - 1, current),
        };
        model.set_learning_rate(rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_schedules_by_hand() {
        let step = Schedule::Step {
            every: 2,
            factor: 0.5,
        };
        let rates: Vec<f32> = (0..5).map(|e| step.rate(e, 0.1)).collect();
        assert_eq!(rates, vec![0.1, 0.1, 0.05, 0.05, 0.025]);
        let exp = Schedule::Exponential { rate: 0.9 };
        assert!((exp.rate(2, 1.0) - 0.81).abs() < 1e-6);
        let cos = Schedule::Cosine {
            epochs: 4,
            min_lr: 0.0,
        };
        assert!((cos.rate(0, 1.0) - 1.0).abs() < 1e-6);
        assert!((cos.rate(2, 1.0) - 0.5).abs() < 1e-6);
        assert!(cos.rate(4, 1.0).abs() < 1e-6);
        assert!(cos.rate(9, 1.0).abs() < 1e-6);
    }

    #[test]
    fn sets_the_rate_each_epoch() {
        use crate::prelude::*;
        let mut m = Sequential::new(&[1]);
        m.add(Dense::new(1)).unwrap();
        m.compile(Sgd::new(0.2), Loss::MeanSquaredError, &[])
            .unwrap();
        let mut s = LearningRateScheduler::new(Schedule::Exponential { rate: 0.5 });
        s.on_train_begin(&mut m).unwrap();
        s.on_epoch_begin(&mut m, 3).unwrap();
        assert!((m.learning_rate() - 0.05).abs() < 1e-7);
        let mut f = LearningRateScheduler::from_fn(|epoch, lr| lr + epoch as f32);
        f.on_epoch_begin(&mut m, 2).unwrap();
        assert!((m.learning_rate() - 1.05).abs() < 1e-6);
    }
}
