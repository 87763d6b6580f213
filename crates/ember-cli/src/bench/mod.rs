//! `ember bench WORKLOAD`: speed measurements, each against a baseline timed in the same run.
//!
//! - `mlp`: the reference MNIST MLP against a hand-written fused MLP on the same `gemm`;
//! - `cnn`: the MNIST convnet (models/mnist-cnn.toml) against the same network in PyTorch
//!   (bench/mnist_cnn.py, run with the interpreter given by `--python`);
//! - `conv`: convolution forward + backward throughput in GFLOP/s, by im2col + `gemm` and by
//!   the direct kernel, against the plain matrix product on the same shapes;
//! - `embed`: sentence embeddings per second against sentence-transformers on PyTorch
//!   (bench/embed.py, with `--python`);
//! - `search`: FAQ search over 100,000 vectors, against bare dot products;
//! - `predict`: tape-free inference of a saved MNIST MLP and convnet, single-sample latency
//!   and batch throughput, from one thread and from two threads sharing one model;
//! - `tune`: Ember's TPE sampler against Optuna's on the same search and training
//!   (bench/tune_optuna.py, with `--python`);
//! - `recommend`: MF and SVD++ training on MovieLens 100K against Surprise's SVD and SVDpp
//!   with the same settings (bench/recommend_surprise.py, with `--python`);
//! - `generate`: a GGUF language model's prompt processing and generation in tokens/s at
//!   1 and 2 threads, against llama.cpp on the same file (bench/generate_llamacpp.py, with
//!   `--python`);
//! - `distributed`: the convnet's epoch on 2 MPI ranks × 1 thread against 1 process × 1 and
//!   × 2 threads, the all-reduce's latency and bandwidth, an α–β cost model for 8–64 nodes,
//!   against PyTorch DistributedDataParallel (bench/ddp_cnn.py, with `--python`);
//! - `privacy`: a DP-SGD epoch of models/mnist-dp.toml against Opacus on the same network,
//!   data, batch, clipping and noise (bench/privacy_opacus.py, with `--python`);
//! - `serve`: `ember serve` under 1, 8 and 64 connections, MNIST MLP and MiniLM, a memory soak,
//!   against FastAPI + uvicorn + PyTorch (bench/serve_fastapi.py, with `--python`).

mod baseline;
mod cnn;
mod conv;
mod distributed;
mod embed;
mod generate;
mod mlp;
mod predict;
mod privacy;
mod recommend;
mod search;
mod serve;
mod tune;

use std::path::PathBuf;

use clap::{Args, ValueEnum};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Workload {
    /// The reference MNIST MLP against a hand-written fused MLP.
    Mlp,
    /// The MNIST convnet against PyTorch (with --python).
    Cnn,
    /// Convolution GFLOP/s by im2col and by the direct kernel, against gemm on the same shapes.
    Conv,
    /// Sentence embeddings per second against sentence-transformers (with --python).
    Embed,
    /// FAQ search: queries per second over 100,000 indexed vectors.
    Search,
    /// Latency and throughput of saved MNIST models, from one thread and two sharing one model.
    Predict,
    /// Ember's TPE against Optuna's on the same search and training (with --python).
    Tune,
    /// MF and SVD++ training on MovieLens 100K against Surprise (with --python).
    Recommend,
    /// `ember serve` under load, against FastAPI + uvicorn + PyTorch (with --python).
    Serve,
    /// GGUF language model prompt processing and generation against llama.cpp (with --python).
    Generate,
    /// A DP-SGD epoch of models/mnist-dp.toml against Opacus (with --python).
    Privacy,
    /// Data-parallel training on 2 MPI ranks against 1 process, all-reduce latency and
    /// bandwidth, against PyTorch DDP (with --python; needs a binary built with --features mpi).
    Distributed,
}

#[derive(Args)]
pub struct BenchArgs {
    /// What to time.
    #[arg(value_enum, default_value = "mlp")]
    workload: Workload,
    /// MNIST folder (the four IDX files, plain or .gz).
    #[arg(long, value_name = "DIR", default_value = "data/mnist")]
    data: PathBuf,
    /// Epochs to time for each side (default: 5 for mlp, 3 for cnn, 2 for distributed and privacy); generate: timed runs per side (default 3).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    epochs: Option<u64>,
    /// Threads for the numeric kernels, on both sides.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    threads: u64,
    /// Seed for initialisation and shuffling.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// cnn, embed, tune, distributed: the Python interpreter of a virtual environment with torch (and
    /// sentence-transformers), or optuna, for the other side of the same run (bench/README.md).
    #[arg(long, value_name = "PYTHON")]
    python: Option<PathBuf>,
    /// embed: the sentence-transformers folder to time (all-MiniLM-L6-v2).
    #[arg(long, value_name = "DIR")]
    encoder: Option<PathBuf>,
    /// cnn, distributed: the model file to time (default models/mnist-cnn.toml; privacy:
    /// models/mnist-dp.toml); tune: the model file
    /// whose [tune] section to search (default bench/tune/mnist-tpe.toml); generate: the GGUF
    /// file (default target/models/SmolLM2-135M-Instruct.Q4_1.gguf).
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
    /// tune: the sampler seeds, one search per seed and side.
    #[arg(long, value_name = "LIST", default_value = "1,2,3,4,5")]
    seeds: String,
    /// tune: trials per search (default: the file's max_trials).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    trials: Option<u64>,
    /// predict: a saved MNIST MLP to time (default: train models/mnist-mlp.toml and save it).
    #[arg(long, value_name = "FILE")]
    mlp: Option<PathBuf>,
    /// predict: a saved MNIST convnet to time (default: train models/mnist-cnn.toml for one
    /// epoch and save it).
    #[arg(long, value_name = "FILE")]
    cnn: Option<PathBuf>,
    /// predict: the batch size of the throughput runs.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    batch_size: u64,
    /// serve: seconds timed at each number of connections.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    seconds: u64,
    /// serve: seconds of the memory soak.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86400))]
    soak: u64,
    /// generate: the thread counts to time, each side in a process of its own.
    #[arg(long, value_name = "LIST", default_value = "1,2")]
    thread_counts: String,
    /// generate, distributed: run one measurement in this process and print it as JSON (used by the bench itself).
    #[arg(long, hide = true)]
    worker: bool,
    /// generate: time each side beside a busy process pinned to one core (the last one this
    /// process may use), as a machine shared with another job is.
    #[arg(long)]
    busy_core: bool,
    /// generate: spin on one core until killed (the busy process of `--busy-core`).
    #[arg(long, hide = true)]
    spin: bool,
    /// recommend: the ratings file (default ../shared/data/movielens-100k/u.data).
    #[arg(long, value_name = "FILE")]
    ratings: Option<PathBuf>,
}

/// The flags each workload reads (every one but distributed also reads --threads).
fn flags_read(workload: &Workload) -> &'static [&'static str] {
    match workload {
        Workload::Mlp => &["data", "epochs", "seed"],
        Workload::Cnn => &["data", "epochs", "seed", "python", "model"],
        Workload::Conv | Workload::Search => &["seed"],
        Workload::Embed => &["encoder", "python"],
        Workload::Predict => &["data", "seed", "batch_size", "mlp", "cnn"],
        Workload::Tune => &["model", "python", "seeds", "trials"],
        Workload::Recommend => &["seed", "python", "ratings"],
        Workload::Serve => &["data", "mlp", "python", "seconds", "soak", "encoder"],
        Workload::Generate => &[
            "epochs",
            "model",
            "python",
            "thread_counts",
            "worker",
            "busy_core",
            "spin",
        ],
        Workload::Distributed => &["data", "epochs", "seed", "python", "model", "worker"],
        Workload::Privacy => &["data", "epochs", "seed", "python", "model"],
    }
}

/// Refuses the flags given (by `matches`) that the workload does not read.
fn refuse_unused(args: &BenchArgs, matches: Option<&clap::ArgMatches>) -> ember::Result<()> {
    let Some(matches) = matches else {
        return Ok(());
    };
    let read = flags_read(&args.workload);
    let command = <BenchArgs as Args>::augment_args(clap::Command::new("bench"));
    let unused: Vec<String> = command
        .get_arguments()
        .map(|arg| arg.get_id().as_str())
        // Every workload reads --threads but distributed, which times its own thread counts.
        .filter(|id| *id != "workload" && !read.contains(id))
        .filter(|id| *id != "threads" || matches!(args.workload, Workload::Distributed))
        .filter(|id| matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine))
        .map(|id| format!("--{}", id.replace('_', "-")))
        .collect();
    let unused: Vec<&str> = unused.iter().map(String::as_str).collect();
    let workload = clap::ValueEnum::to_possible_value(&args.workload)
        .map_or_else(String::new, |v| v.get_name().to_string());
    ember::jobs::checks::does_nothing(&format!("for `ember bench {workload}`"), "", &unused)
}

pub fn run(args: BenchArgs, matches: Option<&clap::ArgMatches>) -> ember::Result<()> {
    refuse_unused(&args, matches)?;
    ember::set_num_threads(args.threads as usize)?;
    match args.workload {
        Workload::Mlp => mlp::run(&args),
        Workload::Cnn => cnn::run(&args),
        Workload::Conv => conv::run(&args),
        Workload::Embed => embed::run(&args),
        Workload::Search => search::run(&args),
        Workload::Predict => predict::run(&args),
        Workload::Tune => tune::run(&args),
        Workload::Recommend => recommend::run(&args),
        Workload::Serve => serve::run(&args),
        Workload::Generate => generate::run(&args),
        Workload::Distributed => distributed::run(&args),
        Workload::Privacy => privacy::run(&args),
    }
}

/// Runs a baseline script of bench/ with `python` and reads the JSON object it prints last.
fn run_python<T: serde::de::DeserializeOwned>(
    python: &std::path::Path,
    script: &str,
    args: &[(&str, String)],
) -> ember::Result<T> {
    use ember::Error;
    let script = std::path::Path::new("bench").join(script);
    let mut command = std::process::Command::new(python);
    command.arg(&script);
    for (flag, value) in args {
        command.args([*flag, value.as_str()]);
    }
    let output = command.output().map_err(|e| Error::io(python, e))?;
    if !output.status.success() {
        return Err(Error::invalid(format!(
            "{} {} failed: {}",
            python.display(),
            script.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).map_err(|e| {
        Error::invalid(format!(
            "unexpected output from {}: {e}: {line}",
            script.display()
        ))
    })
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn list(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:.3}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Peak resident set size of this process (VmHWM), in MB.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
