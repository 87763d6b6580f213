//! `ember summary [MODEL_FILE]`: the Keras summary table of a model file.

use std::path::PathBuf;

use clap::Args;
use ember::ModelSpec;

#[derive(Args)]
pub struct SummaryArgs {
    /// Model file (default: models/mnist-mlp.toml).
    model: Option<PathBuf>,
}

pub fn run(args: SummaryArgs) -> ember::Result<()> {
    let spec = ModelSpec::from_file(super::model_path(args.model))?;
    print!("{}", spec.build()?.summary());
    Ok(())
}
