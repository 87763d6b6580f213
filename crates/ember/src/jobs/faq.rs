//! Answering a question from a FAQ index: the closest entries with their cosine similarity,
//! and, with a language model, a reply written from those entries alone — or "I don't know"
//! when none is close enough.

use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::llm::{Chat, GenerateOptions, Generation, LanguageModel, Sampling};
use crate::text::features::encoder_key;
use crate::text::{FaqIndex, SentenceEncoder};

/// What the bot tells the model: answer from the entries, and only from them.
const BOT_SYSTEM: &str = "You are a customer-service assistant. Answer the customer's question in one or two sentences, using only the FAQ entries below. If they do not answer it, say that you do not know.";

/// How to answer a question.
#[derive(Clone, Debug, PartialEq)]
pub struct FaqOptions {
    /// How many entries to find (default 3).
    pub top_k: usize,
    /// Below this cosine similarity an entry does not answer the question; when none reaches
    /// it, the bot says it does not know (with a language model; default 0.5).
    pub min_score: f32,
    /// Most tokens of the reply, which also ends at its first blank line (default 96).
    pub max_tokens: usize,
    /// Sampling temperature of the reply; 0, the default, is greedy (the same reply every time).
    pub temperature: f32,
    /// Random seed of the reply's sampling (default 0).
    pub seed: u64,
}

impl Default for FaqOptions {
    fn default() -> Self {
        FaqOptions {
            top_k: 3,
            min_score: 0.5,
            max_tokens: 96,
            temperature: 0.0,
            seed: 0,
        }
    }
}

impl FaqOptions {
    /// The reply's generation settings, checked with `min_score`: call it before loading a
    /// language model to fail fast.
    pub fn generation(&self) -> Result<GenerateOptions> {
        if !(self.min_score.is_finite() && (-1.0..=1.0).contains(&self.min_score)) {
            return Err(Error::invalid(format!(
                "--min-score must be a cosine similarity in [-1, 1], got {}",
                self.min_score
            )));
        }
        // A small model repeats itself: a mild penalty, and one paragraph.
        let sampling = Sampling {
            temperature: self.temperature,
            seed: self.seed,
            repeat_penalty: 1.15,
            ..Sampling::default()
        };
        sampling.check()?;
        Ok(GenerateOptions {
            max_tokens: self.max_tokens,
            sampling,
            stop: vec!["\n\n".into()],
        })
    }
}

/// One FAQ entry found for a question.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FaqEntry {
    pub question: String,
    pub answer: String,
    /// Cosine similarity of the entry's question to the asked one.
    pub score: f32,
}

/// The bot's reply, with a language model.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// No entry reaches `min_score`: nothing is generated.
    Unknown { best_score: f32 },
    /// The reply generated from the entries (which may still be wrong: show the entries).
    Generated(Generation),
}

/// What a question gets.
#[derive(Clone, Debug, PartialEq)]
pub struct FaqAnswer {
    /// Best first: the `top_k` closest entries without a language model; with one, those that
    /// reach `min_score`, the reply's sources.
    pub entries: Vec<FaqEntry>,
    /// None without a language model.
    pub reply: Option<Reply>,
}

/// What [`ask`] reports while it answers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FaqEvent<'a> {
    /// The entries the reply is written from, before it is generated.
    Sources(&'a [FaqEntry]),
    /// Generated text as it comes; the pieces add up to the reply.
    Text(&'a str),
}

/// Builds a FAQ index of the `columns` (question, answer) of a CSV file, embedded by the
/// encoder in `encoder`, and saves it to `output` (never over an input). Returns how many
/// questions it holds.
pub fn index(file: &Path, columns: (&str, &str), encoder: &Path, output: &Path) -> Result<usize> {
    crate::atomic::check_output(output, &[file, encoder])?;
    let (questions, answers) = FaqIndex::read_pairs(file, columns.0, columns.1)?;
    let encoder = SentenceEncoder::load(encoder)?;
    let index = FaqIndex::build(&encoder, questions, answers)?;
    index.save(output)?;
    Ok(index.questions.len())
}

/// Reads a FAQ index and its sentence encoder (from `encoder` when given, else the folder the
/// index names), which must be the encoder the index was built with.
pub fn open(index: &Path, encoder: Option<&Path>) -> Result<(FaqIndex, SentenceEncoder)> {
    let index = FaqIndex::load(index)?;
    let dir = encoder.unwrap_or(&index.encoder).to_path_buf();
    let encoder = SentenceEncoder::load(&dir)?;
    if encoder_key(&encoder)? != index.encoder_key {
        return Err(Error::data(
            &dir,
            "not the encoder this index was built with (its weights differ)",
        ));
    }
    Ok((index, encoder))
}

/// Answers `question`, whose sentence embedding by the index's encoder is `query`: the
/// closest entries and, with `model`, a reply from those that reach `options.min_score`.
/// `on_event` gets the sources, then the reply's text as it is generated; an error from it
/// stops the generation.
pub fn ask(
    index: &FaqIndex,
    question: &str,
    query: &[f32],
    model: Option<&LanguageModel>,
    options: &FaqOptions,
    mut on_event: impl FnMut(FaqEvent) -> Result<()>,
) -> Result<FaqAnswer> {
    let hits = index.search(query, options.top_k)?;
    let entry = |&(i, score): &(usize, f32)| FaqEntry {
        question: index.questions[i].clone(),
        answer: index.answers[i].clone(),
        score,
    };
    let Some(model) = model else {
        return Ok(FaqAnswer {
            entries: hits.iter().map(entry).collect(),
            reply: None,
        });
    };
    let generation = options.generation()?;
    let entries: Vec<FaqEntry> = hits
        .iter()
        .filter(|&&(_, score)| score >= options.min_score)
        .map(entry)
        .collect();
    if entries.is_empty() {
        let best_score = hits.first().map_or(0.0, |h| h.1);
        return Ok(FaqAnswer {
            entries,
            reply: Some(Reply::Unknown { best_score }),
        });
    }
    let mut chat = Chat::new(model, Some(&system_prompt(&entries)))?;
    on_event(FaqEvent::Sources(&entries))?;
    let g = chat.say(question, &generation, |text| on_event(FaqEvent::Text(text)))?;
    Ok(FaqAnswer {
        entries,
        reply: Some(Reply::Generated(g)),
    })
}

/// The bot's instructions followed by the entries it may answer from.
fn system_prompt(entries: &[FaqEntry]) -> String {
    let mut system = format!("{BOT_SYSTEM}\n");
    for e in entries {
        system.push_str(&format!("\nQ: {}\nA: {}\n", e.question, e.answer));
    }
    system
}

/// What the bot says when it does not know; `setting` names the minimum score where the
/// caller reads it (`--min-score`, `min_score`).
pub fn unknown_text(best_score: f32, min_score: f32, setting: &str) -> String {
    format!(
        "I don't know: no FAQ entry answers this question (the closest scores {best_score:.3}, below {setting} {min_score:.2})."
    )
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::llm::tests::tiny_gguf_with_context;
    use crate::Tensor;

    /// Three entries whose question embeddings are the unit vectors along x, y and the
    /// diagonal.
    fn index() -> FaqIndex {
        let d = std::f32::consts::FRAC_1_SQRT_2;
        FaqIndex {
            questions: vec!["east?".into(), "north?".into(), "north-east?".into()],
            answers: vec!["E".into(), "N".into(), "NE".into()],
            embeddings: Tensor::new(&[3, 2], vec![1.0, 0.0, 0.0, 1.0, d, d]).unwrap(),
            encoder: PathBuf::from("encoder"),
            encoder_key: String::new(),
        }
    }

    fn model() -> LanguageModel {
        let bytes = tiny_gguf_with_context(1024);
        LanguageModel::from_bytes(&bytes, Path::new("tiny.gguf")).unwrap()
    }

    fn no_events(_: FaqEvent) -> Result<()> {
        panic!("nothing to report")
    }

    #[test]
    fn without_a_model_the_closest_entries_come_back() {
        let options = FaqOptions {
            top_k: 2,
            min_score: 7.0,
            ..FaqOptions::default()
        };
        let answer = ask(&index(), "q", &[2.0, 0.1], None, &options, no_events).unwrap();
        assert_eq!(answer.reply, None);
        let found: Vec<&str> = answer.entries.iter().map(|e| e.answer.as_str()).collect();
        assert_eq!(found, ["E", "NE"], "best first; min_score unused");
        assert!((answer.entries[0].score - 0.99875).abs() < 1e-4);
    }

    #[test]
    fn below_the_minimum_score_the_bot_does_not_know() {
        let options = FaqOptions {
            min_score: 0.9,
            ..FaqOptions::default()
        };
        let answer = ask(
            &index(),
            "q",
            &[-1.0, 0.2],
            Some(&model()),
            &options,
            no_events,
        )
        .unwrap();
        assert!(answer.entries.is_empty());
        let Some(Reply::Unknown { best_score }) = answer.reply else {
            panic!("{:?}", answer.reply)
        };
        assert!((best_score - 0.19612).abs() < 1e-4, "{best_score}");
        assert_eq!(
            unknown_text(best_score, 0.9, "--min-score"),
            "I don't know: no FAQ entry answers this question (the closest scores 0.196, below --min-score 0.90)."
        );
        let bad = FaqOptions {
            min_score: 2.0,
            ..FaqOptions::default()
        };
        let e = ask(&index(), "q", &[1.0, 0.0], Some(&model()), &bad, no_events).unwrap_err();
        assert!(e
            .to_string()
            .contains("--min-score must be a cosine similarity"));
    }

    #[test]
    fn the_reply_is_streamed_after_its_sources() {
        let options = FaqOptions {
            min_score: 0.6,
            max_tokens: 12,
            ..FaqOptions::default()
        };
        let mut events = Vec::new();
        let answer = ask(
            &index(),
            "which way?",
            &[1.0, 0.1],
            Some(&model()),
            &options,
            |e| {
                events.push(match e {
                    FaqEvent::Sources(entries) => format!("sources {}", entries.len()),
                    FaqEvent::Text(text) => text.to_string(),
                });
                Ok(())
            },
        )
        .unwrap();
        let found: Vec<&str> = answer.entries.iter().map(|e| e.answer.as_str()).collect();
        assert_eq!(found, ["E", "NE"], "the entries above min_score");
        let Some(Reply::Generated(g)) = &answer.reply else {
            panic!("{:?}", answer.reply)
        };
        assert_eq!(events[0], "sources 2");
        assert_eq!(events[1..].concat(), g.text);
        assert!(!g.tokens.is_empty() && g.tokens.len() <= 12);
        // The prompt holds the instructions and the two entries: far more than the question.
        assert!(
            g.prompt_tokens > BOT_SYSTEM.len() + 20,
            "{}",
            g.prompt_tokens
        );
        let again = ask(
            &index(),
            "which way?",
            &[1.0, 0.1],
            Some(&model()),
            &options,
            |_| Ok(()),
        )
        .unwrap();
        assert_eq!(again.entries, answer.entries);
        assert!(
            matches!(again.reply, Some(Reply::Generated(h)) if h.text == g.text),
            "greedy"
        );
    }
}
