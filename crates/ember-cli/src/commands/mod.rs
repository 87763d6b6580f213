//! One file per subcommand.

pub mod summary;
pub mod train;

use std::path::PathBuf;

/// The model file used when none is given: the Keras MNIST reference script.
pub const DEFAULT_MODEL: &str = "models/mnist-mlp.toml";

pub fn model_path(given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL))
}

/// Applies `--threads` (or leaves `EMBER_NUM_THREADS` / all cores in charge).
pub fn set_threads(threads: Option<usize>) -> ember::Result<()> {
    match threads {
        Some(n) => ember::set_num_threads(n),
        None => Ok(()),
    }
}
