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
    /// Orchestrator workers holding a message (`surge_mock_orchestrator_busy_workers`).
    pub busy_workers: Option<f64>,
    /// Orchestrator tasks running (`surge_mock_orchestrator_tasks{state="running"}`).
    pub tasks_running: Option<f64>,
    /// Whether the task count stayed the same through the run.
    pub tasks_constant: bool,
}

/// The series the calibrator reads from a scraped timeline: the names the mock exposes
/// (an exporter in front of CloudWatch can publish the same names).
const BUSY: &str = "surge_mock_orchestrator_busy_workers";
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
        RunStatus::Interrupted => true,
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

/// The mean of a scraped series, by its column's name after the endpoint prefix
/// (`scrape:` or `scrape<N>:`), over the intervals that have a value.
fn column_mean(timeline: &surge_record::Timeline, series: &str) -> Option<(f64, bool)> {
    let name = timeline.extra_columns().find(|c| {
        c.split_once(':')
            .is_some_and(|(prefix, rest)| prefix.starts_with("scrape") && rest == series)
    })?;
    let values: Vec<f64> = timeline
        .column(name)?
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

fn telemetry(timeline: &surge_record::Timeline) -> Telemetry {
    let tasks = column_mean(timeline, TASKS);
    Telemetry {
        busy_workers: column_mean(timeline, BUSY).map(|(m, _)| m),
        tasks_running: tasks.map(|(m, _)| m),
        tasks_constant: tasks.is_some_and(|(_, c)| c),
    }
}
