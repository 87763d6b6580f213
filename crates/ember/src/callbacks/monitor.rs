//! Reading a monitored metric from an epoch's log, and whether a value is an improvement.

use serde::{Deserialize, Serialize};

use crate::model::EpochLog;

/// Whether the monitored value should go down or up; `auto` infers it from the name
/// ("accuracy" goes up, anything else down), as Keras does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Auto,
    Min,
    Max,
}

impl Mode {
    /// True when larger values are better for `monitor`.
    pub fn maximises(self, monitor: &str) -> bool {
        match self {
            Mode::Min => false,
            Mode::Max => true,
            Mode::Auto => monitor.contains("acc"),
        }
    }
}

/// The value of `monitor` ("val_loss", "accuracy", "learning_rate", …) in `log`.
pub fn value(log: &EpochLog, monitor: &str) -> Option<f64> {
    if monitor == "learning_rate" {
        return Some(crate::model::decimal(log.learning_rate));
    }
    log.metrics()
        .into_iter()
        .find(|(name, _)| *name == monitor)
        .map(|(_, v)| v)
}

/// `current` beats `best` by more than `min_delta` in the direction `maximise`.
pub fn improves(current: f64, best: Option<f64>, min_delta: f64, maximise: bool) -> bool {
    match best {
        None => true,
        Some(best) if maximise => current - min_delta.abs() > best,
        Some(best) => current + min_delta.abs() < best,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_improvement() {
        assert!(Mode::Auto.maximises("val_accuracy"));
        assert!(!Mode::Auto.maximises("val_loss"));
        assert!(Mode::Max.maximises("val_loss"));
        assert!(improves(0.5, None, 0.0, false));
        assert!(improves(0.5, Some(0.6), 0.05, false));
        assert!(!improves(0.56, Some(0.6), 0.05, false));
        assert!(improves(0.9, Some(0.8), 0.05, true));
        assert!(!improves(0.8, Some(0.8), 0.0, true));
    }
}
