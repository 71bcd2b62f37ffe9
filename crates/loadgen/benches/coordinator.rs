//! What the coordinator of a multi-machine run costs: `cargo bench -p surge-loadgen --bench
//! coordinator`.
//!
//! 16 shards each report one interval a second with 5 latency tags (e2e, ttft, service,
//! connect, lag), as JSON lines on their links. The coordinator parses every line and merges
//! it into the one run directory: each shard's hlog, the merged timeline row, the guards'
//! sliding window and the live `/metrics`. Ten minutes of such a run are fed as fast as the
//! coordinator takes them; the CPU it spends per run-second is its share of one core in real
//! time (the goal: at most 5 %).
//!
//! The peer, in the same run: the least any exact merge must do — decode each histogram
//! from its line and add it to a running total with the hdrhistogram crate — without files,
//! guards or metrics.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use surge_loadgen::coordinator::Aggregator;
use surge_loadgen::exporter::Exporter;
use surge_loadgen::guard::Guard;
use surge_loadgen::health::thread_cpu_time;
use surge_loadgen::progress::Progress;
use surge_loadgen::recording::CounterValues;
use surge_loadgen::rendezvous::Up;
use surge_loadgen::wire::{IntervalReport, ShardMessage};
use surge_loadgen::workers::ShardEvent;
use surge_profile::Profile;
use surge_record::{IntervalRecorder, Metric, RunDir, Tag, new_histogram};

const SHARDS: u32 = 16;
const SECONDS: u64 = 600;
/// Answers per shard per second: 250,000 messages a minute over 16 shards.
const ANSWERS: u64 = 260;

/// The JSON lines shard `shard` sends for intervals 1..=SECONDS.
fn lines(shard: u32) -> Vec<String> {
    let mut rng = SmallRng::seed_from_u64(u64::from(shard));
    let tags = [
        Metric::E2e,
        Metric::Ttft,
        Metric::Service,
        Metric::Connect,
        Metric::Lag,
    ]
    .map(Tag::from);
    let mut rec = IntervalRecorder::new(Duration::ZERO);
    (1..=SECONDS)
        .map(|i| {
            for tag in &tags {
                for _ in 0..ANSWERS {
                    // Log-uniform from 1 ms to 10 s: wide histograms, many buckets.
                    let micros = 10f64.powf(rng.random_range(3.0..7.0)) as u64;
                    rec.record_tag(tag, micros);
                }
            }
            let snapshot = rec
                .take_interval(Duration::from_secs(i))
                .expect("intervals move forward");
            let counts = CounterValues {
                sent: ANSWERS,
                completed: ANSWERS,
                ..CounterValues::default()
            };
            let up = Up::Report {
                message: Box::new(ShardMessage::Interval(IntervalReport {
                    index: i,
                    snapshot,
                    sessions_open: 1_560,
                    counts,
                    cpu_s: 0.4,
                    wait_s: 0.0,
                })),
            };
            serde_json::to_string(&up).expect("reports serialize")
        })
        .collect()
}

/// CPU seconds of the coordinator's whole path over every line.
fn coordinator(profile: &Profile, feed: &[Vec<String>], out: &Path) -> f64 {
    let start = SystemTime::now();
    let dir = RunDir::create(out, &profile.name, start).expect("a run directory");
    let all: Vec<u32> = (0..SHARDS).collect();
    let mut agg = Aggregator::new(
        dir,
        &all,
        start,
        Some(Arc::new(Exporter::new())),
        Progress::new(Duration::from_secs(SECONDS), false),
        None,
        Guard::new(&profile.thresholds, Some(u64::MAX / 2)),
    )
    .expect("an aggregator");
    let cpu = thread_cpu_time();
    for i in 0..SECONDS as usize {
        for (shard, lines) in feed.iter().enumerate() {
            let Up::Report { message } = serde_json::from_str(&lines[i]).expect("a report") else {
                unreachable!("only reports are fed")
            };
            agg.on_event(shard as u32, ShardEvent::Message(message))
                .expect("merged");
        }
    }
    let spent = thread_cpu_time().saturating_sub(cpu);
    black_box(agg.breach());
    spent.as_secs_f64()
}

/// CPU seconds of the bare minimum: decode each histogram and add it to a total.
fn decode_and_add(feed: &[Vec<String>]) -> f64 {
    let mut total = new_histogram();
    let cpu = thread_cpu_time();
    for i in 0..SECONDS as usize {
        for lines in feed {
            let Up::Report { message } = serde_json::from_str(&lines[i]).expect("a report") else {
                unreachable!("only reports are fed")
            };
            if let ShardMessage::Interval(r) = *message {
                for e in &r.snapshot.entries {
                    total.add(&e.histogram).expect("same range");
                }
            }
        }
    }
    black_box(total.len());
    thread_cpu_time().saturating_sub(cpu).as_secs_f64()
}

fn main() {
    let profile_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles/local.toml");
    let profile = Profile::load(&profile_path).expect("the shipped local profile");
    let prepared = Instant::now();
    let feed: Vec<Vec<String>> = (0..SHARDS).map(lines).collect();
    let bytes: usize = feed.iter().flatten().map(String::len).sum();
    println!(
        "coordinator merge: {SHARDS} shards x 5 tags, {SECONDS} one-second intervals, \
         {ANSWERS} answers per shard-second; {:.1} KiB per interval on the wire \
         (prepared in {:.1} s)",
        bytes as f64 / SECONDS as f64 / 1024.0,
        prepared.elapsed().as_secs_f64()
    );
    let out = tempfile::tempdir().expect("a temporary directory");
    for round in 1..=3 {
        let full = coordinator(&profile, &feed, &out.path().join(round.to_string()));
        let bare = decode_and_add(&feed);
        let per_s = |cpu: f64| cpu / SECONDS as f64;
        println!(
            "round {round}: coordinator {:.2} ms CPU per run-second = {:.2} % of one core; \
             peer (decode + add only) {:.2} ms = {:.2} %; ratio {:.2}",
            per_s(full) * 1e3,
            per_s(full) * 100.0,
            per_s(bare) * 1e3,
            per_s(bare) * 100.0,
            full / bare
        );
    }
}
