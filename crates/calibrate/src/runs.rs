//! The measured runs a calibration learns from: what each sent (its resolved profile,
//! replayed on every candidate model), what its users saw (`summary.json`) and, when the
//! run scraped the server, what the system did (`timeline.csv`).

use std::path::{Path, PathBuf};

use surge_profile::SystemModel;
use surge_record::{RunDir, RunKind, RunStatus, Summary};

use crate::CalibrateError;

/// Server telemetry of a run, as means over its intervals (absent when not scraped).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Telemetry {
    /// Orchestrator workers holding a message, on average over the run.
    pub busy_workers: Option<Busy>,
    /// Orchestrator tasks running (`surge_mock_orchestrator_tasks{state="running"}`).
    pub tasks_running: Option<f64>,
    /// Whether the task count stayed the same through the run.
    pub tasks_constant: bool,
}

/// The mean number of busy workers over a run, and how it was known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Busy {
    pub mean: f64,
    /// From a counter of busy worker-seconds (exact over the span), rather than from a
    /// gauge sampled once an interval (instants only, noisy near saturation).
    pub integrated: bool,
}

/// The series the calibrator reads from a scraped timeline: the names the mock exposes
/// (an exporter in front of CloudWatch, or the service itself, can publish the same names).
const BUSY: &str = "surge_mock_orchestrator_busy_workers";
const BUSY_SECONDS: &str = "surge_mock_orchestrator_busy_seconds_total";
const TASKS: &str = "surge_mock_orchestrator_tasks:state-running";

/// One measured run directory.
#[derive(Debug, Clone)]
pub struct MeasuredRun {
    pub dir: PathBuf,
    /// How the report names the run: its profile and directory name.
    pub label: String,
    /// `run.json`'s resolved profile: the traffic that was sent.
    pub resolved: serde_json::Value,
    /// The system model the run's profile resolved to (what the generator was told; the
    /// system that answered may differ, which is why we calibrate).
    pub system: Option<SystemModel>,
    pub summary: Summary,
    pub telemetry: Telemetry,
    /// Set when the run ended early: its data up to the stop is still used.
    pub interrupted: bool,
}

impl MeasuredRun {
    /// Messages sent per second over the run: its load level.
    pub fn load(&self) -> f64 {
        self.summary.rates.sent_per_s
    }
}

/// Reads a run directory written by `surge run` or `surge bench`.
pub fn load(dir: &Path) -> Result<MeasuredRun, CalibrateError> {
    let bad = |reason: String| CalibrateError::BadRun {
        dir: dir.to_path_buf(),
        reason,
    };
    let run = RunDir::open(dir).map_err(|e| {
        bad(format!(
            "{e}; give the directories `surge run` writes, such as results/<profile>/<timestamp>"
        ))
    })?;
    if !run.run_json_path().is_file() {
        return Err(bad(
            "not a run directory (it has no run.json); give the directories `surge run` \
             writes, such as results/<profile>/<timestamp>"
                .into(),
        ));
    }
    let info = run.read_run_info().map_err(|e| bad(e.to_string()))?;
    if info.kind == RunKind::Simulated {
        return Err(bad(
            "this is a simulated run (surge simulate wrote it); calibration fits the model \
             to measurements, so give it runs of `surge run` or `surge bench`"
                .into(),
        ));
    }
    let interrupted = match info.status {
        RunStatus::Complete => false,
        // A guard stopped it: what it measured up to the stop is valid, like Ctrl-C.
        RunStatus::Interrupted | RunStatus::Aborted => true,
        RunStatus::Running => {
            return Err(bad(
                "the run never finished (run.json still says running: its process died); \
                 measure it again"
                    .into(),
            ));
        }
        RunStatus::Failed => {
            return Err(bad(
                "the run failed (run.json says failed); measure it again".into(),
            ));
        }
        RunStatus::Degraded => {
            return Err(bad(
                "the run lost shards mid-run (run.json says degraded), so the load it offered \
                 was not the profile's; measure it again"
                    .into(),
            ));
        }
    };
    let summary = run.read_summary().map_err(|e| bad(e.to_string()))?;
    if summary.counts.completed == 0 {
        return Err(bad(
            "no message of this run was answered: there is nothing to fit".into(),
        ));
    }
    let system = info
        .resolved_profile
        .get("system")
        .and_then(|s| serde_json::from_value(s.clone()).ok());
    let telemetry = match run.read_timeline() {
        Ok(timeline) => telemetry(&timeline),
        Err(_) => Telemetry::default(),
    };
    let name = dir
        .file_name()
        .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into());
    Ok(MeasuredRun {
        dir: dir.to_path_buf(),
        label: format!("{}/{name}", info.profile),
        resolved: info.resolved_profile,
        system,
        summary,
        telemetry,
        interrupted,
    })
}

/// A scraped series, by its column's name after the endpoint prefix (`scrape:` or
/// `scrape<N>:`).
fn scraped<'t>(timeline: &'t surge_record::Timeline, series: &str) -> Option<&'t [f64]> {
    let name = timeline.extra_columns().find(|c| {
        c.split_once(':')
            .is_some_and(|(prefix, rest)| prefix.starts_with("scrape") && rest == series)
    })?;
    timeline.column(name)
}

/// The mean of a scraped series over the intervals that have a value, and whether it
/// stayed the same throughout.
fn column_mean(timeline: &surge_record::Timeline, series: &str) -> Option<(f64, bool)> {
    let values: Vec<f64> = scraped(timeline, series)?
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    if values.is_empty() {
        return None;
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let constant = values.iter().all(|v| *v == values[0]);
    Some((mean, constant))
}

/// The mean rate of a scraped counter between its first and last values (a counter that
/// went backwards, as when the server restarted, says nothing).
fn counter_rate(timeline: &surge_record::Timeline, series: &str) -> Option<f64> {
    let values = scraped(timeline, series)?;
    let times = timeline.column("t_s")?;
    let points: Vec<(f64, f64)> = times
        .iter()
        .zip(values)
        .filter(|(_, v)| v.is_finite())
        .map(|(t, v)| (*t, *v))
        .collect();
    let (&(t0, v0), &(t1, v1)) = (points.first()?, points.last()?);
    let monotonic = points.windows(2).all(|w| w[1].1 >= w[0].1);
    (t1 > t0 && monotonic).then(|| (v1 - v0) / (t1 - t0))
}

fn telemetry(timeline: &surge_record::Timeline) -> Telemetry {
    let tasks = column_mean(timeline, TASKS);
    let busy = counter_rate(timeline, BUSY_SECONDS)
        .map(|mean| Busy {
            mean,
            integrated: true,
        })
        .or_else(|| {
            column_mean(timeline, BUSY).map(|(mean, _)| Busy {
                mean,
                integrated: false,
            })
        });
    Telemetry {
        busy_workers: busy,
        tasks_running: tasks.map(|(m, _)| m),
        tasks_constant: tasks.is_some_and(|(_, c)| c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeline(text: &str) -> surge_record::Timeline {
        surge_record::Timeline::parse(Path::new("timeline.csv"), text).unwrap()
    }

    #[test]
    fn busy_workers_come_from_the_counter_when_there_is_one() {
        let t = timeline(
            "t_s,sessions_open,sent,completed,\
             scrape:surge_mock_orchestrator_busy_workers,\
             scrape:surge_mock_orchestrator_busy_seconds_total\n\
             1,10,5,5,0,100\n2,10,5,5,3,\n3,10,5,5,0,102.5\n5,10,5,5,0,107.5\n",
        );
        // 7.5 worker-seconds over the 4 s between the first and last scrape.
        let busy = telemetry(&t).busy_workers.unwrap();
        assert_eq!((busy.mean, busy.integrated), (1.875, true));
    }

    #[test]
    fn without_a_usable_counter_the_gauge_is_averaged() {
        let gauge_only = "t_s,sessions_open,sent,completed,\
                          scrape:surge_mock_orchestrator_busy_workers\n\
                          1,10,5,5,1\n2,10,5,5,3\n";
        let busy = telemetry(&timeline(gauge_only)).busy_workers.unwrap();
        assert_eq!((busy.mean, busy.integrated), (2.0, false));
        // A counter that went backwards (the server restarted) says nothing.
        let restarted = "t_s,sessions_open,sent,completed,\
                         scrape:surge_mock_orchestrator_busy_workers,\
                         scrape:surge_mock_orchestrator_busy_seconds_total\n\
                         1,10,5,5,1,50\n2,10,5,5,3,1\n";
        let busy = telemetry(&timeline(restarted)).busy_workers.unwrap();
        assert!(!busy.integrated);
        assert_eq!(
            telemetry(&timeline("t_s,sessions_open,sent,completed\n1,1,1,1\n")).busy_workers,
            None
        );
    }
}
