//! Generative language models from GGUF files: `ember generate --model FILE "prompt"`
//! writes the continuation of a raw prompt; `ember chat --model FILE` holds a conversation
//! in the model's chat template. Text goes to stdout as it is generated; progress and
//! timings go to stderr.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use ember::jobs::generate::complete;
use ember::llm::{Chat, GenerateOptions, LanguageModel, Sampling};
use ember::read::{self, Limit};
use ember::report::timing_text;
use ember::Error;

/// The sampling flags `generate`, `chat` and `ask --llm` share (llama.cpp's defaults).
#[derive(Args, Clone, Debug)]
pub struct SamplingArgs {
    /// Most tokens to generate.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_tokens: u64,
    /// Sampling temperature; 0 is greedy (the most likely token every time).
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Sample among the k most likely tokens (0: all; default 40).
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Sample among the most likely tokens whose probabilities sum to p (default 0.95).
    #[arg(long)]
    pub top_p: Option<f32>,
    /// Drop tokens less likely than this fraction of the most likely one (default 0.05).
    #[arg(long)]
    pub min_p: Option<f32>,
    /// Penalise the last 64 tokens' repetition (1: off).
    #[arg(long, default_value_t = 1.0)]
    pub repeat_penalty: f32,
    /// Random seed: the same seed gives the same text (default 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Stop before this text (repeatable, 1 to 256 bytes); it is not written.
    #[arg(long, value_name = "TEXT")]
    pub stop: Vec<String>,
}

impl SamplingArgs {
    /// The options, with `temperature` when the flag is not given.
    pub fn options(&self, temperature: f32) -> ember::Result<GenerateOptions> {
        let d = Sampling::default();
        let temperature = self.temperature.unwrap_or(temperature);
        let drawn = [
            ("--top-k", self.top_k.is_some()),
            ("--top-p", self.top_p.is_some()),
            ("--min-p", self.min_p.is_some()),
            ("--seed", self.seed.is_some()),
        ];
        ember::jobs::generate::refuse_greedy_settings(temperature, &drawn)?;
        let sampling = Sampling {
            temperature,
            top_k: self.top_k.unwrap_or(d.top_k),
            top_p: self.top_p.unwrap_or(d.top_p),
            min_p: self.min_p.unwrap_or(d.min_p),
            repeat_penalty: self.repeat_penalty,
            seed: self.seed.unwrap_or(d.seed),
            ..d
        };
        let options = GenerateOptions {
            max_tokens: self.max_tokens as usize,
            sampling,
            stop: self.stop.clone(),
        };
        // Checked before the model loads.
        options.check()?;
        Ok(options)
    }
}

#[derive(Args)]
pub struct GenerateArgs {
    /// A GGUF model file (llama-family: SmolLM2, Qwen2.5, Llama 3 …).
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// The prompt, used as written: special tokens in it (`<|im_start|>`) are read as those
    /// tokens, and no chat template is applied. `-` reads it from standard input.
    prompt: String,
    #[command(flatten)]
    sampling: SamplingArgs,
    #[command(flatten)]
    threads: super::Threads,
}

#[derive(Args)]
pub struct ChatArgs {
    /// A GGUF model file with a chat template (ChatML or Llama 3's).
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// The system prompt (default: the one the model's template writes, if any).
    #[arg(long)]
    system: Option<String>,
    #[command(flatten)]
    sampling: SamplingArgs,
    #[command(flatten)]
    threads: super::Threads,
}

/// Loads a model, saying so on stderr.
pub fn load(path: &Path) -> ember::Result<LanguageModel> {
    ember::jobs::generate::load(path, |model, seconds| {
        eprintln!("{}", ember::report::loaded_text(path, model, seconds))
    })
}

/// Writes streamed text to stdout at once.
pub fn print_stream(text: &str) -> ember::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Error::invalid(format!("cannot write to standard output: {e}")))
}

pub fn run_generate(args: GenerateArgs) -> ember::Result<()> {
    super::set_threads(args.threads)?;
    let options = args.sampling.options(0.8)?;
    let prompt = match args.prompt.as_str() {
        "-" => read::stdin_text(Limit::PROMPT)?,
        prompt => prompt.to_string(),
    };
    let g = complete(&args.model, &prompt, &options, load, print_stream)?;
    print_stream("\n")?;
    eprintln!("{}", timing_text(&g));
    Ok(())
}

pub fn run_chat(args: ChatArgs) -> ember::Result<()> {
    super::set_threads(args.threads)?;
    let options = args.sampling.options(0.8)?;
    let model = load(&args.model)?;
    let mut chat = Chat::new(&model, args.system.as_deref())?;
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        eprintln!(
            "type a message and press Enter; /reset forgets the conversation, /exit or Ctrl-D ends"
        );
    }
    let stdin = std::io::stdin();
    let mut lines = read::lines(stdin.lock(), Limit::CHAT, Path::new(read::STDIN));
    loop {
        if interactive {
            eprint!("> ");
        }
        let Some(line) = lines.next() else { break };
        let line = line?;
        let text = line.trim();
        match text {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                chat.reset();
                eprintln!("(conversation forgotten)");
                continue;
            }
            _ => {}
        }
        let g = chat.say(text, &options, print_stream)?;
        print_stream("\n")?;
        if interactive {
            eprintln!("[{}]", timing_text(&g));
        }
    }
    Ok(())
}
