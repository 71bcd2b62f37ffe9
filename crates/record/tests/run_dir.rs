//! Run directory: naming, never overwriting, atomic JSON files, listings, timeline, samples.

use std::path::Path;
use std::time::Duration;

use surge_record::{
    Counts, Error, ErrorSample, IntervalRecorder, Metric, RunDir, RunInfo, RunKind, RunStatus,
    Summary, ThresholdOp, ThresholdVerdict, Timeline, TimelineColumns, TimelineRow, UtcTime,
    read_error_samples,
};

const T0: i64 = 1_795_871_100_000; // 2026-11-28T13:05:00Z

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn creates_timestamped_dir_and_never_overwrites() {
    let root = tempfile::tempdir().unwrap();
    let t = UtcTime::from_unix_millis(T0);
    let a = RunDir::create(root.path(), "one-piece-spike", t).unwrap();
    assert_eq!(
        a.path(),
        root.path().join("one-piece-spike/2026-11-28T13-05-00Z")
    );
    assert!(a.errors_dir().is_dir());
    std::fs::write(a.path().join("marker"), "first run").unwrap();
    let b = RunDir::create(root.path(), "one-piece-spike", t).unwrap();
    let c = RunDir::create(root.path(), "one-piece-spike", t).unwrap();
    assert!(b.path().ends_with("2026-11-28T13-05-00Z-2"));
    assert!(c.path().ends_with("2026-11-28T13-05-00Z-3"));
    assert_eq!(
        std::fs::read_to_string(a.path().join("marker")).unwrap(),
        "first run"
    );

    // An explicitly given existing path is an error.
    let e = RunDir::create_at(a.path()).unwrap_err();
    assert!(matches!(e, Error::AlreadyExists { .. }), "{e}");
    assert!(e.to_string().contains("refusing to overwrite"), "{e}");
    let fresh = root.path().join("explicit/out");
    RunDir::create_at(&fresh).unwrap();
    assert!(RunDir::create_at(&fresh).is_err());

    // Bad profile names.
    for bad in ["", "../x", "a/b", ".hidden"] {
        let e = RunDir::create(root.path(), bad, t).unwrap_err();
        assert!(matches!(e, Error::InvalidName { .. }), "{e}");
    }
}

#[test]
fn files_inside_are_never_overwritten() {
    let root = tempfile::tempdir().unwrap();
    let d = RunDir::create(root.path(), "p", UtcTime::from_unix_millis(T0)).unwrap();
    let log = d.create_hlog(3, UtcTime::from_unix_millis(T0)).unwrap();
    log.finish().unwrap();
    assert!(matches!(
        d.create_hlog(3, UtcTime::from_unix_millis(T0)).unwrap_err(),
        Error::AlreadyExists { .. }
    ));
    let cols = TimelineColumns::new(["timeout"], ["ecs_tasks"]).unwrap();
    d.create_timeline(&cols).unwrap().finish().unwrap();
    assert!(matches!(
        d.create_timeline(&cols).unwrap_err(),
        Error::AlreadyExists { .. }
    ));
    assert!(matches!(
        d.create_hlog(1000, UtcTime::from_unix_millis(T0))
            .unwrap_err(),
        Error::ShardOutOfRange { shard: 1000 }
    ));
}

#[test]
fn atomic_json_writes_leave_no_temp_files_and_read_back() {
    let root = tempfile::tempdir().unwrap();
    let d = RunDir::create(
        root.path(),
        "nightly-staging",
        UtcTime::from_unix_millis(T0),
    )
    .unwrap();
    let mut info = RunInfo::new(
        RunKind::Measured,
        "nightly-staging",
        serde_json::json!({"traffic": {"users": 500}}),
        UtcTime::from_unix_millis(T0),
    );
    info.set_target("wss://ci:hunter2@staging.example/ws?X-Amz-Security-Token=abc");
    info.shards = 2;
    d.write_run_info(&info).unwrap();
    assert_eq!(d.read_run_info().unwrap().status, RunStatus::Running);
    info.finish(
        RunStatus::Interrupted,
        UtcTime::from_unix_millis(T0 + 90_000),
    );
    d.write_run_info(&info).unwrap(); // replaces
    let back = d.read_run_info().unwrap();
    assert_eq!(back, info);
    assert_eq!(
        back.target(),
        Some("wss://staging.example/ws?X-Amz-Security-Token=REDACTED")
    );
    let raw = std::fs::read_to_string(d.run_json_path()).unwrap();
    assert!(!raw.contains("hunter2") && !raw.contains("abc"), "{raw}");

    let mut s = Summary::new(90.0);
    s.counts = Counts {
        sessions: 500,
        sent: 7500,
        completed: 7400,
        late: 12,
        unsolicited: 0,
        abandoned: 0,
        retries: 0,
    };
    s.errors.insert("timeout".into(), 100);
    s.compute_rates();
    d.write_summary(&s).unwrap();
    d.write_summary(&s).unwrap();
    assert_eq!(d.read_summary().unwrap(), s);

    assert_eq!(names(d.path()), vec!["errors", "run.json", "summary.json"]);

    // NaN is refused before anything is written.
    let mut bad = s.clone();
    bad.rates.sent_per_s = f64::NAN;
    let e = d.write_summary(&bad).unwrap_err().to_string();
    assert!(
        e.contains("rates.sent_per_s") && e.contains("summary.json"),
        "{e}"
    );
    assert_eq!(names(d.path()), vec!["errors", "run.json", "summary.json"]);
    assert_eq!(d.read_summary().unwrap(), s);
}

#[test]
fn reading_wrong_schema_or_bad_json_names_the_file() {
    let root = tempfile::tempdir().unwrap();
    let d = RunDir::create(root.path(), "p", UtcTime::from_unix_millis(T0)).unwrap();
    std::fs::write(d.summary_path(), r#"{"schema": "surge.summary/v9"}"#).unwrap();
    let e = d.read_summary().unwrap_err();
    assert!(matches!(e, Error::Schema { .. }), "{e}");
    assert!(e.to_string().contains("summary.json"), "{e}");
    std::fs::write(
        d.run_json_path(),
        "{\n  \"schema\": \"surge.run/v1\",\n  \"kind\": 3\n}",
    )
    .unwrap();
    let e = d.read_run_info().unwrap_err().to_string();
    assert!(e.contains("run.json") && e.contains("line 3"), "{e}");
    let e = RunDir::open(&root.path().join("nope"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope"), "{e}");
}

#[test]
fn list_hlogs_finds_only_shard_logs_in_order() {
    let root = tempfile::tempdir().unwrap();
    let d = RunDir::create(root.path(), "p", UtcTime::from_unix_millis(T0)).unwrap();
    for shard in [2, 0, 10] {
        let mut log = d.create_hlog(shard, UtcTime::from_unix_millis(T0)).unwrap();
        let mut rec = IntervalRecorder::new(Duration::ZERO);
        rec.record_tag(&Metric::Connect.into(), 1000 + u64::from(shard));
        rec.close_interval(Duration::from_secs(1), &mut log)
            .unwrap();
        log.finish().unwrap();
    }
    std::fs::write(d.path().join("shard-1.hlog"), "x").unwrap();
    std::fs::write(d.path().join("notes.hlog"), "x").unwrap();
    let opened = RunDir::open(d.path()).unwrap();
    let listed: Vec<String> = opened
        .list_hlogs()
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        listed,
        ["shard-000.hlog", "shard-002.hlog", "shard-010.hlog"]
    );
    let logs = opened.read_hlogs().unwrap();
    assert_eq!(logs.len(), 3);
    assert_eq!(logs[2].intervals[0].histogram.max(), 1010);
}

#[test]
fn timeline_header_is_fixed_rows_checked_and_read_by_name() {
    let root = tempfile::tempdir().unwrap();
    let d = RunDir::create(root.path(), "p", UtcTime::from_unix_millis(T0)).unwrap();
    let cols = TimelineColumns::new(["timeout", "throttled"], ["ecs_tasks", "cpu_util"]).unwrap();
    let mut w = d.create_timeline(&cols).unwrap();
    for i in 0..3u64 {
        w.write_row(&TimelineRow {
            t_s: (i + 1) as f64,
            sessions_open: 100 * i,
            sent: 10 * i,
            completed: 9 * i,
            errors: &[i, 0],
            extra: &[2.0 + i as f64, if i == 1 { f64::NAN } else { 0.25 }],
        })
        .unwrap();
    }
    let e = w
        .write_row(&TimelineRow {
            t_s: 4.0,
            sessions_open: 0,
            sent: 0,
            completed: 0,
            errors: &[1],
            extra: &[1.0, 2.0],
        })
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("timeline.csv:5:") && msg.contains("1 error values"),
        "{msg}"
    );
    let e = w
        .write_row(&TimelineRow {
            t_s: 4.0,
            sessions_open: 0,
            sent: 0,
            completed: 0,
            errors: &[1, 2],
            extra: &[1.0, 2.0, 3.0],
        })
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::TimelineRowWidth {
                expected: 2,
                got: 3,
                ..
            }
        ),
        "{e}"
    );
    // Rows are on disk before finish().
    let text = std::fs::read_to_string(d.timeline_path()).unwrap();
    assert_eq!(
        text,
        "t_s,sessions_open,sent,completed,errors_timeout,errors_throttled,ecs_tasks,cpu_util\n\
         1,0,0,0,0,0,2,0.25\n2,100,10,9,1,0,3,\n3,200,20,18,2,0,4,0.25\n"
    );
    w.finish().unwrap();

    let t = d.read_timeline().unwrap();
    assert!(t.warnings.is_empty());
    assert_eq!(t.len(), 3);
    assert_eq!(t.column("sent").unwrap(), &[0.0, 10.0, 20.0]);
    assert_eq!(t.column("ecs_tasks").unwrap(), &[2.0, 3.0, 4.0]);
    assert!(t.column("cpu_util").unwrap()[1].is_nan());
    assert!(t.column("nope").is_none());
    assert_eq!(
        t.error_classes().collect::<Vec<_>>(),
        ["timeout", "throttled"]
    );
    assert_eq!(
        t.extra_columns().collect::<Vec<_>>(),
        ["ecs_tasks", "cpu_util"]
    );
}

#[test]
fn timeline_layout_and_reader_validation() {
    assert!(TimelineColumns::new(["a b"], Vec::<&str>::new()).is_err());
    assert!(TimelineColumns::new(Vec::<&str>::new(), ["sent"]).is_err());
    assert!(TimelineColumns::new(Vec::<&str>::new(), ["x", "x"]).is_err());
    assert!(TimelineColumns::new(Vec::<&str>::new(), ["errors_x"]).is_err());
    assert!(TimelineColumns::new(["a,b"], Vec::<&str>::new()).is_err());

    let p = Path::new("r/timeline.csv");
    let e = Timeline::parse(p, "time,sent\n1,2\n")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("r/timeline.csv:1:"), "{e}");
    let t = Timeline::parse(
        p,
        "t_s,sessions_open,sent,completed,x\n1,1,1,1,1\n2,2,two,2,2\n3,3,3\n4,4,4,4,4\n5,5,5",
    )
    .unwrap();
    assert_eq!(t.column("t_s").unwrap(), &[1.0, 4.0]);
    let lines: Vec<usize> = t.warnings.iter().map(|w| w.line).collect();
    assert_eq!(lines, [3, 4, 6]);
    assert!(t.warnings[0].to_string().starts_with("r/timeline.csv:3: "));
}

#[test]
fn error_samples_are_capped_per_class_and_in_total() {
    let root = tempfile::tempdir().unwrap();
    let d = RunDir::create(root.path(), "p", UtcTime::from_unix_millis(T0)).unwrap();
    let mut w = d.create_error_samples(0, 2, 3).unwrap();
    let mk = |class: &str, i: u32| ErrorSample {
        t_s: f64::from(i),
        class: class.into(),
        message: format!("failure {i}"),
        detail: Some(serde_json::json!({"close_code": 1011})),
    };
    let mut written = Vec::new();
    for i in 0..4 {
        written.push(w.sample(&mk("timeout", i)).unwrap());
    }
    for i in 0..3 {
        written.push(w.sample(&mk("throttled", i)).unwrap());
    }
    assert_eq!(written, [true, true, false, false, true, false, false]);
    w.finish().unwrap();
    let files = d.list_error_samples().unwrap();
    assert_eq!(files.len(), 1);
    assert!(files[0].ends_with("errors/samples-000.jsonl"));
    let (samples, warnings) = read_error_samples(&files[0]).unwrap();
    assert!(warnings.is_empty());
    assert_eq!(samples.len(), 3);
    assert_eq!(samples[2].class, "throttled");
}

#[test]
fn summary_threshold_helpers() {
    let mut s = Summary::new(60.0);
    s.thresholds.push(ThresholdVerdict::evaluate(
        "latency_ms.e2e.p99",
        ThresholdOp::LessOrEqual,
        4000.0,
        Some(3500.0),
    ));
    assert!(s.passed());
    s.thresholds.push(ThresholdVerdict::evaluate(
        "error_ratio",
        ThresholdOp::Less,
        0.01,
        Some(0.02),
    ));
    assert!(!s.passed());
}
