//! FAQ search for customer service: `ember index --encoder DIR faq.csv --output faq.index`
//! embeds the questions; `ember ask faq.index "how do I …"` prints the closest answers with
//! their cosine similarity.

use std::path::{Path, PathBuf};

use clap::Args;
use ember::jobs::faq::{self, FaqEvent, FaqOptions, FaqQuestion, Reply};

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
    #[command(flatten)]
    threads: super::Threads,
}

#[derive(Args)]
pub struct AskArgs {
    /// An index written by `ember index`.
    index: PathBuf,
    /// The question.
    query: String,
    /// How many answers to show, 1 to 1000.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=1000))]
    top_k: u64,
    /// The encoder folder, if it has moved since the index was built (its weights must be
    /// the same).
    #[arg(long, value_name = "DIR")]
    encoder: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// A GGUF language model that writes a reply from the entries found (the entries stay
    /// on screen: the reply is generated and may be wrong).
    #[arg(long, value_name = "FILE")]
    llm: Option<PathBuf>,
    /// Below this cosine similarity an entry does not answer the question; when none
    /// reaches it, the bot says it does not know (with --llm; default 0.5).
    #[arg(long)]
    min_score: Option<f32>,
    /// Most tokens of the generated reply (it also ends at its first blank line; with --llm,
    /// default 96).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    max_tokens: Option<u64>,
    /// Sampling temperature of the reply; 0, the default, is greedy (the same reply every
    /// time). With --llm.
    #[arg(long)]
    temperature: Option<f32>,
    /// Random seed of the reply's sampling (with --llm; default 0).
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    threads: super::Threads,
}

pub fn index(args: IndexArgs) -> ember::Result<()> {
    super::set_threads(args.threads)?;
    let columns = (args.question_column.as_str(), args.answer_column.as_str());
    let count = faq::index(&args.file, columns, &args.encoder, &args.output)?;
    println!("indexed {count} questions into {}", args.output.display());
    Ok(())
}

pub fn ask(args: AskArgs) -> ember::Result<()> {
    super::set_threads(args.threads)?;
    let reply_flags = [
        ("--min-score", args.min_score.is_some()),
        ("--max-tokens", args.max_tokens.is_some()),
        ("--temperature", args.temperature.is_some()),
        ("--seed", args.seed.is_some()),
    ];
    if args.llm.is_none() {
        let says = "sets the generated reply: it does nothing without --llm FILE";
        ember::jobs::checks::refuse_given(&reply_flags, says)?;
    }
    let temperature = args.temperature.unwrap_or(0.0);
    let drawn = [("--seed", args.seed.is_some())];
    ember::jobs::generate::refuse_greedy_settings(temperature, &drawn)?;
    // Checked by the job, with the model.
    let min_score = args.min_score.unwrap_or(0.5);
    let question = FaqQuestion {
        index: args.index.clone(),
        encoder: args.encoder.clone(),
        question: args.query.clone(),
        llm: args.llm.clone(),
        options: FaqOptions {
            top_k: args.top_k as usize,
            min_score,
            max_tokens: args.max_tokens.unwrap_or(96) as usize,
            temperature,
            seed: args.seed.unwrap_or(0),
        },
    };
    let llm_path = args.llm.as_deref().unwrap_or(Path::new(""));
    let json = args.json;
    let answer = faq::ask_index(&question, super::generate::load, |event| match event {
        _ if json => Ok(()),
        FaqEvent::Sources(entries) => {
            print!("{}", faq::sources_text(entries, llm_path));
            Ok(())
        }
        FaqEvent::Text(text) => super::generate::print_stream(text),
    })?;
    if json {
        print!("{}", answer.to_json(min_score, "--min-score", llm_path)?);
        return Ok(());
    }
    match answer.reply {
        Some(Reply::Unknown { best_score }) => {
            println!(
                "{}",
                faq::unknown_text(best_score, min_score, "--min-score")
            )
        }
        Some(Reply::Generated(g)) => {
            super::generate::print_stream("\n")?;
            eprintln!("{}", ember::report::timing_text(&g));
        }
        None => print!("{}", ember::jobs::faq::entries_text(&answer.entries)),
    }
    Ok(())
}
