//! Keras-style progress output: a bar per epoch on a terminal, one line per epoch otherwise.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::fit::Verbosity;
use super::history::EpochLog;
use crate::metrics::RunningMetrics;

/// Redraw at most this often: drawing every step would cost more than a step.
const REDRAW: Duration = Duration::from_millis(100);

pub(crate) struct Progress {
    mode: Verbosity,
    bar: Option<ProgressBar>,
    steps: usize,
    started: Instant,
    last_draw: Instant,
}

impl Progress {
    pub fn new(verbosity: Verbosity) -> Self {
        let mode = match verbosity {
            Verbosity::Auto if std::io::stdout().is_terminal() => Verbosity::ProgressBar,
            Verbosity::Auto => Verbosity::EpochLines,
            other => other,
        };
        let now = Instant::now();
        Progress {
            mode,
            bar: None,
            steps: 0,
            started: now,
            last_draw: now,
        }
    }

    pub fn start_epoch(&mut self, epoch: usize, epochs: usize, steps: usize) {
        self.steps = steps;
        self.started = Instant::now();
        if self.mode == Verbosity::Silent {
            return;
        }
        println!("Epoch {epoch}/{epochs}");
        if self.mode == Verbosity::ProgressBar {
            let bar =
                ProgressBar::with_draw_target(Some(steps as u64), ProgressDrawTarget::stdout());
            let style = ProgressStyle::with_template("{pos:>5}/{len} {bar:20.cyan/blue} {msg}")
                .expect("static template")
                .progress_chars("━━ ");
            bar.set_style(style);
            self.bar = Some(bar);
        }
    }

    pub fn step(&mut self, done: usize, running: &RunningMetrics, with_accuracy: bool) {
        let Some(bar) = &self.bar else { return };
        let now = Instant::now();
        if now - self.last_draw < REDRAW && done < self.steps {
            return;
        }
        self.last_draw = now;
        bar.set_position(done as u64);
        let mut msg = self.timing(done);
        if with_accuracy {
            msg += &format!(" - accuracy: {:.4}", running.accuracy());
        }
        msg += &format!(" - loss: {:.4}", running.loss());
        bar.set_message(msg);
    }

    pub fn end_epoch(&mut self, log: &EpochLog) {
        let metrics: String = log
            .metrics()
            .iter()
            .map(|(name, v)| format!(" - {name}: {v:.4}"))
            .collect();
        match self.mode {
            Verbosity::Silent | Verbosity::Auto => {}
            Verbosity::ProgressBar => {
                if let Some(bar) = self.bar.take() {
                    bar.set_position(self.steps as u64);
                    bar.finish_with_message(format!("{}{metrics}", self.timing_of(log)));
                }
            }
            Verbosity::EpochLines => {
                println!(
                    "{}/{} - {}{metrics}",
                    self.steps,
                    self.steps,
                    self.timing(self.steps)
                );
            }
        }
    }

    /// Timing of a finished epoch: whole epoch, and training time per step.
    fn timing_of(&self, log: &EpochLog) -> String {
        format_timing(log.seconds, log.train_seconds / self.steps.max(1) as f64)
    }

    /// Timing so far, during an epoch.
    fn timing(&self, done: usize) -> String {
        let elapsed = self.started.elapsed().as_secs_f64();
        format_timing(elapsed, elapsed / done.max(1) as f64)
    }
}

/// "3.1s 2ms/step", Keras's timing format.
fn format_timing(elapsed: f64, per_step: f64) -> String {
    let per_step = if per_step >= 1e-3 {
        format!("{:.0}ms/step", per_step * 1e3)
    } else {
        format!("{:.0}us/step", per_step * 1e6)
    };
    format!("{elapsed:.1}s {per_step}")
}
