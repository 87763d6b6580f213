//! `ember bench embed --model DIR`: sentences per second of a sentence encoder at batch 32 on
//! sentences of about twelve words, and, with `--python`, of sentence-transformers on PyTorch
//! (bench/embed.py) on the same sentences and thread count, in the same run.

use std::path::Path;
use std::time::Instant;

use ember::tensor::random::Rng;
use ember::text::SentenceEncoder;
use ember::Error;

use super::{median, BenchArgs};

/// Timed passes over the sentences, each side; the median is reported.
const REPEATS: usize = 3;

const WORDS: &[&str] = &[
    "the",
    "customer",
    "order",
    "was",
    "delivered",
    "late",
    "and",
    "my",
    "account",
    "password",
    "cannot",
    "be",
    "reset",
    "after",
    "I",
    "changed",
    "email",
    "address",
    "please",
    "refund",
    "last",
    "charge",
    "on",
    "card",
    "how",
    "do",
    "update",
    "shipping",
    "for",
    "this",
    "product",
    "broke",
    "two",
    "days",
    "support",
    "never",
    "replied",
    "to",
    "messages",
    "is",
    "there",
    "a",
    "student",
    "discount",
    "annual",
    "plan",
    "where",
    "nearest",
    "store",
    "with",
    "open",
    "hours",
    "today",
    "what",
    "difference",
    "between",
    "pro",
    "basic",
    "subscription",
    "can",
    "switch",
    "later",
    "without",
    "losing",
    "data",
    "laptop",
    "battery",
    "drains",
    "quickly",
    "when",
    "screen",
    "brightness",
    "high",
    "need",
    "invoice",
    "company",
    "tax",
    "purposes",
];

/// `count` sentences of 10 to 14 words, the same for every run.
fn sentences(count: usize) -> Vec<String> {
    let mut rng = Rng::seed(12);
    (0..count)
        .map(|_| {
            let n = 10 + rng.below(5);
            let words: Vec<&str> = (0..n).map(|_| WORDS[rng.below(WORDS.len())]).collect();
            let mut s = words.join(" ");
            s.push('.');
            s[..1].to_uppercase() + &s[1..]
        })
        .collect()
}

#[derive(serde::Deserialize)]
struct TorchRun {
    /// Median seconds of the timed passes.
    seconds: f64,
    sentences: usize,
    threads: usize,
    torch: String,
}

pub fn run(args: &BenchArgs) -> ember::Result<()> {
    let dir = args.encoder.clone().ok_or_else(|| {
        Error::invalid("bench embed needs --encoder DIR (a sentence-transformers folder)")
    })?;
    let texts = sentences(1024);
    let words: usize = texts.iter().map(|s| s.split(' ').count()).sum();
    let encoder = SentenceEncoder::load(&dir)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let tokens: usize = refs
        .iter()
        .map(|t| encoder.tokenizer.encode(t).map(|ids| ids.len()))
        .sum::<ember::Result<usize>>()?;
    println!(
        "{}: {} sentences, {:.1} words and {:.1} tokens each on average, batch 32, {} thread(s)",
        dir.display(),
        texts.len(),
        words as f64 / texts.len() as f64,
        tokens as f64 / texts.len() as f64,
        args.threads
    );
    encoder.encode(&refs[..64], 32)?; // warm up
    let mut rates = Vec::new();
    for _ in 0..REPEATS {
        let started = Instant::now();
        encoder.encode(&refs, 32)?;
        rates.push(texts.len() as f64 / started.elapsed().as_secs_f64());
    }
    let ours = median(&rates);

    let theirs = match &args.python {
        Some(python) => Some(run_torch(python, &dir, &texts, args.threads)?),
        None => None,
    };
    println!();
    println!("{:<36} {:>12}", "", "sentences/s");
    println!("{:<36} {:>12.1}", "Ember", ours);
    println!("  Ember passes (sentences/s): {}", super::list(&rates));
    match theirs {
        Some(t) => {
            let rate = t.sentences as f64 / t.seconds;
            println!(
                "{:<36} {:>12.1}",
                format!("sentence-transformers, PyTorch {}", t.torch),
                rate
            );
            println!(
                "ratio Ember / PyTorch: {:.3} ({} thread(s) each)",
                ours / rate,
                t.threads
            );
        }
        None => println!(
            "PyTorch: not timed; pass --python PATH (a virtual environment with sentence-transformers, see bench/README.md)"
        ),
    }
    Ok(())
}

fn run_torch(
    python: &Path,
    model: &Path,
    texts: &[String],
    threads: u64,
) -> ember::Result<TorchRun> {
    let file =
        std::env::temp_dir().join(format!("ember-bench-sentences-{}.txt", std::process::id()));
    std::fs::write(&file, texts.join("\n")).map_err(|e| Error::io(&file, e))?;
    let result = super::run_python(
        python,
        "embed.py",
        &[
            ("--model", model.to_string_lossy().into_owned()),
            ("--sentences", file.to_string_lossy().into_owned()),
            ("--threads", threads.to_string()),
            ("--repeats", REPEATS.to_string()),
        ],
    );
    let _ = std::fs::remove_file(&file);
    result
}
