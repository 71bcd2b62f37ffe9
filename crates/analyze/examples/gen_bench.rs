//! Generate a large run directory for benchmarking `surge report` (scripts/bench-analyze.sh).
//!
//! `cargo run --release -p surge-analyze --example gen_bench -- OUT_DIR [SHARDS] [SECONDS]`
//!
//! Defaults: 16 shards × 7,200 one-second intervals × five tags (`e2e`, `ttft`, `itl`,
//! `service`, `connect`) = 576,000 interval histograms, with about the load of the 25,000-user
//! spike (≈ 4,167 messages/s over 16 shards) and three stages. Values are deterministic.

use std::path::PathBuf;
use std::time::Duration;

use surge_record::{
    Counts, IntervalRecorder, Metric, RunDir, RunInfo, RunKind, RunStatus, Summary, Tag,
    TimelineColumns, TimelineRow, UtcTime,
};

const START_MS: i64 = 1_795_871_100_000;

fn main() {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(
        args.next()
            .expect("usage: gen_bench OUT_DIR [SHARDS] [SECONDS]"),
    );
    let shards: u32 = args.next().map_or(16, |s| s.parse().expect("SHARDS"));
    let seconds: u64 = args.next().map_or(7200, |s| s.parse().expect("SECONDS"));
    let dir = RunDir::create_at(&out).expect("create the run directory (must not exist)");
    let start = UtcTime::from_unix_millis(START_MS);
    let third = seconds / 3;
    let profile = serde_json::json!({
        "name": "bench",
        "duration": format!("{seconds}s"),
        "traffic": {"stages": [
            {"name": "ramp", "duration": format!("{third}s")},
            {"name": "spike", "duration": format!("{third}s")},
            {"name": "cool-down", "duration": format!("{}s", seconds - 2 * third)}
        ]},
        "thresholds": {"e2e.p99": "< 5s", "ttft.p99": "< 1500ms"}
    });
    let mut info = RunInfo::new(RunKind::Measured, "bench", profile, start);
    info.shards = shards;
    dir.write_run_info(&info).unwrap();

    let per_shard_s = 4167 / u64::from(shards).max(1);
    std::thread::scope(|scope| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        for worker in 0..cores {
            let dir = &dir;
            scope.spawn(move || {
                for shard in (0..shards).filter(|s| s % cores == worker) {
                    write_shard(dir, shard, seconds, per_shard_s, start);
                }
            });
        }
    });

    let columns = TimelineColumns::new(["timeout"], ["tokens"]).unwrap();
    let mut tl = dir.create_timeline(&columns).unwrap();
    let sent = per_shard_s * u64::from(shards);
    for s in 0..seconds {
        tl.write_row(&TimelineRow {
            t_s: (s + 1) as f64,
            sessions_open: 25_000,
            sent,
            completed: sent,
            errors: &[0],
            extra: &[(sent * 300) as f64],
        })
        .unwrap();
    }
    tl.finish().unwrap();
    let mut summary = Summary::new(seconds as f64);
    summary.counts = Counts {
        sessions: 25_000,
        sent: sent * seconds,
        completed: sent * seconds,
        late: 0,
        unsolicited: 0,
        abandoned: 0,
        retries: 0,
    };
    summary.compute_rates();
    dir.write_summary(&summary).unwrap();
    info.finish(
        RunStatus::Complete,
        UtcTime::from_unix_millis(START_MS + seconds as i64 * 1000),
    );
    dir.write_run_info(&info).unwrap();
    println!(
        "wrote {} ({shards} shards × {seconds} s × 5 tags = {} interval histograms)",
        out.display(),
        u64::from(shards) * seconds * 5
    );
}

fn write_shard(dir: &RunDir, shard: u32, seconds: u64, per_s: u64, start: UtcTime) {
    let mut log = dir.create_hlog(shard, start).unwrap();
    let mut rec = IntervalRecorder::new(Duration::ZERO);
    let ids = [
        Metric::E2e,
        Metric::Ttft,
        Metric::Itl,
        Metric::Service,
        Metric::Connect,
    ]
    .map(|m| rec.register(&Tag::from(m)));
    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ u64::from(shard);
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        state >> 33
    };
    for s in 0..seconds {
        for _ in 0..per_s {
            let ttft = 150_000 + next() % 900_000;
            rec.record(ids[1], ttft);
            rec.record(ids[0], ttft + 500_000 + next() % 3_000_000);
            rec.record(ids[3], ttft + 400_000 + next() % 2_500_000);
            for _ in 0..8 {
                rec.record(ids[2], 2_000 + next() % 30_000);
            }
        }
        rec.record(ids[4], 5_000 + next() % 100_000);
        rec.close_interval(Duration::from_secs(s + 1), &mut log)
            .unwrap();
    }
    log.finish().unwrap();
}
