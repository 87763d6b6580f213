//! Keras's callbacks, with its names and defaults: early stopping, learning-rate schedules,
//! CSV logging, stopping on NaN, checkpoints. Each is a plain struct implementing
//! [`Callback`](crate::model::Callback); their model-file form is
//! [`crate::spec::CallbackConfig`], and [`from_spec`] builds the ones a model file lists.

mod csv_logger;
mod early_stopping;
mod model_checkpoint;
pub(crate) mod monitor;
mod reduce_lr;
mod scheduler;
mod terminate_on_nan;

pub use csv_logger::CsvLogger;
pub use early_stopping::EarlyStopping;
pub use model_checkpoint::ModelCheckpoint;
pub use monitor::Mode;
pub use reduce_lr::ReduceLrOnPlateau;
pub use scheduler::{LearningRateScheduler, Schedule};
pub use terminate_on_nan::TerminateOnNan;

use crate::model::Callback;
use crate::spec::{CallbackConfig, ModelSpec};

/// The callbacks a model file lists, ready for `fit`, in its order: checkpoints record the
/// file's training settings, so that they can be resumed.
pub fn from_spec(spec: &ModelSpec) -> Vec<Box<dyn Callback>> {
    spec.callbacks
        .iter()
        .map(|c| -> Box<dyn Callback> {
            match c {
                CallbackConfig::EarlyStopping(c) => Box::new(c.clone()),
                CallbackConfig::ModelCheckpoint(config) => {
                    Box::new(ModelCheckpoint::from_config(config.clone()).with_context(
                        spec.fit.clone(),
                        spec.data.clone(),
                        spec.callbacks.clone(),
                    ))
                }
                CallbackConfig::ReduceLrOnPlateau(c) => Box::new(c.clone()),
                CallbackConfig::LearningRateScheduler(c) => {
                    Box::new(match c.initial_learning_rate {
                        Some(lr) => LearningRateScheduler::starting_at(c.schedule.clone(), lr),
                        None => LearningRateScheduler::new(c.schedule.clone()),
                    })
                }
                CallbackConfig::CsvLogger(c) => Box::new(c.clone()),
                CallbackConfig::TerminateOnNan(c) => Box::new(c.clone()),
            }
        })
        .collect()
}
