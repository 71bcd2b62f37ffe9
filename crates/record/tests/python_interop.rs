//! Does the Python `hdrhistogram` package read what surge writes, with the same figures?
//!
//! Runs only when `SURGE_HDRH_PYTHON` names a Python interpreter that has the `hdrhistogram`
//! package (e.g. `python3 -m venv /tmp/hdrvenv && /tmp/hdrvenv/bin/pip install hdrhistogram`,
//! then `SURGE_HDRH_PYTHON=/tmp/hdrvenv/bin/python cargo test -p surge-record --test
//! python_interop`); otherwise it passes after printing that it was skipped, so CI without
//! Python stays green.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use surge_record::{Histogram, IntervalRecorder, Metric, RunDir, Tag, UtcTime, new_histogram};

fn python_rule(h: &Histogram<u64>, pct: f64) -> u64 {
    let target = ((pct * h.len() as f64 / 100.0) + 0.5).floor().max(1.0) as u64;
    let mut running = 0;
    for v in h.iter_recorded() {
        running += v.count_at_value();
        if running >= target {
            return h.highest_equivalent(v.value_iterated_to());
        }
    }
    0
}

#[test]
fn python_hdrhistogram_reads_our_log() {
    let Ok(python) = std::env::var("SURGE_HDRH_PYTHON") else {
        eprintln!("skipped: set SURGE_HDRH_PYTHON to a python with the hdrhistogram package");
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let start = UtcTime::from_unix_millis(1_795_871_100_250);
    let dir = RunDir::create(root.path(), "interop", start).unwrap();
    let mut log = dir.create_hlog(0, start).unwrap();
    let mut rec = IntervalRecorder::new(Duration::ZERO);
    let tags = [
        Tag::from(Metric::E2e),
        Tag::qualified(Metric::Ttft, "manga_jp").unwrap(),
        Tag::from(Metric::Itl),
    ];
    let mut s: u64 = 99;
    for second in 0..4u64 {
        for (i, t) in tags.iter().enumerate() {
            let n = [2000, 700, 5][i];
            for _ in 0..n {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                rec.record_tag(t, 50 + (s >> 33) % [3_000_000, 800_000, 40_000][i]);
            }
        }
        if second == 3 {
            // Beyond the initial 1 h range: exercises an auto-resized histogram.
            rec.record_tag(&tags[0], 5 * 3_600_000_000);
        }
        rec.close_interval(Duration::from_secs(second + 1), &mut log)
            .unwrap();
    }
    // An untagged line as well.
    let mut h = new_histogram();
    for v in [1, 10, 100, 1000] {
        h.record(v).unwrap();
    }
    log.write_interval(None, Duration::from_secs(4), Duration::from_secs(1), &h)
        .unwrap();
    log.finish().unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hdrh_python.py");
    let hlog = dir.hlog_path(0).unwrap();
    let out = Command::new(&python)
        .arg(&script)
        .arg("read")
        .arg(&hlog)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    let mut expected: BTreeMap<String, (Histogram<u64>, Vec<f64>)> = BTreeMap::new();
    for t in &tags {
        expected.insert(t.to_string(), (rec.total(t).unwrap().clone(), Vec::new()));
    }
    expected.insert(String::new(), (h, Vec::new()));
    for (tag, (hist, _)) in &expected {
        let py = &got["tags"][tag];
        assert_eq!(py["count"], hist.len(), "count of {tag:?}");
        assert_eq!(py["max"], hist.max(), "max of {tag:?}");
        for (name, pct) in [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9)] {
            assert_eq!(py[name], python_rule(hist, pct), "{name} of {tag:?}");
        }
    }
    // Interval start times: Python applies BaseTime the same way.
    let starts = got["interval_starts"].as_array().unwrap();
    assert_eq!(starts.len(), 13);
    assert_eq!(starts[0][1].as_f64().unwrap(), 1_795_871_100.25);
    assert_eq!(starts[12][1].as_f64().unwrap(), 1_795_871_104.25);
    eprintln!("python read {} intervals; figures identical", starts.len());
}
