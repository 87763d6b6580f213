//! `ModelCheckpoint`: save the model (weights, optimizer state, epoch) as training goes.

use std::path::PathBuf;

use crate::callbacks::monitor::{improves, value};
use crate::error::Result;
use crate::model::{Callback, Control, EpochLog, Model};
use crate::spec::{CallbackConfig, DataSpec, FitSpec, ModelCheckpointConfig};

/// Keras `ModelCheckpoint(filepath, monitor="val_loss", save_best_only=False, mode="auto")`.
/// `{epoch}` (or `{epoch:03d}`, `{val_loss:.4f}`, …) in the file path is filled in as Keras
/// does. Files are written atomically,
/// so a crash never leaves a half-written checkpoint, and `ember train --resume FILE` picks
/// up where it stopped. Its model-file form, [`ModelCheckpointConfig`], lives with the model
/// file.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelCheckpoint {
    pub config: ModelCheckpointConfig,
    /// Training settings and data recorded in the file, so that it can be resumed.
    context: Option<(FitSpec, Option<DataSpec>, Vec<CallbackConfig>)>,
    best: Option<f64>,
}

impl ModelCheckpoint {
    pub fn new(filepath: impl Into<PathBuf>) -> Self {
        Self::from_config(ModelCheckpointConfig::new(filepath))
    }

    pub fn from_config(config: ModelCheckpointConfig) -> Self {
        ModelCheckpoint {
            config,
            context: None,
            best: None,
        }
    }

    pub fn save_best_only(mut self, monitor: &str) -> Self {
        self.config.save_best_only = true;
        self.config.monitor = monitor.into();
        self
    }

    /// Records these training settings in every checkpoint (the CLI passes its model file's).
    pub fn with_context(
        mut self,
        fit: FitSpec,
        data: Option<DataSpec>,
        callbacks: Vec<CallbackConfig>,
    ) -> Self {
        self.context = Some((fit, data, callbacks));
        self
    }

    /// The file for the epoch of `log`: the path template filled in (`{epoch:03d}`,
    /// `{val_loss:.4f}`, …, as in Keras).
    fn path_for(&self, log: &EpochLog) -> Result<PathBuf> {
        let template = self.config.filepath.to_string_lossy();
        crate::spec::fill_template(&template, log.epoch, |name| value(log, name))
            .map(PathBuf::from)
            .map_err(|m| {
                crate::Error::invalid(format!("ModelCheckpoint filepath '{template}': {m}"))
            })
    }
}

impl Callback for ModelCheckpoint {
    fn on_train_begin(&mut self, _model: &mut Model) -> Result<()> {
        self.best = None;
        Ok(())
    }

    fn on_epoch_end(&mut self, model: &mut Model, log: &EpochLog) -> Result<Control> {
        let config = &self.config;
        if config.save_best_only {
            let Some(current) = value(log, &config.monitor) else {
                eprintln!(
                    "ModelCheckpoint: '{}' is not available, not saving",
                    config.monitor
                );
                return Ok(Control::Continue);
            };
            if !improves(
                current,
                self.best,
                0.0,
                config.mode.maximises(&config.monitor),
            ) {
                return Ok(Control::Continue);
            }
            self.best = Some(current);
        }
        let (fit, data, callbacks) = self.context.clone().unwrap_or_default();
        crate::io::save_with(
            self.path_for(log)?,
            model,
            &fit,
            data.as_ref(),
            &callbacks,
            log.epoch,
        )?;
        Ok(Control::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

    #[test]
    fn saves_every_epoch_or_only_improvements() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        let mut m = Sequential::new(&[1]);
        m.add(Dense::new(1)).unwrap();
        m.compile(Sgd::new(0.1), Loss::MeanSquaredError, &[])
            .unwrap();
        let log = |epoch, val_loss| EpochLog {
            epoch,
            loss: 1.0,
            accuracy: None,
            val_loss: Some(val_loss),
            val_accuracy: None,
            learning_rate: 0.1,
            train_seconds: 0.0,
            seconds: 0.0,
        };
        let mut every = ModelCheckpoint::new(dir.join("every-{epoch}.safetensors"));
        let mut best =
            ModelCheckpoint::new(dir.join("best.safetensors")).save_best_only("val_loss");
        every.on_train_begin(&mut m).unwrap();
        best.on_train_begin(&mut m).unwrap();
        for (epoch, val_loss) in [(1, 0.5), (2, 0.7), (3, 0.4)] {
            every.on_epoch_end(&mut m, &log(epoch, val_loss)).unwrap();
            best.on_epoch_end(&mut m, &log(epoch, val_loss)).unwrap();
            let saved = crate::io::load(dir.join("best.safetensors")).unwrap();
            // Epoch 2 is worse than epoch 1, so the best file still says epoch 1.
            assert_eq!(saved.epochs_done, if epoch == 2 { 1 } else { epoch });
        }
        for epoch in 1..=3 {
            let saved = crate::io::load(dir.join(format!("every-{epoch}.safetensors"))).unwrap();
            assert_eq!(saved.epochs_done, epoch);
        }
    }
}
