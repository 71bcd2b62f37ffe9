//! `surge-sim`: a discrete-event simulation of the chat assistant under a traffic spike.
//!
//! It answers "what will happen?" before a release: given a [`Profile`] (traffic stages and
//! the system model), it predicts latency (e2e, TTFT, ITL per store and model), errors and
//! throttles per layer, and how far each layer's capacity is used — and writes the same
//! run directory a measured run writes, so `surge report` and `surge compare` put
//! prediction and measurement side by side.
//!
//! The engine is single-threaded, with integer nanosecond time and a (time, sequence)
//! ordered calendar queue ([`queue`]; `cargo bench -p surge-sim --bench queue` measures it
//! against a binary heap); each component draws from its own seeded random stream
//! ([`rng`]); statistics are streaming ([`stats`]), so memory follows messages in flight,
//! not messages sent. Replications ([`replicate()`]) run seeds in parallel threads.
//!
//! The rules of the architecture — every layer's limits, capacity, quotas and latencies,
//! and a turn's route through them — are [`surge_model`]'s, which the mock drives too;
//! this crate drives them in virtual time.
//!
//! | module | job |
//! |---|---|
//! | [`arrivals`], [`sessions`] | rate(t) of the stages as an arrival process; users one message at a time |
//! | `engine` | the event loop: a turn's route as events, contended steps only |
//! | [`queue`], [`rng`], [`message`] | calendar queue, seeded streams, messages in flight |
//! | [`report`], `summary`, `output`, `timeline` | what a run produces |

pub mod arrivals;
mod consumption;
mod early_stop;
mod engine;
pub mod message;
mod output;
pub mod plan;
mod progress;
pub mod queue;
pub mod replicate;
pub mod report;
pub mod rng;
pub mod sessions;
pub mod stats;
mod streams;
mod summary;
mod timeline;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use surge_profile::metric::Threshold;
use surge_profile::{Duration, Profile};
use surge_record::Summary;

pub use replicate::{Estimate, Replications};
pub use report::SimReport;

use crate::early_stop::EarlyStop;
use crate::engine::{Settings, Sim};
use crate::output::Output;
use crate::plan::Plan;
use crate::timeline::MinuteSampler;
use surge_model::time::{MINUTE, SECOND, nanos};

/// Why a simulation could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The profile describes something the simulator cannot run.
    #[error("cannot simulate this profile: {0}")]
    Model(String),
    /// Writing the run directory failed.
    #[error(transparent)]
    Record(#[from] surge_record::Error),
}

/// How to run a simulation.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Seed instead of the profile's.
    pub seed: Option<u64>,
    /// Runs with seeds `seed, seed + 1, …`; above 1, [`SimOutcome::replications`] holds
    /// the confidence intervals (only the first run writes a run directory).
    pub replications: u32,
    /// Threads for replications (the first run is one of them).
    pub threads: usize,
    /// Write `<out_root>/<profile>/<timestamp>/`; `None` writes nothing.
    pub out_root: Option<PathBuf>,
    /// Progress bar on stderr (only when stderr is a terminal).
    pub progress: bool,
    /// hlog interval length; `None`: one second up to one simulated hour, one minute
    /// beyond (a per-second log of a multi-hour run is large and slow to write).
    pub hlog_interval: Option<Duration>,
    /// Messages sent before this much simulated time are not measured (queueing checks
    /// start from an empty system and use it to skip the transient).
    pub warmup: Duration,
    /// Stop as soon as one of these can no longer hold (upper limits on errors.rate and
    /// on e2e/ttft percentiles): the planner's failing candidates end early.
    /// [`SimReport::stopped_early`] says why; the figures then cover the run so far.
    pub stop_when_failed: Vec<Threshold>,
    /// Stop as soon as this is set (checked once a simulated second): a run started ahead
    /// of need, such as a planner's replication that another one may make moot.
    /// [`SimReport::stopped_early`] then says it was cancelled.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            seed: None,
            replications: 1,
            threads: 2,
            out_root: None,
            progress: false,
            hlog_interval: None,
            warmup: Duration::ZERO,
            stop_when_failed: Vec::new(),
            cancel: None,
        }
    }
}

/// What a simulation produced.
#[derive(Debug, Clone)]
pub struct SimOutcome {
    pub report: SimReport,
    /// The content of summary.json (also when nothing was written).
    pub summary: Summary,
    pub run_dir: Option<PathBuf>,
    /// Mean and 95 % CI of the headline figures, with more than one replication.
    pub replications: Option<Replications>,
    /// Wall-clock time of the first run and its speed.
    pub wall: std::time::Duration,
    pub events_per_s: f64,
    pub messages_per_s: f64,
}

fn hlog_interval(profile: &Profile, opts: &SimOptions) -> u64 {
    match opts.hlog_interval {
        Some(d) => nanos(d),
        None if nanos(profile.duration) <= 60 * MINUTE => SECOND,
        None => MINUTE,
    }
}

/// One run: the report, the summary and the run directory if one was written.
fn run_one(
    profile: &Profile,
    plan: &Plan,
    seed: u64,
    opts: &SimOptions,
    write: bool,
) -> Result<SimOutcome, SimError> {
    let started = Instant::now();
    let output = match (&opts.out_root, write) {
        (Some(root), true) => Some(Output::create(
            root,
            profile,
            seed,
            &MinuteSampler::columns(plan),
        )?),
        _ => None,
    };
    let settings = Settings {
        warmup: nanos(opts.warmup),
        hlog_interval: hlog_interval(profile, opts),
        progress: opts.progress && write,
    };
    let stop = EarlyStop::new(
        &opts.stop_when_failed,
        profile.schedule().total_messages(),
        opts.cancel.clone(),
    );
    let mut finished = Sim::new(profile, plan, seed, settings, output, stop)?.run()?;
    let (report, summary) = summary::assemble(profile, plan, seed, settings.warmup, &finished);
    let run_dir = finished
        .output
        .take()
        .map(|o| o.finish(&summary))
        .transpose()?;
    let wall = started.elapsed();
    let secs = wall.as_secs_f64().max(1e-9);
    Ok(SimOutcome {
        events_per_s: report.events as f64 / secs,
        messages_per_s: report.sent as f64 / secs,
        report,
        summary,
        run_dir,
        replications: None,
        wall,
    })
}

/// Simulates `profile` and (with `out_root`) writes its run directory; with more than one
/// replication, also runs the further seeds in parallel and attaches their intervals.
pub fn simulate(profile: &Profile, opts: &SimOptions) -> Result<SimOutcome, SimError> {
    let plan = Plan::new(profile)?;
    let seed = opts.seed.unwrap_or(profile.seed);
    let n = opts.replications.max(1) as usize;
    if n == 1 {
        return run_one(profile, &plan, seed, opts, true);
    }
    let mut outcomes = run_seeds(profile, &plan, seed, n, opts)?;
    let reports: Vec<SimReport> = outcomes.iter().map(|o| o.report.clone()).collect();
    let mut first = outcomes.swap_remove(0);
    first.replications = Some(Replications::from_reports(&reports));
    Ok(first)
}

/// Runs `replications` seeds from the profile's (or `opts.seed`) without writing anything
/// and returns the mean and 95 % CI of each headline figure.
pub fn replicate(
    profile: &Profile,
    opts: &SimOptions,
    replications: u32,
) -> Result<Replications, SimError> {
    let plan = Plan::new(profile)?;
    let seed = opts.seed.unwrap_or(profile.seed);
    let opts = SimOptions {
        out_root: None,
        ..opts.clone()
    };
    let outcomes = run_seeds(profile, &plan, seed, replications.max(1) as usize, &opts)?;
    let reports: Vec<SimReport> = outcomes.into_iter().map(|o| o.report).collect();
    Ok(Replications::from_reports(&reports))
}

/// Runs seeds `seed..seed + n` on `opts.threads` threads; only the first may write.
fn run_seeds(
    profile: &Profile,
    plan: &Plan,
    seed: u64,
    n: usize,
    opts: &SimOptions,
) -> Result<Vec<SimOutcome>, SimError> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<SimOutcome, SimError>>>> =
        Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..opts.threads.clamp(1, n) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let outcome = run_one(profile, plan, seed.wrapping_add(i as u64), opts, i == 0);
                    results.lock().expect("no panics while holding the lock")[i] = Some(outcome);
                }
            });
        }
    });
    results
        .into_inner()
        .expect("threads joined")
        .into_iter()
        .map(|r| r.expect("every index ran"))
        .collect()
}
