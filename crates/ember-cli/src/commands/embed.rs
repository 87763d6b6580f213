//! `ember embed --encoder DIR [TEXT…] [--file F]`: sentence embeddings from a pretrained
//! sentence-transformers folder (all-MiniLM-L6-v2 and other BERT-family encoders).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use ember::text::SentenceEncoder;
use ember::Error;

#[derive(Args)]
pub struct EmbedArgs {
    /// The sentence encoder folder (config.json, model.safetensors, tokenizer.json,
    /// modules.json, …), as `train`, `index` and `ask` name it; `--model` is an alias.
    #[arg(long, value_name = "DIR", alias = "model")]
    encoder: PathBuf,
    /// Texts to embed.
    texts: Vec<String>,
    /// A file of texts, one per line (empty lines skipped).
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Texts per batch (batches hold texts of similar length, padded to their longest).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..))]
    batch_size: u64,
    /// Threads for the numeric kernels (default: EMBER_NUM_THREADS, else all cores).
    #[arg(long)]
    threads: Option<u64>,
    /// Print JSON ([{"text", "embedding"}]) instead of one line of numbers per text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: EmbedArgs) -> ember::Result<()> {
    super::set_threads(args.threads)?;
    let mut texts = args.texts.clone();
    if let Some(file) = &args.file {
        let bytes = std::fs::read(file).map_err(|e| Error::io(file, e))?;
        texts.extend(
            String::from_utf8_lossy(&bytes)
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string),
        );
    }
    if texts.is_empty() {
        return Err(Error::invalid(
            "no texts to embed: give TEXT arguments or --file FILE",
        ));
    }
    let encoder = SentenceEncoder::load(&args.encoder)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let embeddings = encoder.encode(&refs, args.batch_size as usize)?;
    let dim = encoder.dim();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let write_error = |e: std::io::Error| Error::invalid(format!("cannot write the output: {e}"));
    if args.json {
        let records: Vec<_> = texts
            .iter()
            .zip(embeddings.data().chunks(dim))
            .map(|(t, e)| serde_json::json!({ "text": t, "embedding": e }))
            .collect();
        serde_json::to_writer(&mut out, &records)
            .map_err(|e| Error::invalid(format!("cannot write JSON: {e}")))?;
        writeln!(out).map_err(write_error)?;
    } else {
        for row in embeddings.data().chunks(dim) {
            let line: Vec<String> = row.iter().map(|v| format!("{v}")).collect();
            writeln!(out, "{}", line.join(" ")).map_err(write_error)?;
        }
    }
    out.flush().map_err(write_error)
}
