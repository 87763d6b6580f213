//! `ember bench generate`: a GGUF language model's prompt processing (a 512-token prompt in
//! one go) and generation (128 tokens one at a time, greedy), in tokens per second, Ember
//! and llama.cpp (bench/generate_llamacpp.py, with `--python`) on the same file and the same
//! token ids, at each thread count of `--thread-counts`, as llama-bench's pp512 and tg128.
//! Each side of each thread count runs in a process of its own, whose peak RSS is reported.
//! With `--busy-core`, both sides run beside a process that spins on one core (the last one
//! this process may use), as on a machine shared with another job: the kernels' thread team
//! must then back off rather than wait for a thread that has no core.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ember::llm::{LanguageModel, Logits};
use ember::Error;
use serde::{Deserialize, Serialize};

use super::BenchArgs;

/// The default model: where scripts/fetch-smollm2.sh puts it.
pub const DEFAULT_MODEL: &str = "target/models/SmolLM2-135M-Instruct.Q4_1.gguf";
const PROMPT_TOKENS: usize = 512;
const NEW_TOKENS: usize = 128;
/// The text the prompt's token ids come from.
const TEXT: &str = "README.md";

/// One side's figures, as the child process prints them.
#[derive(Debug, Deserialize, Serialize)]
struct Figures {
    threads: u64,
    prompt_tokens_per_second: f64,
    generate_tokens_per_second: f64,
    peak_rss_mib: f64,
    generated_ids: Vec<u32>,
}

fn model_path(args: &BenchArgs) -> PathBuf {
    args.model
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL))
}

/// The first `n` token ids of the README, repeated as needed.
fn prompt_ids(model: &LanguageModel, n: usize) -> ember::Result<Vec<u32>> {
    let text = std::fs::read_to_string(TEXT).map_err(|e| Error::io(TEXT, e))?;
    let ids = model.vocab.encode(&text, false)?;
    if ids.is_empty() {
        return Err(Error::data(TEXT, "gives no tokens"));
    }
    Ok(ids.iter().copied().cycle().take(n).collect())
}

fn argmax(v: &[f32]) -> u32 {
    v.iter()
        .enumerate()
        .fold(0, |b, (i, &x)| if x > v[b] { i } else { b }) as u32
}

/// The measurement, in this process (`--worker`).
fn measure(args: &BenchArgs) -> ember::Result<Figures> {
    let model = LanguageModel::load(&model_path(args))?;
    let ids = prompt_ids(&model, PROMPT_TOKENS)?;
    let repeats = args.epochs.unwrap_or(3) as usize;
    let mut prompt_seconds = Vec::new();
    // One untimed run first, as llama-bench does.
    for r in 0..=repeats {
        let mut cache = model.llama.cache();
        let started = Instant::now();
        let logits = model.llama.forward(&ids, &mut cache, Logits::Last)?;
        let seconds = started.elapsed().as_secs_f64();
        std::hint::black_box(logits);
        if r > 0 {
            prompt_seconds.push(seconds);
        }
    }
    let mut generate_seconds = Vec::new();
    let mut generated_ids = Vec::new();
    for r in 0..=repeats {
        let mut cache = model.llama.cache();
        let mut logits = model.llama.forward(&ids[..16], &mut cache, Logits::Last)?;
        let started = Instant::now();
        let mut out = Vec::with_capacity(NEW_TOKENS);
        for _ in 0..NEW_TOKENS {
            let next = argmax(&logits);
            out.push(next);
            logits = model.llama.forward(&[next], &mut cache, Logits::Last)?;
        }
        let seconds = started.elapsed().as_secs_f64();
        if r > 0 {
            generate_seconds.push(seconds);
        }
        generated_ids = out;
    }
    Ok(Figures {
        threads: args.threads,
        prompt_tokens_per_second: PROMPT_TOKENS as f64 / super::median(&prompt_seconds),
        generate_tokens_per_second: NEW_TOKENS as f64 / super::median(&generate_seconds),
        peak_rss_mib: super::peak_rss_mb().unwrap_or(f64::NAN),
        generated_ids,
    })
}

pub fn run(args: &BenchArgs) -> ember::Result<()> {
    if args.spin {
        spin();
    }
    if args.worker {
        let figures = measure(args)?;
        println!(
            "{}",
            serde_json::to_string(&figures).expect("figures are JSON")
        );
        return Ok(());
    }
    let model = model_path(args);
    if !model.is_file() {
        return Err(Error::invalid(format!(
            "no model at {} (scripts/fetch-smollm2.sh fetches SmolLM2-135M-Instruct; --model FILE for another)",
            model.display()
        )));
    }
    let counts = args
        .thread_counts
        .split(',')
        .map(|t| {
            t.trim()
                .parse::<u64>()
                .ok()
                .filter(|&t| (1..=1024).contains(&t))
        })
        .collect::<Option<Vec<u64>>>()
        .ok_or_else(|| {
            Error::invalid(format!(
                "--thread-counts '{}' is not a list of thread counts",
                args.thread_counts
            ))
        })?;
    let repeats = args.epochs.unwrap_or(3);
    println!(
        "{}: pp{PROMPT_TOKENS} (one {PROMPT_TOKENS}-token prompt) and tg{NEW_TOKENS} ({NEW_TOKENS} greedy tokens after 16), median of {repeats} runs, tokens/s",
        model.display()
    );
    let _busy = if args.busy_core {
        let busy = BusyCore::start()?;
        println!(
            "beside a busy process spinning on CPU {} (--busy-core)",
            busy.cpu
        );
        Some(busy)
    } else {
        None
    };
    println!(
        "{:<8} {:<10} {:>10} {:>10} {:>14}",
        "threads", "engine", "pp512", "tg128", "peak RSS MiB"
    );
    for &threads in &counts {
        let ember = child(&model, threads, repeats)?;
        row(threads, "Ember", &ember);
        let Some(python) = &args.python else { continue };
        let llama: Figures = super::run_python(
            python,
            "generate_llamacpp.py",
            &[
                ("--model", model.display().to_string()),
                ("--threads", threads.to_string()),
                ("--prompt-tokens", PROMPT_TOKENS.to_string()),
                ("--new-tokens", NEW_TOKENS.to_string()),
                ("--repeat", repeats.to_string()),
            ],
        )?;
        row(threads, "llama.cpp", &llama);
        let same = ember
            .generated_ids
            .iter()
            .zip(&llama.generated_ids)
            .take_while(|(a, b)| a == b)
            .count();
        println!(
            "{:<8} {:<10} {:>9.2}× {:>9.2}×   (greedy tokens equal for the first {same} of {NEW_TOKENS})",
            threads,
            "ratio",
            ember.prompt_tokens_per_second / llama.prompt_tokens_per_second,
            ember.generate_tokens_per_second / llama.generate_tokens_per_second,
        );
    }
    if args.python.is_none() {
        println!("(llama.cpp not timed: pass --python VENV/bin/python with llama-cpp-python installed, bench/README.md)");
    }
    Ok(())
}

fn row(threads: u64, engine: &str, f: &Figures) {
    println!(
        "{threads:<8} {engine:<10} {:>10.1} {:>10.1} {:>14.0}",
        f.prompt_tokens_per_second, f.generate_tokens_per_second, f.peak_rss_mib
    );
}

/// Ember's side in a process of its own, with its own thread count.
fn child(model: &Path, threads: u64, repeats: u64) -> ember::Result<Figures> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::invalid(format!("cannot find this program: {e}")))?;
    let output = std::process::Command::new(&exe)
        .args(["bench", "generate", "--worker", "--model"])
        .arg(model)
        .args([
            "--threads",
            &threads.to_string(),
            "--epochs",
            &repeats.to_string(),
        ])
        .env_remove("EMBER_NUM_THREADS")
        .output()
        .map_err(|e| Error::io(&exe, e))?;
    if !output.status.success() {
        return Err(Error::invalid(format!(
            "the Ember run on {threads} threads failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .map_err(|e| Error::invalid(format!("unexpected output from the Ember run: {e}: {line}")))
}

/// The CPUs this process may run on.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: `set` is a plain bit set that sched_getaffinity fills in.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return vec![0];
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// Pins this process to the last allowed CPU and spins until killed (`--spin`).
fn spin() -> ! {
    let cpu = *allowed_cpus().last().unwrap_or(&0);
    // SAFETY: as above; a failure leaves the process unpinned, still busy.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
    let mut x = 1.0f64;
    loop {
        for _ in 0..1 << 20 {
            x = std::hint::black_box(x * 1.000_000_1 + 1e-9);
        }
    }
}

/// The busy process of `--busy-core`, killed when dropped.
struct BusyCore {
    child: std::process::Child,
    cpu: usize,
}

impl BusyCore {
    fn start() -> ember::Result<BusyCore> {
        let exe = std::env::current_exe()
            .map_err(|e| Error::invalid(format!("cannot find this program: {e}")))?;
        let child = std::process::Command::new(&exe)
            .args(["bench", "generate", "--spin"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .map_err(|e| Error::io(&exe, e))?;
        // Let it reach its core before anything is timed.
        std::thread::sleep(std::time::Duration::from_millis(200));
        let cpu = *allowed_cpus().last().unwrap_or(&0);
        Ok(BusyCore { child, cpu })
    }
}

impl Drop for BusyCore {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
