//! FAQ search for customer service: `ember index --encoder DIR faq.csv --output faq.index`
//! embeds the questions; `ember ask faq.index "how do I …"` prints the closest answers with
//! their cosine similarity.

use std::path::PathBuf;

use clap::Args;
use ember::text::features::encoder_key;
use ember::text::{FaqIndex, SentenceEncoder};
use ember::Error;

#[derive(Args)]
pub struct IndexArgs {
    /// A CSV file with a header and question and answer columns.
    file: PathBuf,
    /// The sentence encoder folder (all-MiniLM-L6-v2).
    #[arg(long, value_name = "DIR")]
    encoder: PathBuf,
    /// The index file to write.
    #[arg(long, short, value_name = "FILE")]
    output: PathBuf,
    #[arg(long, default_value = "question")]
    question_column: String,
    #[arg(long, default_value = "answer")]
    answer_column: String,
    /// Threads for the numeric kernels (default: EMBER_NUM_THREADS, else all cores).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    threads: Option<u64>,
}

#[derive(Args)]
pub struct AskArgs {
    /// An index written by `ember index`.
    index: PathBuf,
    /// The question.
    query: String,
    /// How many answers to show.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    top_k: u64,
    /// The encoder folder, if it has moved since the index was built (its weights must be
    /// the same).
    #[arg(long, value_name = "DIR")]
    encoder: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Threads for the numeric kernels (default: EMBER_NUM_THREADS, else all cores).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    threads: Option<u64>,
}

pub fn index(args: IndexArgs) -> ember::Result<()> {
    super::set_threads(args.threads)?;
    ember::atomic::check_output(&args.output, &[&args.file, &args.encoder])?;
    let (questions, answers) =
        FaqIndex::read_pairs(&args.file, &args.question_column, &args.answer_column)?;
    let encoder = SentenceEncoder::load(&args.encoder)?;
    let index = FaqIndex::build(&encoder, questions, answers)?;
    index.save(&args.output)?;
    println!(
        "indexed {} questions into {}",
        index.questions.len(),
        args.output.display()
    );
    Ok(())
}

pub fn ask(args: AskArgs) -> ember::Result<()> {
    super::set_threads(args.threads)?;
    let index = FaqIndex::load(&args.index)?;
    let dir = args
        .encoder
        .clone()
        .unwrap_or_else(|| index.encoder.clone());
    let encoder = SentenceEncoder::load(&dir)?;
    if encoder_key(&encoder)? != index.encoder_key {
        return Err(Error::data(
            &dir,
            "not the encoder this index was built with (its weights differ)",
        ));
    }
    let hits = index.ask(&encoder, &args.query, args.top_k as usize)?;
    if args.json {
        let records: Vec<_> = hits
            .iter()
            .map(|&(i, score)| {
                serde_json::json!({
                    "question": index.questions[i],
                    "answer": index.answers[i],
                    "score": score,
                })
            })
            .collect();
        let text = serde_json::to_string_pretty(&records)
            .map_err(|e| Error::invalid(format!("cannot write JSON: {e}")))?;
        println!("{text}");
    } else {
        for (rank, &(i, score)) in hits.iter().enumerate() {
            println!("{}. [{score:.3}] {}", rank + 1, index.questions[i]);
            println!("   {}", index.answers[i]);
        }
    }
    Ok(())
}
