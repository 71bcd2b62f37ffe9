//! A deterministic run directory for the analyzer's tests, built with surge-record.
//!
//! Two shards, 30 one-second intervals, two stages (`ramp` 10 s, `steady` 20 s), stores
//! `manga_jp` and `kindle`, model `haiku`, thresholds, a per-second timeline with errors,
//! late sends, tokens and infrastructure columns, and a summary with a cost table. Every
//! recorded value is also returned, so tests can build the histogram that holds them all.
#![allow(dead_code)]

pub mod synthetic;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use surge_record::{
    Counts, Histogram, IntervalRecorder, RunDir, RunInfo, RunKind, RunStatus, Summary, Tag,
    TimelineColumns, TimelineRow, UtcTime, new_histogram,
};

/// 2026-11-28T13:05:00Z.
pub const START_MS: i64 = 1_795_871_100_000;
pub const SECONDS: u64 = 30;
pub const SHARDS: u32 = 2;

/// Values recorded per tag: `(second, µs)`.
pub type Values = BTreeMap<String, Vec<(u64, u64)>>;

pub struct Fixture {
    pub dir: PathBuf,
    pub values: Values,
}

impl Fixture {
    /// One histogram holding every value of `tag` recorded in seconds `[from, to)`.
    pub fn histogram(&self, tag: &str, from: u64, to: u64) -> Histogram<u64> {
        let mut h = new_histogram();
        for &(s, v) in self.values.get(tag).into_iter().flatten() {
            if s >= from && s < to {
                h.record(v).unwrap();
            }
        }
        h
    }
}

pub fn profile_json(kind: RunKind) -> serde_json::Value {
    serde_json::json!({
        "name": "fixture",
        "duration": "30s",
        "traffic": {
            "stages": [
                {"name": "ramp", "duration": "10s", "sessions": 50},
                {"name": "steady", "duration": "20s", "sessions": 100}
            ],
            "stores": {"manga_jp": "70%", "kindle": "30%"}
        },
        "system": {"bedrock": {"models": {"haiku": {}}}},
        "thresholds": {
            "e2e.p99": "< 1500ms",
            "ttft.p50": "< 60ms",
            "ttft:manga_jp.p99": "< 900ms",
            "errors.rate": "< 1%",
            "late.rate": "< 5%"
        },
        "kind_hint": match kind { RunKind::Simulated => "simulated", RunKind::Measured => "measured" }
    })
}

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Latency shape per tag: `(base µs, spread µs, values per shard-second)`.
fn shape(tag: &str, second: u64, scale: f64) -> (u64, u64, u64) {
    // The steady stage is slower, so stage tables differ visibly.
    let slow = if second >= 10 { 2 } else { 1 };
    let (b, s, n) = match tag {
        "e2e" => (200_000, 600_000, 40),
        "ttft" => (20_000, 60_000, 40),
        "itl" => (2_000, 8_000, 120),
        "service" => (150_000, 500_000, 40),
        "connect" => (1_000, 30_000, 3),
        "lag" => (10, 2_000, 40),
        "e2e:manga_jp" => (210_000, 600_000, 28),
        "ttft:manga_jp" => (21_000, 60_000, 28),
        "e2e:kindle" => (190_000, 500_000, 12),
        "e2e:haiku" => (300_000, 700_000, 15),
        _ => (1_000, 1_000, 1),
    };
    (
        (b as f64 * scale) as u64 * slow,
        (s as f64 * scale) as u64,
        n,
    )
}

pub const TAGS: [&str; 10] = [
    "e2e",
    "ttft",
    "itl",
    "service",
    "connect",
    "lag",
    "e2e:manga_jp",
    "ttft:manga_jp",
    "e2e:kindle",
    "e2e:haiku",
];

/// Build the fixture at `root/name` with latencies scaled by `scale` (1.0 = the reference).
pub fn build(root: &Path, name: &str, kind: RunKind, scale: f64) -> Fixture {
    let path = root.join(name);
    let dir = RunDir::create_at(&path).unwrap();
    let start = UtcTime::from_unix_millis(START_MS);
    let mut info = RunInfo::new(kind, "fixture", profile_json(kind), start);
    info.shards = SHARDS;
    info.seed = Some(7);
    info.surge_version = "0.0.0-test".to_string();
    info.finish(
        RunStatus::Complete,
        UtcTime::from_unix_millis(START_MS + 30_000),
    );
    dir.write_run_info(&info).unwrap();

    let mut values: Values = BTreeMap::new();
    let mut rng = Lcg(20261128);
    for shard in 0..SHARDS {
        let mut log = dir.create_hlog(shard, start).unwrap();
        let mut rec = IntervalRecorder::new(Duration::ZERO);
        for second in 0..SECONDS {
            for tag in TAGS {
                let t: Tag = tag.parse().unwrap();
                let (base, spread, n) = shape(tag, second, scale);
                for _ in 0..n {
                    let v = base + rng.next() % spread.max(1);
                    rec.record_tag(&t, v);
                    values.entry(tag.to_string()).or_default().push((second, v));
                }
            }
            rec.close_interval(Duration::from_secs(second + 1), &mut log)
                .unwrap();
        }
        log.finish().unwrap();
    }

    let columns = TimelineColumns::new(
        ["timeout", "throttled"],
        [
            "late",
            "tokens",
            "ecs_tasks_running",
            "ddb_wru_per_s",
            "ddb_wru_capacity",
        ],
    )
    .unwrap();
    let mut tl = dir.create_timeline(&columns).unwrap();
    let (mut sent, mut completed, mut timeout, mut throttled, mut late) = (0, 0, 0, 0, 0);
    for second in 0..SECONDS {
        let s = 80;
        let errs = [u64::from(second % 7 == 3), u64::from(second == 20) * 2];
        let l = u64::from(second % 5 == 0);
        let sessions = if second < 10 {
            10 * (second + 1) / 2 + 50
        } else {
            100
        };
        tl.write_row(&TimelineRow {
            t_s: (second + 1) as f64,
            sessions_open: sessions,
            sent: s,
            completed: s - errs[0] - errs[1],
            errors: &errs,
            extra: &[
                l as f64,
                (s * 120) as f64,
                (4 + second / 10) as f64,
                (300 + 10 * second) as f64,
                1000.0,
            ],
        })
        .unwrap();
        sent += s;
        completed += s - errs[0] - errs[1];
        timeout += errs[0];
        throttled += errs[1];
        late += l;
    }
    tl.finish().unwrap();

    let mut summary = Summary::new(SECONDS as f64);
    summary.counts = Counts {
        sessions: 100,
        sent,
        completed,
        late,
        unsolicited: 0,
        abandoned: 0,
        retries: 0,
    };
    summary.errors.insert("timeout".into(), timeout);
    summary.errors.insert("throttled".into(), throttled);
    summary.compute_rates();
    if kind == RunKind::Simulated {
        summary.cost = Some(serde_json::json!({
            "per_month_usd": 1234.5,
            "components": {"bedrock_usd": 1000.0, "ecs_usd": 234.5}
        }));
    }
    dir.write_summary(&summary).unwrap();
    Fixture { dir: path, values }
}

/// Percentile of a histogram in ms, the way the report computes it.
pub fn ms_at(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}
