//! Models and training: `Sequential`, compile / fit / evaluate / predict, History, progress.

mod fit;
mod history;
mod progress;
mod sequential;
mod summary;

pub use fit::{Evaluation, FitOptions, Verbosity};
pub use history::{EpochLog, History};
pub use sequential::Sequential;
