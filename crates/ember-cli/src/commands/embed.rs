//! `ember embed --encoder DIR [TEXT…] [--file F]`: sentence embeddings from a pretrained
//! sentence-transformers folder (all-MiniLM-L6-v2 and other BERT-family encoders).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use ember::jobs::embed;
use ember::Error;

#[derive(Args)]
pub struct EmbedArgs {
    /// The sentence encoder folder (config.json, model.safetensors, tokenizer.json,
    /// modules.json, …), as `train`, `index` and `ask` name it; `--model` is an alias.
    #[arg(long, value_name = "DIR", alias = "model")]
    encoder: PathBuf,
    /// Texts to embed.
    texts: Vec<String>,
    /// A file of texts, one per line (empty lines skipped); `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Texts per batch, 1 to 65536 (batches hold texts of similar length, padded to their
    /// longest).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    batch_size: u64,
    #[command(flatten)]
    threads: super::Threads,
    /// Print JSON ([{"text", "embedding"}]) instead of one line of numbers per text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: EmbedArgs) -> ember::Result<()> {
    super::set_threads(args.threads)?;
    let texts = embed::texts(&args.texts, args.file.as_deref())?;
    let text = embed::embed(&args.encoder, &texts, args.batch_size as usize, args.json)?;
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|e| Error::invalid(format!("cannot write the output: {e}")))
}
