//! Generation: the prompt run through the model in batches, then one token at a time,
//! sampled, streamed as text as soon as it is whole UTF-8 and cannot be the start of a stop
//! string, until an end-of-generation token, a stop string or the token budget.

use std::time::Instant;

use crate::error::{Error, Result};
use crate::llm::llama::{KvCache, Logits};
use crate::llm::sample::{Sampler, Sampling};
use crate::llm::LanguageModel;

/// Prompt tokens run through the model at once.
pub const PROMPT_BATCH: usize = 512;
/// The longest stop string, in bytes.
pub const MAX_STOP_BYTES: usize = 256;

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateOptions {
    pub max_tokens: usize,
    pub sampling: Sampling,
    /// Generation stops before the first of these; the stop string is not part of the text.
    pub stop: Vec<String>,
}

impl GenerateOptions {
    /// Whether the options can run: the sampling settings, and stop strings of 1 to
    /// [`MAX_STOP_BYTES`] bytes (an empty one would end every generation before its text).
    pub fn check(&self) -> Result<()> {
        self.sampling.check()?;
        if let Some(bad) = self
            .stop
            .iter()
            .find(|s| s.is_empty() || s.len() > MAX_STOP_BYTES)
        {
            return Err(Error::invalid(format!(
                "a stop string must have 1 to {MAX_STOP_BYTES} bytes, got {}",
                bad.len()
            )));
        }
        Ok(())
    }
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_tokens: 256,
            sampling: Sampling::default(),
            stop: Vec::new(),
        }
    }
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    /// The model wrote an end-of-generation token.
    End,
    /// A stop string appeared.
    Stop,
    /// `max_tokens` were written.
    Length,
    /// The model's context window is full.
    Context,
}

impl Finish {
    /// OpenAI's name for it.
    pub fn reason(self) -> &'static str {
        match self {
            Finish::End | Finish::Stop => "stop",
            // OpenAI has no reason of its own for a full context.
            Finish::Length | Finish::Context => "length",
        }
    }
}

/// A finished generation.
#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    pub text: String,
    /// The generated tokens (an end token included).
    pub tokens: Vec<u32>,
    pub prompt_tokens: usize,
    pub finish: Finish,
    pub prompt_seconds: f64,
    pub generate_seconds: f64,
}

/// Runs `prompt` after what `cache` holds, then generates; `on_text` receives the text as it
/// comes (its concatenation is `Generation::text`) and may stop generation with an error.
pub fn generate(
    model: &LanguageModel,
    cache: &mut KvCache,
    prompt: &[u32],
    options: &GenerateOptions,
    on_text: impl FnMut(&str) -> Result<()>,
) -> Result<Generation> {
    generate_after(model, cache, &[], prompt, options, on_text)
}

/// [`generate`] for a prompt whose first tokens, `cached`, the cache already holds: only
/// `prompt` is run, and the repetition penalty sees `cached` too, so the result is that of
/// running `cached` + `prompt` from an empty cache.
pub fn generate_after(
    model: &LanguageModel,
    cache: &mut KvCache,
    cached: &[u32],
    prompt: &[u32],
    options: &GenerateOptions,
    mut on_text: impl FnMut(&str) -> Result<()>,
) -> Result<Generation> {
    options.check()?;
    if prompt.is_empty() {
        return Err(Error::invalid("the prompt is empty"));
    }
    let context = model.llama.config.context;
    if cache.len() + prompt.len() > context {
        return Err(Error::invalid(format!(
            "the prompt's {} tokens leave no room in the model's context of {context}{}",
            prompt.len(),
            if cache.is_empty() {
                String::new()
            } else {
                format!(" ({} already used)", cache.len())
            }
        )));
    }
    let mut sampler = Sampler::new(options.sampling.clone())?;
    let started = Instant::now();
    let mut logits = Vec::new();
    let progress = crate::progress::Progress::new("Reading the prompt", prompt.len(), "tokens");
    for batch in prompt.chunks(PROMPT_BATCH) {
        logits = model.llama.forward(batch, cache, Logits::Last)?;
        progress.advance(batch.len());
    }
    // The bar ends before the reply is written.
    drop(progress);
    let prompt_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut history: Vec<u32> = cached.iter().chain(prompt).copied().collect();
    let mut stream = TextStream::new(&options.stop);
    let mut tokens = Vec::new();
    let finish = loop {
        if tokens.len() >= options.max_tokens {
            break Finish::Length;
        }
        let next = sampler.sample(&logits, &history);
        tokens.push(next);
        history.push(next);
        if model.vocab.is_end(next) {
            break Finish::End;
        }
        let (text, stopped) = stream.push(model.vocab.piece(next, false));
        if !text.is_empty() {
            on_text(&text)?;
        }
        if stopped {
            break Finish::Stop;
        }
        if cache.len() + 1 > context {
            break Finish::Context;
        }
        logits = model.llama.forward(&[next], cache, Logits::Last)?;
    };
    let rest = stream.finish();
    if !rest.is_empty() {
        on_text(&rest)?;
    }
    Ok(Generation {
        text: stream.text,
        tokens,
        prompt_tokens: prompt.len(),
        finish,
        prompt_seconds,
        generate_seconds: started.elapsed().as_secs_f64(),
    })
}

/// Generated bytes turned into text that is safe to show: whole characters only, and
/// nothing that might yet turn out to be the start of a stop string.
struct TextStream<'a> {
    stop: &'a [String],
    /// Bytes of an unfinished character.
    bytes: Vec<u8>,
    /// Everything shown so far.
    text: String,
    /// Text decoded but held back.
    held: String,
    done: bool,
}

impl<'a> TextStream<'a> {
    fn new(stop: &'a [String]) -> Self {
        TextStream {
            stop,
            bytes: Vec::new(),
            text: String::new(),
            held: String::new(),
            done: false,
        }
    }

    /// Adds a token's bytes; returns the text now safe to show, and whether a stop string
    /// appeared (the text then ends before it).
    fn push(&mut self, piece: &[u8]) -> (String, bool) {
        self.bytes.extend_from_slice(piece);
        // Whole characters move on; an invalid sequence (not merely an unfinished one at the
        // end) becomes U+FFFD, as lossy decoding does.
        loop {
            match std::str::from_utf8(&self.bytes) {
                Ok(s) => {
                    self.held.push_str(s);
                    self.bytes.clear();
                    break;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    let text = std::str::from_utf8(&self.bytes[..valid]).expect("valid up to here");
                    self.held.push_str(text);
                    match e.error_len() {
                        Some(bad) => {
                            self.held.push('\u{fffd}');
                            self.bytes.drain(..valid + bad);
                        }
                        None => {
                            self.bytes.drain(..valid);
                            break;
                        }
                    }
                }
            }
        }
        if let Some(at) = self
            .stop
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min()
        {
            self.held.truncate(at);
            self.done = true;
            let out = std::mem::take(&mut self.held);
            self.text.push_str(&out);
            return (out, true);
        }
        // Hold back the longest end of the text that begins some stop string.
        let mut keep = 0;
        for s in self.stop {
            for (i, _) in s.char_indices().skip(1) {
                if self.held.ends_with(&s[..i]) {
                    keep = keep.max(i);
                }
            }
        }
        let cut = self.held.len() - keep;
        let out: String = self.held.drain(..cut).collect();
        self.text.push_str(&out);
        (out, false)
    }

    /// The rest, at the end of generation.
    fn finish(&mut self) -> String {
        if self.done {
            return String::new();
        }
        let mut out = std::mem::take(&mut self.held);
        if !self.bytes.is_empty() {
            out.push_str(&String::from_utf8_lossy(&self.bytes));
            self.bytes.clear();
        }
        self.text.push_str(&out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_waits_for_whole_characters_and_cuts_at_stop_strings() {
        let stop = vec!["\nUser:".to_string()];
        let mut s = TextStream::new(&stop);
        let euro = "€".as_bytes();
        assert_eq!(s.push(&euro[..1]), (String::new(), false));
        assert_eq!(s.push(&euro[1..]), ("€".into(), false));
        assert_eq!(
            s.push(b"ok\nUs"),
            ("ok".into(), false),
            "a possible stop is held"
        );
        assert_eq!(s.push(b"e"), (String::new(), false));
        assert_eq!(s.push(b"r: hi"), (String::new(), true));
        assert_eq!(s.text, "€ok");
        let mut s = TextStream::new(&stop);
        assert_eq!(
            s.push(b"a\nUx"),
            ("a\nUx".into(), false),
            "released when it cannot match"
        );
        assert_eq!(s.push(b"\n"), (String::new(), false));
        assert_eq!(s.finish(), "\n");
        assert_eq!(s.text, "a\nUx\n");
        let none: Vec<String> = Vec::new();
        let mut s = TextStream::new(&none);
        assert_eq!(
            s.push(&[0xff, b'a']),
            ("\u{fffd}a".into(), false),
            "invalid bytes replaced"
        );
        // An invalid byte does not take a character that has only begun with it.
        assert_eq!(s.push(&[0xff, 0xe2]), ("\u{fffd}".into(), false));
        assert_eq!(s.push(&[0x82, 0xac]), ("€".into(), false));
    }
}
