//! What a training job writes at the end (the model, a checkpoint every epoch, a report
//! folder), checked before any data is read or any epoch run.

use std::path::{Path, PathBuf};

use crate::error::Result;

/// The files a training job writes, each optional.
#[derive(Clone, Debug, Default)]
pub struct OutputFiles {
    /// The trained model (.safetensors).
    pub output: Option<PathBuf>,
    /// A resumable checkpoint, saved after every epoch.
    pub checkpoint: Option<PathBuf>,
    /// A folder for the history, learning curves and evaluation.
    pub report: Option<PathBuf>,
}

impl OutputFiles {
    /// Refuses an output, checkpoint or report folder that could not be written at the
    /// end, or that would overwrite one of `inputs` (the model file or resumed checkpoint,
    /// the data folder, the table, the text folder). The checkpoint may be `resumed`: that
    /// is how a killed run goes on.
    pub fn check(&self, inputs: &[&Path], resumed: Option<&Path>) -> Result<()> {
        if let Some(file) = &self.output {
            crate::atomic::check_output(file, inputs)?;
        }
        if let Some(file) = &self.checkpoint {
            let others: Vec<&Path> = inputs
                .iter()
                .copied()
                .filter(|&p| Some(p) != resumed)
                .collect();
            crate::atomic::check_output(file, &others)?;
        }
        if let Some(dir) = &self.report {
            crate::atomic::check_output_dir(dir)?;
        }
        Ok(())
    }
}
