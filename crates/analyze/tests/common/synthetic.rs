//! Synthetic runs for the noise tests: one latency tag drawn from a known distribution, so a
//! test knows the true difference between two runs and can check what the bootstrap says.
//!
//! `e2e` (and `ttft`, a tenth of it) are 50 ms + an exponential of mean `200 ms × scale`;
//! every message fails with probability `error_p`. `seed` changes the draws, nothing else.

use std::path::{Path, PathBuf};
use std::time::Duration;

use surge_record::{
    Counts, IntervalRecorder, RunDir, RunInfo, RunKind, RunStatus, Summary, Tag, TimelineColumns,
    TimelineRow, UtcTime,
};

/// The shape of one synthetic run.
#[derive(Debug, Clone, Copy)]
pub struct Synthetic {
    pub seconds: u64,
    pub per_second: u64,
    /// Multiplies the exponential part of every latency.
    pub scale: f64,
    pub error_p: f64,
    pub seed: u64,
}

/// xorshift64*: uniform in (0, 1).
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        (x as f64 + 0.5) / (1u64 << 53) as f64
    }
}

/// Write the run at `root/name` (measured).
pub fn build(root: &Path, name: &str, s: Synthetic) -> PathBuf {
    let path = root.join(name);
    let dir = RunDir::create_at(&path).unwrap();
    let start = UtcTime::from_unix_millis(super::START_MS);
    let profile = serde_json::json!({"name": "synthetic", "duration": format!("{}s", s.seconds)});
    let mut info = RunInfo::new(RunKind::Measured, "synthetic", profile, start);
    info.surge_version = "0.0.0-test".to_string();
    let end_ms = super::START_MS + 1000 * s.seconds as i64;
    info.finish(RunStatus::Complete, UtcTime::from_unix_millis(end_ms));
    dir.write_run_info(&info).unwrap();

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ s.seed.wrapping_mul(0xD6E8_FEB8_6659_FD93) | 1);
    let (e2e, ttft): (Tag, Tag) = ("e2e".parse().unwrap(), "ttft".parse().unwrap());
    let mut log = dir.create_hlog(0, start).unwrap();
    let mut rec = IntervalRecorder::new(Duration::ZERO);
    let columns = TimelineColumns::new(["timeout"], [] as [&str; 0]).unwrap();
    let mut tl = dir.create_timeline(&columns).unwrap();
    let (mut sent, mut errors) = (0, 0);
    for second in 0..s.seconds {
        let mut failed = 0;
        for _ in 0..s.per_second {
            let v = 50_000.0 - 200_000.0 * s.scale * rng.uniform().ln();
            rec.record_tag(&e2e, v as u64);
            rec.record_tag(&ttft, (v / 10.0) as u64);
            failed += u64::from(rng.uniform() < s.error_p);
        }
        rec.close_interval(Duration::from_secs(second + 1), &mut log)
            .unwrap();
        tl.write_row(&TimelineRow {
            t_s: (second + 1) as f64,
            sessions_open: 10,
            sent: s.per_second,
            completed: s.per_second - failed,
            errors: &[failed],
            extra: &[],
        })
        .unwrap();
        sent += s.per_second;
        errors += failed;
    }
    log.finish().unwrap();
    tl.finish().unwrap();
    let mut summary = Summary::new(s.seconds as f64);
    summary.counts = Counts {
        sessions: 10,
        sent,
        completed: sent - errors,
        late: 0,
        unsolicited: 0,
        abandoned: 0,
        retries: 0,
    };
    summary.errors.insert("timeout".into(), errors);
    summary.compute_rates();
    dir.write_summary(&summary).unwrap();
    path
}
