//! A progress bar on stderr (simulated time, events per second), shown only when stderr
//! is a terminal and progress was asked for, so logs and CI output stay clean.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use surge_model::time::{Nanos, SECOND};

pub struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
}

impl Progress {
    pub fn new(wanted: bool, simulated: Nanos) -> Self {
        let bar = (wanted && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(simulated / SECOND),
                ProgressDrawTarget::stderr_with_hz(4),
            );
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} simulated {pos}/{len} s [{bar:30}] {msg} ({elapsed})",
                )
                .expect("constant template")
                .progress_chars("=> "),
            );
            bar
        });
        Self {
            bar,
            started: Instant::now(),
        }
    }

    /// Called once per simulated second.
    pub fn update(&self, now: Nanos, events: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(now / SECOND);
            let wall = self.started.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!("{:.1} M events/s", events as f64 / wall / 1e6));
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
