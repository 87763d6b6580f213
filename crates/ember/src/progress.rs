//! Progress of the long jobs other than a network's epochs (those are `model/progress.rs`'s
//! Keras lines): encoding texts, indexing a FAQ, a recommender's epochs, explaining inputs,
//! reading a prompt. A bar on standard error while it is a terminal, nothing when it is
//! piped, nothing at all after [`set_enabled`]`(false)` (the commands' `-q`).
//! `EMBER_PROGRESS=lines` prints one closing line per job instead of a bar, wherever
//! standard error goes (for logs, and for the tests that check the jobs report).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns progress on or off for the whole process (on by default).
pub fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// How a job shows its progress.
enum Show {
    Nothing,
    Bar(ProgressBar),
    /// One line when the job ends.
    Line,
}

/// The progress of one job: `total` things of a kind (`unit`). Safe to advance from
/// several threads. The bar or the line ends when it is dropped.
pub struct Progress {
    what: String,
    unit: &'static str,
    total: u64,
    done: std::sync::atomic::AtomicU64,
    started: Instant,
    show: Show,
}

impl Progress {
    /// Starts the progress of `what` ("Encoding") over `total` `unit`s ("texts").
    pub fn new(what: &str, total: usize, unit: &'static str) -> Progress {
        let lines = std::env::var("EMBER_PROGRESS").as_deref() == Ok("lines");
        let show = match (ENABLED.load(Ordering::Relaxed), lines) {
            (false, _) => Show::Nothing,
            (true, true) => Show::Line,
            (true, false) if std::io::stderr().is_terminal() => {
                let bar = ProgressBar::with_draw_target(
                    Some(total as u64),
                    ProgressDrawTarget::stderr_with_hz(10),
                );
                let template = format!("{what} {{pos:>5}}/{{len}} {unit} {{bar:20.cyan/blue}} {{elapsed}} (ETA {{eta}})");
                if let Ok(style) = ProgressStyle::with_template(&template) {
                    bar.set_style(style.progress_chars("━━ "));
                }
                Show::Bar(bar)
            }
            (true, false) => Show::Nothing,
        };
        Progress {
            what: what.to_string(),
            unit,
            total: total as u64,
            done: Default::default(),
            started: Instant::now(),
            show,
        }
    }

    /// `n` more done.
    pub fn advance(&self, n: usize) {
        self.done.fetch_add(n as u64, Ordering::Relaxed);
        if let Show::Bar(bar) = &self.show {
            bar.inc(n as u64);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        let seconds = self.started.elapsed().as_secs_f64();
        match &self.show {
            Show::Nothing => {}
            Show::Bar(bar) => bar.finish(),
            Show::Line => eprintln!(
                "{}: {}/{} {} in {seconds:.1} s",
                self.what,
                self.done.load(Ordering::Relaxed),
                self.total,
                self.unit
            ),
        }
    }
}
