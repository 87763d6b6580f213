//! How many threads the kernels may use: `set_num_threads`, or `EMBER_NUM_THREADS`, or all cores.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use crate::error::{Error, Result};

static NUM_THREADS: AtomicUsize = AtomicUsize::new(0);
static POOL: OnceLock<usize> = OnceLock::new();

/// Sets the number of threads Ember's kernels use. Call it before the first training or
/// inference step; later calls with another number are an error, since the worker pool
/// is built once per process.
pub fn set_num_threads(threads: usize) -> Result<()> {
    check_count(threads)?;
    let built = *POOL.get_or_init(|| build_pool(threads));
    if built != threads {
        return Err(Error::invalid(format!(
            "the thread pool already runs {built} threads; set the count before training starts"
        )));
    }
    Ok(())
}

/// The number of threads kernels use (builds the pool on first call).
pub fn num_threads() -> usize {
    *POOL.get_or_init(|| build_pool(default_threads()))
}

/// The most threads a pool may have: far more than any machine has cores, few enough
/// that a typo (`--threads 100000`) is an error rather than an exhausted process.
pub const MAX_THREADS: usize = 1024;

fn check_count(threads: usize) -> Result<()> {
    if !(1..=MAX_THREADS).contains(&threads) {
        return Err(Error::invalid(format!(
            "the number of threads must be between 1 and {MAX_THREADS}, got {threads}"
        )));
    }
    Ok(())
}

/// `EMBER_NUM_THREADS`, if set: an error when it is not a thread count (commands check it
/// up front; the library falls back to all cores).
pub fn threads_from_env() -> Result<Option<usize>> {
    match std::env::var("EMBER_NUM_THREADS") {
        Ok(v) => parse_threads(&v)
            .map(Some)
            .map_err(|e| Error::invalid(format!("EMBER_NUM_THREADS: {}", e.detail()))),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(Error::invalid(
            "EMBER_NUM_THREADS: threads must be a positive integer, got a value that is not text",
        )),
    }
}

fn default_threads() -> usize {
    threads_from_env()
        .ok()
        .flatten()
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn build_pool(threads: usize) -> usize {
    NUM_THREADS.store(threads, Ordering::Relaxed);
    // Worker threads flush subnormals too, like the training thread itself.
    // If another library already built rayon's global pool, Ember still caps its own
    // work at `threads` through the gemm parallelism setting.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .start_handler(|_| super::denormal::flush_denormals_forever())
        .build_global();
    threads
}

thread_local! {
    /// The most threads this thread's kernels may use; 0 while no limit is set (see
    /// [`serial`] and [`limited`]).
    static LIMIT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Runs `f` with every kernel it calls single-threaded: for callers that already spread
/// coarser work (whole batches) over the threads.
pub fn serial<R>(f: impl FnOnce() -> R) -> R {
    limited(1, f)
}

/// Runs `f` with the kernels it calls on at most `threads` threads: for callers that run
/// several trainings at once (a hyperparameter search's parallel trials), so that together
/// they do not ask for more threads than the pool has.
pub fn limited<R>(threads: usize, f: impl FnOnce() -> R) -> R {
    let previous = LIMIT.replace(threads.max(1));
    let result = f();
    LIMIT.set(previous);
    result
}

/// The threads a kernel called from here may use: the limit set by [`limited`], else all.
pub(crate) fn kernel_threads() -> usize {
    match LIMIT.get() {
        0 => num_threads(),
        limit => limit.min(num_threads()),
    }
}

/// Runs `f` on every job and returns the results in job order: on the worker pool when
/// there are several threads, inline otherwise. Jobs must not depend on which thread runs
/// them, so results are the same for any thread count.
pub(crate) fn run_jobs<T: Send, R: Send>(jobs: Vec<T>, f: impl Fn(T) -> R + Sync + Send) -> Vec<R> {
    use rayon::prelude::*;
    if jobs.len() <= 1 || kernel_threads() == 1 {
        jobs.into_iter().map(f).collect()
    } else {
        jobs.into_par_iter().map(f).collect()
    }
}

/// Parses an `EMBER_NUM_THREADS`-style value, for command-line flags.
pub fn parse_threads(value: &str) -> Result<usize> {
    match value.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_THREADS).contains(&n) => Ok(n),
        _ => Err(Error::invalid(format!(
            "threads must be an integer from 1 to {MAX_THREADS}, got '{value}'"
        ))),
    }
}
