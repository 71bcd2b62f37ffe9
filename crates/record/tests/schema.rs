//! summary.json and run.json as written by the real writers validate against the checked-in
//! JSON Schemas in `crates/record/schema/`.

use std::path::Path;
use std::time::Duration;

use surge_record::{
    Connections, Counts, IntervalRecorder, Metric, RunDir, RunInfo, RunKind, RunStatus, Summary,
    Tag, ThresholdOp, ThresholdVerdict, UtcTime,
};

fn validator(name: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schema")
        .join(name);
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

fn assert_valid(v: &jsonschema::Validator, doc: &serde_json::Value) {
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{doc:#}");
}

fn real_run_dir() -> (tempfile::TempDir, RunDir) {
    let root = tempfile::tempdir().unwrap();
    let start = UtcTime::from_unix_millis(1_795_871_100_000);
    let dir = RunDir::create(root.path(), "one-piece-spike", start).unwrap();

    let mut log = dir.create_hlog(0, start).unwrap();
    let mut rec = IntervalRecorder::new(Duration::ZERO);
    let tags = [
        Tag::from(Metric::E2e),
        Tag::from(Metric::Ttft),
        Tag::qualified(Metric::Ttft, "manga_jp").unwrap(),
        Tag::qualified(Metric::E2e, "haiku").unwrap(),
        Tag::from(Metric::Lag),
    ];
    for s in 0..3u64 {
        for (i, t) in tags.iter().enumerate() {
            for v in 0..50u64 {
                rec.record_tag(t, 1_000 * (i as u64 + 1) + v * 37 + s);
            }
        }
        rec.close_interval(Duration::from_secs(s + 1), &mut log)
            .unwrap();
    }
    log.finish().unwrap();

    let mut summary = Summary::new(3.0);
    summary.counts = Counts {
        sessions: 25,
        sent: 150,
        completed: 148,
        late: 3,
        unsolicited: 1,
        abandoned: 2,
        retries: 3,
    };
    summary.errors.insert("timeout".into(), 2);
    summary.compute_rates();
    summary.latency_ms = rec.latency_ms();
    let p99 = summary.latency_ms[&Tag::from(Metric::E2e)].p99;
    summary.thresholds.push(ThresholdVerdict::evaluate(
        "latency_ms.e2e.p99",
        ThresholdOp::Less,
        2000.0,
        Some(p99),
    ));
    summary.thresholds.push(ThresholdVerdict::evaluate(
        "latency_ms.itl.p99",
        ThresholdOp::Less,
        50.0,
        None,
    ));
    summary.connections = Some(Connections {
        opened: 30,
        reconnects: 5,
        keepalives: 2,
        closed_by_server: [("1001".to_string(), 4), ("1006".to_string(), 1)].into(),
    });
    summary.cost = Some(serde_json::json!({"usd_per_hour": 12.5, "per_conversation": 0.02}));
    summary
        .extra
        .insert("peak_ecs_tasks".into(), serde_json::json!(48));
    dir.write_summary(&summary).unwrap();

    let mut info = RunInfo::new(
        RunKind::Simulated,
        "one-piece-spike",
        serde_json::json!({"traffic": {"users": 25000}}),
        start,
    );
    info.seed = Some(7);
    dir.write_run_info(&info).unwrap();
    (root, dir)
}

#[test]
fn written_summary_validates_against_schema() {
    let (_root, dir) = real_run_dir();
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.summary_path()).unwrap()).unwrap();
    let v = validator("summary.v1.schema.json");
    assert_valid(&v, &doc);
    assert_eq!(doc["latency_ms"].as_object().unwrap().len(), 5);
    assert!(doc["thresholds"][1]["measured"].is_null());

    // Minimal summary (no cost, no extra) validates too.
    let minimal = serde_json::to_value(Summary::new(0.0)).unwrap();
    assert_valid(&v, &minimal);

    // And the schema is not vacuous.
    let mut broken = doc.clone();
    broken["latency_ms"]["e2e"]["p50"] = "fast".into();
    assert!(!v.is_valid(&broken));
    let mut broken = doc.clone();
    broken["latency_ms"]["bogus:x"] = broken["latency_ms"]["e2e"].clone();
    assert!(!v.is_valid(&broken));
    let mut broken = doc.clone();
    broken["connections"]["closed_by_server"]["normal"] = 1.into();
    assert!(!v.is_valid(&broken));
    assert_eq!(doc["counts"]["unsolicited"], 1);
    assert_eq!(doc["connections"]["closed_by_server"]["1001"], 4);
    let mut broken = doc;
    broken["surprise"] = 1.into();
    assert!(!v.is_valid(&broken));
}

#[test]
fn written_run_json_validates_against_schema() {
    let (_root, dir) = real_run_dir();
    let v = validator("run.v1.schema.json");
    let read = |d: &RunDir| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(d.run_json_path()).unwrap()).unwrap()
    };
    assert_valid(&v, &read(&dir));
    let mut info = dir.read_run_info().unwrap();
    info.set_target("ws://127.0.0.1:9000/chat");
    info.finish(
        RunStatus::Complete,
        UtcTime::from_unix_millis(1_795_878_300_000),
    );
    dir.write_run_info(&info).unwrap();
    let doc = read(&dir);
    assert_valid(&v, &doc);
    assert_eq!(doc["ended_at"], "2026-11-28T15:05:00.000Z");
}
