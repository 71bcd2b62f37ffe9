//! The sweep itself: one measured run per step, judged as it ends, stopping at the first
//! step that is not a clear pass.

use std::future::Future;
use std::path::{Path, PathBuf};

use serde::Serialize;
use surge_loadgen::{RunError, RunOptions, RunOutcome, RunStatus};
use surge_profile::metric::LimitUnit;
use surge_profile::{Duration, Profile};
use surge_record::{Metric, Summary, Tag, UtcTime};

use crate::predict::{Prediction, predict};
use crate::profile::{rate_label, write_step};
use crate::steps::{Ceiling, Rates, Sessions};

/// What `surge sweep` asks for.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// Everything each step's run shares: the profile swept (`run.profile`), the target,
    /// shards, the results root (`run.out`). Its `dir` is set per step.
    pub run: RunOptions,
    pub rates: Rates,
    /// How long each step holds its rate.
    pub hold: Duration,
    pub sessions: Sessions,
    pub ceiling: Ceiling,
    /// Simulate every step first and report the prediction beside the measurement.
    pub predict: bool,
}

/// How one step came out.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Every threshold held.
    Passed,
    /// Thresholds failed: each as `e2e.p99 < 800ms (measured 1.2 s)`.
    Failed(Vec<String>),
    /// An `abort = true` guard stopped the step early: the guard and what broke it.
    Aborted(String),
    /// The generator, not the target, was the bottleneck: the step proves nothing.
    GeneratorBound(String),
    /// Ctrl-C stopped the step.
    Interrupted,
    /// The step's run did not complete (shards died): why.
    Broken(String),
}

impl Verdict {
    pub fn passed(&self) -> bool {
        matches!(self, Self::Passed)
    }

    /// The name in `sweep.json` and the table.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed(_) => "failed",
            Self::Aborted(_) => "aborted",
            Self::GeneratorBound(_) => "generator_bound",
            Self::Interrupted => "interrupted",
            Self::Broken(_) => "broken",
        }
    }

    /// Why the step did not pass (empty when it did).
    pub fn reasons(&self) -> Vec<String> {
        match self {
            Self::Passed | Self::Interrupted => Vec::new(),
            Self::Failed(r) => r.clone(),
            Self::Aborted(r) | Self::GeneratorBound(r) | Self::Broken(r) => vec![r.clone()],
        }
    }
}

/// A step's headline figures, as `sweep.json` and the table carry them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Messages sent, answered, and answered within the `[goodput]` SLOs, per second of
    /// the hold: a run's own rates divide by its whole length, the answers still arriving
    /// after the hold included, which would put throughput below the offered rate even
    /// where the target keeps up.
    pub sent_per_s: f64,
    pub completed_per_s: f64,
    /// Answers meeting the profile's `[goodput]` SLOs (absent without them).
    pub goodput_ratio: Option<f64>,
    pub goodput_per_s: Option<f64>,
    pub e2e_p50_ms: Option<f64>,
    pub e2e_p99_ms: Option<f64>,
    pub ttft_p50_ms: Option<f64>,
    pub ttft_p99_ms: Option<f64>,
    pub error_ratio: f64,
    pub errors: u64,
    /// The generator's own scheduling lag, p99.
    pub lag_p99_ms: Option<f64>,
}

impl Figures {
    pub(crate) fn of(s: &Summary, hold: Duration) -> Self {
        let per_s = |n: u64| n as f64 / hold.as_secs_f64().max(1e-9);
        let at = |metric: Metric, p50: bool| {
            s.latency_ms
                .get(&Tag::from(metric))
                .filter(|l| l.count > 0)
                .map(|l| if p50 { l.p50 } else { l.p99 })
        };
        Figures {
            sent_per_s: per_s(s.counts.sent),
            completed_per_s: per_s(s.counts.completed),
            goodput_ratio: s.goodput.as_ref().map(|g| g.ratio),
            goodput_per_s: s.goodput.as_ref().map(|g| per_s(g.good)),
            e2e_p50_ms: at(Metric::E2e, true),
            e2e_p99_ms: at(Metric::E2e, false),
            ttft_p50_ms: at(Metric::Ttft, true),
            ttft_p99_ms: at(Metric::Ttft, false),
            error_ratio: s.rates.error_ratio,
            errors: s.errors_total(),
            lag_p99_ms: s
                .extra
                .get("generator")
                .and_then(|g| g["lag_p99_ms"].as_f64()),
        }
    }
}

/// One step that ran.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// 1-based.
    pub index: usize,
    pub rate_per_min: f64,
    pub sessions: u64,
    /// Its run directory.
    pub dir: PathBuf,
    pub verdict: Verdict,
    pub figures: Figures,
}

/// Why the sweep stopped.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// Every step asked for passed: the target sustains at least the highest rate.
    AllPassed,
    /// A step failed its thresholds or was aborted: the knee lies below it.
    FailedStep,
    /// The generator saturated before the target did: add shards or machines.
    GeneratorBound,
    /// Ctrl-C.
    Interrupted,
    /// A step's run could not be carried out: why.
    CouldNotRun(String),
}

impl Ending {
    pub fn name(&self) -> &'static str {
        match self {
            Self::AllPassed => "all_passed",
            Self::FailedStep => "failed_step",
            Self::GeneratorBound => "generator_bound",
            Self::Interrupted => "interrupted",
            Self::CouldNotRun(_) => "could_not_run",
        }
    }
}

/// A finished (or stopped) sweep.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// `OUT/<profile>/sweep-<UTC timestamp>/`.
    pub dir: PathBuf,
    pub profile: String,
    /// The target, credentials redacted.
    pub target: String,
    pub hold: Duration,
    pub sessions: Sessions,
    /// Every rate asked for, messages per minute.
    pub asked: Vec<f64>,
    pub steps: Vec<Step>,
    pub ending: Ending,
    /// The simulator's verdict on every rate asked for (empty with `predict` off).
    pub predicted: Vec<Prediction>,
}

/// The last rate of the passing steps at the start: steps rise, so a step after a failing
/// one sustains nothing the failing one did not.
fn last_passing(steps: impl IntoIterator<Item = (f64, bool)>) -> Option<f64> {
    steps
        .into_iter()
        .take_while(|&(_, passed)| passed)
        .last()
        .map(|(rate, _)| rate)
}

impl Sweep {
    /// The highest rate of the passing steps before the stop: what the target sustains,
    /// as far as this sweep shows.
    pub fn max_sustainable_rate_per_min(&self) -> Option<f64> {
        last_passing(
            self.steps
                .iter()
                .map(|s| (s.rate_per_min, s.verdict.passed())),
        )
    }

    /// What the simulator said the sweep would find (`None` without predictions, or when
    /// it predicts the first step fails).
    pub fn predicted_max_sustainable_rate_per_min(&self) -> Option<f64> {
        last_passing(self.predicted.iter().map(|p| (p.rate_per_min, p.passed)))
    }

    /// The prediction for the step at `rate_per_min`.
    pub fn prediction(&self, rate_per_min: f64) -> Option<&Prediction> {
        self.predicted
            .iter()
            .find(|p| p.rate_per_min == rate_per_min)
    }
}

/// What the sweep reports as it goes.
pub enum Progress<'a> {
    /// The simulator's predictions, before any load (with `predict` on).
    Predicted(&'a Sweep),
    /// Step `index` of `of` is about to start.
    Starting {
        index: usize,
        of: usize,
        rate_per_min: f64,
        sessions: u64,
    },
    /// A step ended (its `sweep.json` row is written).
    Finished(&'a Step),
}

/// Why a sweep did not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SweepError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    CouldNotRun(String),
}

impl From<RunError> for SweepError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::Usage(m) => Self::Usage(m),
            RunError::CouldNotRun(m) => Self::CouldNotRun(m),
        }
    }
}

/// Refuses sweeps that cannot answer: a trace (its own arrivals), no thresholds (no pass
/// or fail), past the ceiling.
pub fn check(opts: &SweepOptions) -> Result<(), SweepError> {
    let profile = &opts.run.profile;
    if profile.traffic.arrival.trace().is_some() {
        return Err(SweepError::Usage(format!(
            "{} replays a trace: its messages come at the trace's times, so a sweep cannot \
             set their rate; sweep a profile with stages",
            profile.files.profile.display()
        )));
    }
    if profile.thresholds.is_empty() {
        return Err(SweepError::Usage(format!(
            "{} has no [thresholds]: a sweep needs them to tell a sustainable step from a \
             failing one (e.g. \"e2e.p99\" = \"< 2s\", \"errors.rate\" = \"< 1%\", or \
             \"goodput.ratio\" = \"> 95%\" with a [goodput] table)",
            profile.files.profile.display()
        )));
    }
    if opts.hold.as_secs_f64() < 2.0 {
        return Err(SweepError::Usage(
            "--hold must be at least 2s: a step is judged on whole one-second intervals".into(),
        ));
    }
    opts.ceiling
        .check(&opts.rates, opts.hold)
        .map_err(SweepError::Usage)
}

/// Runs the sweep: each step a measured run in `sweep-<UTC timestamp>/step-NN-<rate>/`,
/// `sweep.json` and `sweep.html` rewritten after every step, so Ctrl-C or a crash loses
/// nothing that was measured. `interrupt` resolves on Ctrl-C: the current step is
/// `interrupted` and the sweep stops.
pub async fn run(
    opts: SweepOptions,
    interrupt: impl Future<Output = ()>,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<Sweep, SweepError> {
    check(&opts)?;
    let base = opts.run.profile.clone();
    let dir = sweep_dir(&opts.run.out, &base)?;
    let profiles = dir.join("profiles");
    std::fs::create_dir_all(&profiles)
        .map_err(|e| SweepError::CouldNotRun(format!("{}: {e}", profiles.display())))?;
    let mut sweep = Sweep {
        dir: dir.clone(),
        profile: base.name.clone(),
        target: surge_record::redact_url(&opts.run.target),
        hold: opts.hold,
        sessions: opts.sessions,
        asked: opts.rates.per_minute().to_vec(),
        steps: Vec::new(),
        ending: Ending::AllPassed,
        predicted: Vec::new(),
    };
    // Every step's profile first: a rate the profile cannot take stops the sweep before
    // any load is sent.
    let mut planned = Vec::with_capacity(sweep.asked.len());
    for (i, &rate) in opts.rates.per_minute().iter().enumerate() {
        let sessions = opts.sessions.at(rate);
        let name = format!("step-{:02}-{}", i + 1, rate_label(rate));
        let file = profiles.join(format!("{name}.toml"));
        let profile = write_step(&base, rate, sessions, opts.hold, &file)
            .map_err(|e| abandon(&dir, SweepError::Usage(e)))?;
        planned.push((rate, sessions, name, profile));
    }
    if opts.predict {
        for (rate, _, _, profile) in &planned {
            sweep.predicted.push(
                predict(profile, *rate).map_err(|e| abandon(&dir, SweepError::CouldNotRun(e)))?,
            );
        }
        progress(Progress::Predicted(&sweep));
    }
    let mut interrupt = std::pin::pin!(interrupt);
    let mut interrupted = false;
    let of = planned.len();
    for (i, (rate, sessions, name, profile)) in planned.into_iter().enumerate() {
        let index = i + 1;
        if interrupted {
            sweep.ending = Ending::Interrupted;
            break;
        }
        progress(Progress::Starting {
            index,
            of,
            rate_per_min: rate,
            sessions,
        });
        let step_opts = RunOptions {
            profile,
            dir: Some(dir.join(&name)),
            ..opts.run.clone()
        };
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let step_run = surge_loadgen::run(step_opts, async {
            let _ = stop_rx.await;
        });
        let mut step_run = std::pin::pin!(step_run);
        let mut stop_tx = Some(stop_tx);
        let result = loop {
            tokio::select! {
                r = &mut step_run => break r,
                _ = &mut interrupt, if !interrupted => {
                    interrupted = true;
                    if let Some(tx) = stop_tx.take() {
                        let _ = tx.send(());
                    }
                }
            }
        };
        let outcome = match result {
            Ok(o) => o,
            // Nothing measured yet: the sweep never started.
            Err(e) if sweep.steps.is_empty() => return Err(abandon(&dir, e.into())),
            Err(e) => {
                sweep.ending = Ending::CouldNotRun(e.to_string());
                break;
            }
        };
        let step = Step {
            index,
            rate_per_min: rate,
            sessions,
            dir: outcome.dir.clone(),
            verdict: judge(&outcome, &base),
            figures: Figures::of(&outcome.summary, opts.hold),
        };
        let ending = match &step.verdict {
            Verdict::Passed => None,
            Verdict::Failed(_) | Verdict::Aborted(_) => Some(Ending::FailedStep),
            Verdict::GeneratorBound(_) => Some(Ending::GeneratorBound),
            Verdict::Interrupted => Some(Ending::Interrupted),
            Verdict::Broken(why) => Some(Ending::CouldNotRun(why.clone())),
        };
        sweep.steps.push(step);
        if let Some(e) = ending {
            sweep.ending = e;
        }
        crate::record::write(&sweep)
            .map_err(|e| SweepError::CouldNotRun(format!("writing the sweep: {e}")))?;
        progress(Progress::Finished(sweep.steps.last().expect("just pushed")));
        if sweep.ending != Ending::AllPassed {
            break;
        }
    }
    crate::record::write(&sweep)
        .map_err(|e| SweepError::CouldNotRun(format!("writing the sweep: {e}")))?;
    Ok(sweep)
}

/// A sweep that stops before measuring anything leaves no directory behind.
fn abandon(dir: &Path, e: SweepError) -> SweepError {
    let _ = std::fs::remove_dir_all(dir);
    e
}

/// `OUT/<profile>/sweep-<UTC timestamp>/`, a fresh directory.
fn sweep_dir(out: &Path, profile: &Profile) -> Result<PathBuf, SweepError> {
    let parent = out.join(&profile.name);
    let stamp = UtcTime::now().dir_name();
    for n in 1..=100 {
        let dir = match n {
            1 => parent.join(format!("sweep-{stamp}")),
            n => parent.join(format!("sweep-{stamp}-{n}")),
        };
        std::fs::create_dir_all(&parent)
            .map_err(|e| SweepError::CouldNotRun(format!("{}: {e}", parent.display())))?;
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(SweepError::CouldNotRun(format!("{}: {e}", dir.display()))),
        }
    }
    Err(SweepError::CouldNotRun(format!(
        "{}: 100 sweeps started this second already",
        parent.display()
    )))
}

/// A step's verdict. A saturated generator comes first: then the figures describe the
/// generator, not the target, whatever the thresholds say.
fn judge(outcome: &RunOutcome, profile: &Profile) -> Verdict {
    let s = &outcome.summary;
    match outcome.status {
        RunStatus::Failed => {
            return Verdict::Broken(format!(
                "the run did not complete: {}",
                outcome.problems.join("; ")
            ));
        }
        RunStatus::Interrupted => return Verdict::Interrupted,
        RunStatus::Aborted => {
            let why = outcome.breach.as_ref().map_or_else(
                || "an abort guard stopped the step".to_string(),
                |b| format!("{} (measured {}, at {:.0} s)", b.guard, b.measured, b.at_s),
            );
            return Verdict::Aborted(why);
        }
        _ => {}
    }
    if let Some(g) = s.extra.get("generator") {
        if g["bottleneck"].as_bool() == Some(true) {
            let note = g["note"]
                .as_str()
                .unwrap_or("the generator was the bottleneck");
            return Verdict::GeneratorBound(note.to_string());
        }
    }
    let failed: Vec<String> = s
        .thresholds
        .iter()
        .filter(|v| !v.passed)
        .map(|v| {
            let Some(t) = profile
                .thresholds
                .iter()
                .find(|t| t.metric.to_string() == v.metric)
            else {
                return v.metric.clone();
            };
            let measured = v.measured.map_or_else(
                || "no data".to_string(),
                |m| match t.metric.unit() {
                    LimitUnit::Duration => format!("{} ms", surge_analyze::fmt::ms(m)),
                    LimitUnit::Percent => surge_analyze::fmt::pct(m),
                    LimitUnit::Count => surge_analyze::fmt::num(m),
                },
            );
            format!(
                "{} {} {} (measured {measured})",
                t.metric,
                t.comparison.symbol(),
                t.limit
            )
        })
        .collect();
    if failed.is_empty() {
        Verdict::Passed
    } else {
        Verdict::Failed(failed)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn local() -> Profile {
        Profile::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles/local.toml"))
            .unwrap()
    }

    /// A finished run of `profile` whose e2e p99 was `e2e_p99_ms`.
    fn outcome(profile: &Profile, e2e_p99_ms: f64, bottleneck: bool) -> RunOutcome {
        let mut summary = Summary::new(10.0);
        summary.latency_ms.insert(
            Tag::from(Metric::E2e),
            surge_record::LatencyStats {
                count: 100,
                p50: 100.0,
                p90: 200.0,
                p99: e2e_p99_ms,
                p999: e2e_p99_ms,
                max: e2e_p99_ms,
                mean: 150.0,
            },
        );
        summary.thresholds = summary.evaluate(&profile.thresholds);
        summary.extra.insert(
            "generator".into(),
            serde_json::json!({ "bottleneck": bottleneck, "lag_p99_ms": 30.0,
                                "note": "lag p99 30 ms > 20 ms" }),
        );
        RunOutcome {
            dir: PathBuf::from("/x"),
            summary,
            status: RunStatus::Complete,
            breach: None,
            report: String::new(),
            problems: Vec::new(),
            metrics_addr: None,
            shard_dir: None,
            verdict_elsewhere: false,
        }
    }

    #[test]
    fn a_step_fails_on_its_thresholds_and_says_which() {
        let p = local();
        // local.toml: e2e.p99 < 5s; no ttft recorded here, so ttft.p99 fails for no data.
        let v = judge(&outcome(&p, 6000.0, false), &p);
        let Verdict::Failed(reasons) = v else {
            panic!("{v:?}")
        };
        assert!(
            reasons
                .iter()
                .any(|r| r.starts_with("e2e.p99 < 5s (measured 6")),
            "{reasons:?}"
        );
        assert!(reasons.iter().any(|r| r.contains("no data")), "{reasons:?}");
    }

    #[test]
    fn a_saturated_generator_outranks_the_thresholds() {
        let p = local();
        let v = judge(&outcome(&p, 6000.0, true), &p);
        assert_eq!(v, Verdict::GeneratorBound("lag p99 30 ms > 20 ms".into()));
        assert!(!v.passed());
    }

    #[test]
    fn aborted_and_interrupted_steps_are_not_passes() {
        let p = local();
        let mut o = outcome(&p, 100.0, false);
        o.status = RunStatus::Aborted;
        o.breach = Some(surge_record::Breach {
            guard: "errors.rate < 2% over 30s".into(),
            measured: "12.5%".into(),
            at_s: 41.0,
        });
        let v = judge(&o, &p);
        assert_eq!(
            v,
            Verdict::Aborted("errors.rate < 2% over 30s (measured 12.5%, at 41 s)".into())
        );
        o.status = RunStatus::Interrupted;
        assert_eq!(judge(&o, &p), Verdict::Interrupted);
        assert!(!Verdict::Interrupted.passed());
    }
}
