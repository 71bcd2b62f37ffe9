//! `surge-record`: the run directory, the one data contract of surge.
//!
//! Why it exists: `surge simulate` (kind `simulated`) and `surge run` (kind `measured`) both
//! write `results/<profile>/<UTC timestamp>/`, and `surge report` / `surge compare` read it.
//! Neither side depends on the other; both depend on this crate. Everything about that
//! directory — names, formats, versions, how it is written safely — is decided here.
//!
//! | file | module | type |
//! |---|---|---|
//! | `run.json` | [`run_info`] | [`RunInfo`] |
//! | `shard-NNN.hlog` | [`hlog`], [`recorder`] | [`HlogWriter`], [`IntervalRecorder`], [`HlogFile`] |
//! | `timeline.csv` | [`timeline`] | [`TimelineWriter`], [`Timeline`] |
//! | `summary.json` | [`summary`] | [`Summary`] |
//! | `errors/samples-NNN.jsonl` | [`error_samples`] | [`ErrorSampleWriter`] |
//!
//! [`RunDir`] creates and opens the directory and hands out the writers. Latency values are
//! microseconds everywhere except `summary.json`'s `latency_ms` (milliseconds).
//!
//! A writer's typical life:
//!
//! ```no_run
//! use std::time::{Duration, SystemTime};
//! use surge_record::*;
//!
//! # fn main() -> surge_record::Result<()> {
//! let started = SystemTime::now();
//! let dir = RunDir::create("results".as_ref(), "local", started)?;
//! let mut info = RunInfo::new(RunKind::Measured, "local", serde_json::json!({}), started);
//! info.set_target("ws://127.0.0.1:8080/chat?token=secret"); // stored redacted
//! dir.write_run_info(&info)?;
//!
//! let mut log = dir.create_hlog(0, started)?;
//! let mut rec = IntervalRecorder::new(Duration::ZERO);
//! let e2e = rec.register(&Metric::E2e.into());
//! rec.record(e2e, 1_250); // µs
//! rec.close_interval(Duration::from_secs(1), &mut log)?;
//! log.finish()?;
//!
//! let mut summary = Summary::new(1.0);
//! summary.latency_ms = rec.latency_ms();
//! dir.write_summary(&summary)?;
//! info.finish(RunStatus::Complete, SystemTime::now());
//! dir.write_run_info(&info)?;
//! # Ok(()) }
//! ```

pub mod compress;
pub mod error;
pub mod error_samples;
pub mod hlog;
pub mod recorder;
pub mod run_dir;
pub mod run_info;
pub mod summary;
pub mod tag;
pub mod tally;
pub mod time;
pub mod timeline;

pub use error::{Error, Result, Warning};
pub use error_samples::{ErrorSample, ErrorSampleWriter, read_error_samples};
pub use hlog::{HlogFile, HlogWriter, Interval, IntervalTag};
pub use recorder::{
    IntervalRecorder, IntervalSnapshot, SnapshotEntry, TagId, new_histogram, new_histogram_as_read,
    record_n,
};
pub use run_dir::RunDir;
pub use run_info::{Breach, JoinedShard, Rendezvous, RunInfo, RunKind, RunStatus, redact_url};
pub use summary::{
    Connections, Counts, Goodput, LatencyStats, LostShard, Rates, ScopeGoodput, Summary,
    ThresholdOp, ThresholdVerdict,
};
pub use tag::{Metric, Tag};
pub use tally::Tally;
pub use time::UtcTime;
pub use timeline::{Timeline, TimelineColumns, TimelineRow, TimelineWriter};

/// Re-exported so callers use the same `Histogram` type as this crate.
pub use hdrhistogram::Histogram;

/// Pseudo-random values for the unit tests: xorshift64, reproducible from `seed`.
#[cfg(test)]
fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}
