//! The run directory of a simulation (kind `simulated`), written through surge-record.
//!
//! One hlog (`shard-000.hlog`) with an interval per simulated second (or per minute for
//! long runs, see [`crate::SimOptions::hlog_interval`]), `timeline.csv` with a row per
//! simulated minute, `summary.json`, and `run.json` written at the start (status
//! `running`) and again at the end. Interval start times in the hlog are simulated
//! seconds from the run's start.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use surge_profile::Profile;
use surge_record::{
    HlogWriter, IntervalRecorder, RunDir, RunInfo, RunKind, RunStatus, Summary, TimelineColumns,
    TimelineRow, TimelineWriter,
};

use crate::SimError;
use crate::timeline::Row;
use surge_model::time::Nanos;

pub struct Output {
    dir: RunDir,
    info: RunInfo,
    hlog: HlogWriter,
    timeline: TimelineWriter,
}

impl Output {
    pub fn create(
        root: &Path,
        profile: &Profile,
        seed: u64,
        columns: &TimelineColumns,
    ) -> Result<Self, SimError> {
        let started = SystemTime::now();
        let dir = RunDir::create(root, &profile.name, started)?;
        let resolved = serde_json::to_value(profile).map_err(|e| SimError::Model(e.to_string()))?;
        let mut info = RunInfo::new(RunKind::Simulated, profile.name.clone(), resolved, started);
        info.seed = Some(seed);
        dir.write_run_info(&info)?;
        let hlog = dir.create_hlog(0, started)?;
        let timeline = dir.create_timeline(columns)?;
        Ok(Self {
            dir,
            info,
            hlog,
            timeline,
        })
    }

    /// Writes the interval ending at `now` (simulated) into the hlog.
    pub fn close_interval(
        &mut self,
        rec: &mut IntervalRecorder,
        now: Nanos,
    ) -> Result<(), SimError> {
        rec.close_interval(std::time::Duration::from_nanos(now), &mut self.hlog)?;
        Ok(())
    }

    pub fn timeline_row(&mut self, row: &Row) -> Result<(), SimError> {
        self.timeline.write_row(&TimelineRow {
            t_s: row.t_s,
            sessions_open: row.sessions_open,
            sent: row.sent,
            completed: row.completed,
            errors: &row.errors,
            extra: &row.extra,
        })?;
        Ok(())
    }

    /// Closes the files, writes summary.json and marks the run complete.
    pub fn finish(mut self, summary: &Summary) -> Result<PathBuf, SimError> {
        self.hlog.finish()?;
        self.timeline.finish()?;
        self.dir.write_summary(summary)?;
        self.info.finish(RunStatus::Complete, SystemTime::now());
        self.dir.write_run_info(&self.info)?;
        Ok(self.dir.path().to_path_buf())
    }
}
