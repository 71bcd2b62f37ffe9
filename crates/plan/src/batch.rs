//! Many simulations on the cores there are. The planner asks the model about candidate
//! settings and the calibrator replays measured runs on candidate models; both hand their
//! runs to [`simulate_all`], so the one place that runs the model many times decides how
//! work is spread over threads.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use surge_profile::Profile;
use surge_sim::{SimError, SimOptions, SimOutcome, simulate};

/// One simulation: a profile and the seed to run it with. Nothing is written.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    pub profile: &'a Profile,
    pub seed: u64,
}

/// The threads to use when the caller has no preference: every core there is.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Runs every job on up to `threads` threads and returns their outcomes in job order.
/// The outcome of a job depends on its profile and seed only, never on the thread that ran
/// it or on the other jobs, so the result is the same for any `threads`.
pub fn simulate_all(jobs: &[Job<'_>], threads: usize) -> Vec<Result<SimOutcome, SimError>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<SimOutcome, SimError>>>> =
        Mutex::new((0..jobs.len()).map(|_| None).collect());
    let run = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(job) = jobs.get(i) else { break };
            let opts = SimOptions {
                seed: Some(job.seed),
                ..SimOptions::default()
            };
            let outcome = simulate(job.profile, &opts);
            results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(outcome);
        }
    };
    match threads.clamp(1, jobs.len().max(1)) {
        1 => run(),
        n => std::thread::scope(|scope| {
            for _ in 0..n {
                scope.spawn(run);
            }
        }),
    }
    results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect()
}
