//! `surge-calibrate`: fit the system model to measured runs, so that the model predicts
//! the next load level from the ones a team can rehearse.
//!
//! The loop a release team runs: rehearse staging at everyday load (two levels), fit the
//! model's keys so that simulating each run's own traffic reproduces what its users saw,
//! then ask the fitted model about the spike. Fitting asks the model many questions, as
//! planning does, and goes through the same machinery ([`surge_plan::batch`] runs the
//! replays, [`surge_plan::apply`] sets keys the way a profile overrides them); measured
//! runs are read from their run directories only.
//!
//! | module | job |
//! |---|---|
//! | [`runs`] | measured run directories: traffic, summary, scraped telemetry |
//! | [`keys`] | what a key holds, its parameters, a point as a system model |
//! | [`figures`] | what is matched: percentiles per scope, errors, busy workers |
//! | [`fit`] | identification, then Nelder–Mead inside a search over counts |
//! | [`output`] | the fitted system model (TOML, commented) and the fit report |

pub mod figures;
pub mod fit;
pub mod keys;
pub mod output;
pub mod runs;
mod search;

use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use surge_profile::SystemModel;

pub use fit::Unidentified;
pub use output::{Calibration, FittedKey, How};
pub use runs::MeasuredRun;

/// Why a calibration could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    /// A run directory that cannot be used (not one, simulated, unfinished, empty).
    #[error("{}: {reason}", dir.display())]
    BadRun { dir: PathBuf, reason: String },
    /// A key that cannot be fitted (unknown, or not a latency, rate or number).
    #[error("--fit {0}")]
    BadKey(String),
    /// Nothing left to fit, or no run given.
    #[error("{0}")]
    Nothing(String),
    /// A replay failed.
    #[error("a replay of the runs failed: {0}")]
    Simulation(String),
}

impl CalibrateError {
    /// Whether the caller's input is at fault (exit 2) rather than the replay (exit 3).
    pub fn is_usage(&self) -> bool {
        !matches!(self, Self::Simulation(_))
    }
}

/// How to calibrate.
#[derive(Debug, Clone)]
pub struct Options {
    /// Keys to fit (`*` for one name); empty: every key the data can identify.
    pub fit: Vec<String>,
    /// Seed of the first replay (each run and replication adds to it).
    pub seed: u64,
    /// Replays per run and evaluation; `None`: enough for about 10,000 answers per run.
    pub replications: Option<u32>,
    /// Threads for the replays.
    pub threads: usize,
    /// Most evaluations of the final Nelder–Mead stage.
    pub budget: usize,
    /// A progress bar on stderr (shown only on a terminal).
    pub progress: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            fit: Vec::new(),
            seed: 1,
            replications: None,
            threads: surge_plan::batch::default_threads(),
            budget: 400,
            progress: false,
        }
    }
}

/// Answers a run's replays should hold between them, when replications are not given.
const ANSWERS_PER_RUN: f64 = 10_000.0;

/// Reads the run directories, fits `start` to them and returns the fitted model with
/// its report.
pub fn calibrate(
    dirs: &[PathBuf],
    start: &SystemModel,
    start_name: &Path,
    opts: &Options,
) -> Result<Calibration, CalibrateError> {
    if dirs.is_empty() {
        return Err(CalibrateError::Nothing(
            "no run directory given; name the measured runs to fit, such as \
             results/local/20261203T101500Z"
                .into(),
        ));
    }
    let runs = dirs
        .iter()
        .map(|d| runs::load(d))
        .collect::<Result<Vec<_>, _>>()?;
    let named: Vec<String> = if opts.fit.is_empty() {
        keys::default_patterns(start)
    } else {
        opts.fit.clone()
    };
    let keys = keys::resolve(start, &named)?;
    let seeds = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let n = opts.replications.unwrap_or_else(|| {
                (ANSWERS_PER_RUN / r.summary.counts.sent.max(1) as f64).ceil() as u32
            });
            let base = opts.seed.wrapping_add(1000 * i as u64);
            (0..n.clamp(1, 64) as u64).map(|k| base + k).collect()
        })
        .collect();
    let mut problem = fit::Problem::new(&runs, start, keys, seeds, opts.threads);
    let mut warnings = output::differences(&runs, start, &problem.keys);
    warnings.extend(runs.iter().filter(|r| r.interrupted).map(|r| {
        format!(
            "{}: the run was interrupted; its data up to the stop is used",
            r.label
        )
    }));
    if opts.progress && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let bar = ProgressBar::new((opts.budget + 16 * problem.keys.len() + 40) as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "calibrating {bar:30} {pos} replays of the runs, {elapsed}",
            )
            .expect("a valid template"),
        );
        problem.progress = Some(bar);
    }
    let base = problem.evaluate_system(start)?;
    let identified = problem.identify(&base)?;
    if identified.params.is_empty()
        && identified.counts.is_empty()
        && identified.observed.is_empty()
    {
        let why: Vec<String> = identified
            .unidentified
            .iter()
            .map(|u| format!("{}: {}", u.key, u.reason))
            .collect();
        return Err(CalibrateError::Nothing(format!(
            "these runs identify none of the keys asked for:\n  {}",
            why.join("\n  ")
        )));
    }
    let fitted = problem.fit(&identified, opts.budget)?;
    if let Some(bar) = &problem.progress {
        bar.finish_and_clear();
    }
    Ok(output::assemble(
        &problem,
        &identified,
        fitted,
        warnings,
        start_name,
        opts.seed,
    ))
}
