//! `History`: what `fit` measured, epoch by epoch.

/// The metrics of one epoch. Training figures are means over the epoch's batches (as Keras
/// reports them); validation figures are computed after the epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochLog {
    /// 1-based, as printed.
    pub epoch: usize,
    pub loss: f64,
    pub accuracy: Option<f64>,
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
    /// The optimizer's learning rate at the end of the epoch.
    pub learning_rate: f32,
    /// Wall-clock seconds for the epoch's training steps.
    pub train_seconds: f64,
    /// Wall-clock seconds for the whole epoch, validation included.
    pub seconds: f64,
}

impl EpochLog {
    /// The metrics as (name, value) pairs in Keras's order: accuracy, loss, val_accuracy, val_loss.
    pub fn metrics(&self) -> Vec<(&'static str, f64)> {
        let mut out = Vec::new();
        if let Some(a) = self.accuracy {
            out.push(("accuracy", a));
        }
        out.push(("loss", self.loss));
        if let Some(a) = self.val_accuracy {
            out.push(("val_accuracy", a));
        }
        if let Some(l) = self.val_loss {
            out.push(("val_loss", l));
        }
        out
    }
}

/// An f32 as the f64 with the same shortest decimal form (0.001, not 0.0010000000474974513).
pub fn decimal(value: f32) -> f64 {
    value.to_string().parse().unwrap_or(value as f64)
}

/// Returned by `fit`: one log per epoch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    pub epochs: Vec<EpochLog>,
    /// Set when a callback ended training before the last epoch.
    pub stopped_early: bool,
}

impl History {
    /// One metric across epochs, by its Keras name ("loss", "val_accuracy", …).
    pub fn metric(&self, name: &str) -> Vec<f64> {
        if name == "learning_rate" {
            return self
                .epochs
                .iter()
                .map(|e| decimal(e.learning_rate))
                .collect();
        }
        self.epochs
            .iter()
            .filter_map(|e| {
                e.metrics()
                    .into_iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v)
            })
            .collect()
    }

    pub fn last(&self) -> Option<&EpochLog> {
        self.epochs.last()
    }

    /// The metrics every epoch reports ("accuracy", "loss", "val_accuracy", "val_loss").
    pub fn metric_names(&self) -> Vec<&'static str> {
        self.epochs
            .first()
            .map(|e| e.metrics().into_iter().map(|(n, _)| n).collect())
            .unwrap_or_default()
    }
}
