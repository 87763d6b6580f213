//! `ember summary [MODEL]`: the Keras summary table of a model file or a saved model.

use std::path::PathBuf;

use clap::Args;

#[derive(Args)]
pub struct SummaryArgs {
    /// A model file, saved model, FAQ index, recommender, encoder or GGUF (models/mnist-mlp.toml).
    model: Option<PathBuf>,
    #[command(flatten)]
    threads: super::Threads,
}

pub fn run(args: SummaryArgs) -> ember::Result<()> {
    super::set_threads(args.threads)?;
    print!("{}", ember::jobs::train_file::summary(args.model)?);
    Ok(())
}
