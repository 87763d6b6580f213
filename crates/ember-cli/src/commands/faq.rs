//! FAQ search for customer service: `ember index --encoder DIR faq.csv --output faq.index`
//! embeds the questions; `ember ask faq.index "how do I …"` prints the closest answers with
//! their cosine similarity.

use std::path::PathBuf;

use clap::Args;
use ember::llm::{Chat, GenerateOptions, Sampling};
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
    /// A GGUF language model that writes a reply from the entries found (the entries stay
    /// on screen: the reply is generated and may be wrong).
    #[arg(long, value_name = "FILE")]
    llm: Option<PathBuf>,
    /// Below this cosine similarity an entry does not answer the question; when none
    /// reaches it, the bot says it does not know (with --llm).
    #[arg(long, default_value_t = 0.5)]
    min_score: f32,
    /// Most tokens of the generated reply (it also ends at its first blank line).
    #[arg(long, default_value_t = 96, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    max_tokens: u64,
    /// Sampling temperature of the reply; 0, the default, is greedy (the same reply every time).
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Random seed of the reply's sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Threads for the numeric kernels (default: EMBER_NUM_THREADS, else all cores).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    threads: Option<u64>,
}

/// What the bot tells the model: answer from the entries, and only from them.
const BOT_SYSTEM: &str = "You are a customer-service assistant. Answer the customer's question in one or two sentences, using only the FAQ entries below. If they do not answer it, say that you do not know.";

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
    let Some(llm_path) = &args.llm else {
        return print_hits(&index, &hits, args.json);
    };
    if !(args.min_score.is_finite() && (-1.0..=1.0).contains(&args.min_score)) {
        return Err(Error::invalid(format!(
            "--min-score must be a cosine similarity in [-1, 1], got {}",
            args.min_score
        )));
    }
    // A small model repeats itself: a mild penalty, and one paragraph.
    let sampling = Sampling {
        temperature: args.temperature,
        seed: args.seed,
        repeat_penalty: 1.15,
        ..Sampling::default()
    };
    sampling.check()?;
    let options = GenerateOptions {
        max_tokens: args.max_tokens as usize,
        sampling,
        stop: vec!["\n\n".into()],
    };
    let model = super::generate::load(llm_path)?;
    let used: Vec<(usize, f32)> = hits
        .iter()
        .copied()
        .filter(|&(_, s)| s >= args.min_score)
        .collect();
    if used.is_empty() {
        let best = hits.first().map_or(0.0, |h| h.1);
        let text = format!(
            "I don't know: no FAQ entry answers this question (the closest scores {best:.3}, below --min-score {:.2}).",
            args.min_score
        );
        if args.json {
            let record = serde_json::json!({"known": false, "reply": text, "entries": [], "best_score": best});
            println!(
                "{}",
                serde_json::to_string_pretty(&record).expect("JSON values")
            );
        } else {
            println!("{text}");
        }
        return Ok(());
    }
    let mut system = format!("{BOT_SYSTEM}\n");
    for &(i, _) in &used {
        system.push_str(&format!(
            "\nQ: {}\nA: {}\n",
            index.questions[i], index.answers[i]
        ));
    }
    let mut chat = Chat::new(&model, Some(&system))?;
    if args.json {
        let g = chat.say(&args.query, &options, |_| Ok(()))?;
        let entries: Vec<_> = used
            .iter()
            .map(|&(i, score)| serde_json::json!({"question": index.questions[i], "answer": index.answers[i], "score": score}))
            .collect();
        let record = serde_json::json!({
            "known": true,
            "entries": entries,
            "reply": g.text.trim(),
            "generated_by": llm_path.display().to_string(),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&record).expect("JSON values")
        );
        return Ok(());
    }
    println!("From the FAQ:");
    print_hits(&index, &used, false)?;
    println!(
        "Reply (generated by {}; the entries above are the source):",
        llm_path
            .file_name()
            .map_or(llm_path.display().to_string(), |n| n
                .to_string_lossy()
                .into_owned())
    );
    let g = chat.say(&args.query, &options, super::generate::print_stream)?;
    super::generate::print_stream("\n")?;
    eprintln!("{}", super::generate::timing(&g));
    Ok(())
}

fn print_hits(index: &FaqIndex, hits: &[(usize, f32)], json: bool) -> ember::Result<()> {
    if json {
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
