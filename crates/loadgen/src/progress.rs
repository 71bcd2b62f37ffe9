//! One live line for the whole run, however many shards feed it.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The live display; hidden when not asked for (CI logs, tests).
pub struct Progress {
    bar: ProgressBar,
}

/// What the display shows after each interval.
pub struct Tick {
    pub elapsed: Duration,
    pub sessions_open: u64,
    pub sent_per_s: f64,
    pub ttft_p99: Option<Duration>,
    pub errors: u64,
    pub shards_alive: usize,
}

impl Progress {
    pub fn new(duration: Duration, visible: bool) -> Self {
        let bar = ProgressBar::with_draw_target(
            Some(duration.as_secs().max(1)),
            if visible {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:24}] {pos}/{len}s  {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        Self { bar }
    }

    /// Whether anything is drawn (what only the display needs is not worth computing
    /// otherwise).
    pub fn is_visible(&self) -> bool {
        !self.bar.is_hidden()
    }

    pub fn tick(&self, t: &Tick) {
        self.bar.set_position(t.elapsed.as_secs());
        let p99 = t.ttft_p99.map_or("-".to_string(), |d| {
            format!("{:.0} ms", d.as_secs_f64() * 1e3)
        });
        self.bar.set_message(format!(
            "sessions {}  msg/s {:.0}  ttft p99 {p99}  errors {}  shards {}",
            t.sessions_open, t.sent_per_s, t.errors, t.shards_alive
        ));
    }

    /// Prints a line above the display.
    pub fn note(&self, line: &str) {
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
