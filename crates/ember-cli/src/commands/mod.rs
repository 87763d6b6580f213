//! One file per subcommand, and what they share: finding the model file and the data.

pub mod cv;
pub mod data;
pub mod embed;
pub mod evaluate;
pub mod explain;
pub mod faq;
pub mod generate;
pub mod predict;
pub mod privacy;
pub mod recommend;
pub mod serve;
pub mod summary;
pub mod table;
pub mod text;
pub mod train;
pub mod tune;

/// `--threads N`, which every command that computes takes.
#[derive(clap::Args, Clone, Copy)]
pub struct Threads {
    /// Threads for the numeric kernels (default: EMBER_NUM_THREADS, else all cores).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub threads: Option<u64>,
}

/// Applies `--threads` (or leaves `EMBER_NUM_THREADS` / all cores in charge).
pub fn set_threads(Threads { threads }: Threads) -> ember::Result<()> {
    // A bad EMBER_NUM_THREADS is an error even when --threads overrides it.
    let from_env = ember::tensor::threads::threads_from_env()?;
    match threads.or(from_env.map(|n| n as u64)) {
        Some(n) => ember::set_num_threads(usize::try_from(n).unwrap_or(usize::MAX)),
        None => Ok(()),
    }
}
