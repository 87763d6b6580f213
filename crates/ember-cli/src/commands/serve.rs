//! `ember serve PATH…`: saved models, FAQ indexes, recommenders, language models and sentence
//! encoders behind HTTP (KServe v2, a TF-Serving-style REST API with explanations, OpenAI
//! embeddings and chat, FAQ answers, recommendations, a web playground at `/`).

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use ember_serve::ServeOptions;

#[derive(Args)]
pub struct ServeArgs {
    /// Model files (`ember train --output`), FAQ indexes (`ember index`), recommenders
    /// (`ember recommend train`), GGUF language models, sentence encoder folders, or folders
    /// of `.safetensors` / `.index` / `.rec` files; each model is named by its file's stem
    /// (an encoder by its folder's name).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The port (0: any free one; the address is printed).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Rows merged into one batch at most.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=65536))]
    max_batch: u64,
    /// Microseconds a batch's first request waits for others. With 0, a batch is the
    /// requests that queued while the model was busy: no wait when idle, batches under load.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=10_000_000))]
    max_wait_us: u64,
    /// Requests that may wait per model; beyond, requests get 503 with Retry-After.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    queue: u64,
    /// Largest request body, in bytes.
    #[arg(long, default_value_t = 16 << 20, value_parser = clap::value_parser!(u64).range(1..=(1 << 32)))]
    max_body_bytes: u64,
    /// Instances (rows, images, texts) one request may carry.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_instances: u64,
    /// Milliseconds from a request's headers to its answer (then 503).
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    timeout_ms: u64,
    /// Milliseconds a client has to send a request's headers (then the connection closes).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    header_timeout_ms: u64,
    /// Milliseconds between checks of the served files for changes (hot reload).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    reload_ms: u64,
    /// Seconds requests in flight may take to finish after SIGTERM or Ctrl-C.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=3600))]
    grace_s: u64,
    /// A key every API request must carry as `Authorization: Bearer KEY` (health checks and
    /// the playground page excepted).
    #[arg(long, env = "EMBER_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    #[command(flatten)]
    threads: super::Threads,
}

pub fn run(args: ServeArgs) -> ember::Result<()> {
    super::set_threads(args.threads)?;
    // A client that hangs up, or a closed log pipe, must not end the server.
    #[cfg(unix)]
    // SAFETY: called before the server's threads start; SIG_IGN is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let options = ServeOptions {
        host: args.host,
        port: args.port,
        max_batch: args.max_batch as usize,
        max_wait: Duration::from_micros(args.max_wait_us),
        queue: args.queue as usize,
        max_body_bytes: usize::try_from(args.max_body_bytes).unwrap_or(usize::MAX),
        max_instances: args.max_instances as usize,
        request_timeout: Duration::from_millis(args.timeout_ms),
        header_timeout: Duration::from_millis(args.header_timeout_ms),
        api_key: args.api_key,
        reload_interval: Duration::from_millis(args.reload_ms),
        shutdown_grace: Duration::from_secs(args.grace_s),
    };
    ember_serve::serve(&args.paths, options, |address, models| {
        let mut out = std::io::stdout().lock();
        for (name, kind, source) in models {
            let _ = writeln!(out, "serving {name} ({kind}) from {}", source.display());
        }
        let _ = writeln!(out, "listening on http://{address}");
        let _ = out.flush();
    })
}
