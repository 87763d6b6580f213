//! Keras's callbacks, with its names and defaults: early stopping, checkpoints, learning-rate
//! schedules, CSV logging, stopping on NaN. Each is a plain struct implementing
//! [`Callback`](crate::train::Callback); [`CallbackConfig`] is the model-file form.

mod checkpoint;
mod config;
mod csv_logger;
mod early_stopping;
mod monitor;
mod reduce_lr;
mod scheduler;
mod terminate_on_nan;

pub use checkpoint::ModelCheckpoint;
pub use config::CallbackConfig;
pub use csv_logger::CsvLogger;
pub use early_stopping::EarlyStopping;
pub use monitor::Mode;
pub use reduce_lr::ReduceLrOnPlateau;
pub use scheduler::{LearningRateScheduler, Schedule};
pub use terminate_on_nan::TerminateOnNan;
