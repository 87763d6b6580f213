//! Keras's callbacks, with its names and defaults: early stopping, learning-rate schedules,
//! CSV logging, stopping on NaN. Each is a plain struct implementing
//! [`Callback`](crate::train::Callback); their model-file form is
//! [`crate::spec::CallbackConfig`], and `ModelCheckpoint`, which saves, is
//! [`crate::io::ModelCheckpoint`].

mod csv_logger;
mod early_stopping;
pub(crate) mod monitor;
mod reduce_lr;
mod scheduler;
mod terminate_on_nan;

pub use csv_logger::CsvLogger;
pub use early_stopping::EarlyStopping;
pub use monitor::Mode;
pub use reduce_lr::ReduceLrOnPlateau;
pub use scheduler::{LearningRateScheduler, Schedule};
pub use terminate_on_nan::TerminateOnNan;
