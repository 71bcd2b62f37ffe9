//! Rehearsals that stop by themselves: `abort = true` thresholds and `--max-errors`
//! against a `surge mock` whose fault is switched on mid-run (`--fault-from`).
//!
//! The mock answers well for its first seconds, then fails half of the chat messages. A
//! guard must stop the run soon after (not at its planned end), leave a complete run
//! directory with status `aborted` and the breach named, and exit 1. Every wait is bounded.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::calibration::{Mock, SURGE, Steady, only_run};

/// A profile of 10 sessions sending 20 messages/s for 60 s, plus `thresholds`.
fn profile(dir: &Path, thresholds: &str) -> std::path::PathBuf {
    Steady {
        name: "guard",
        seed: 5,
        duration: "60s",
        sessions: 10,
        rate: "20/s",
        thresholds,
    }
    .write(dir)
}

struct Ended {
    code: Option<i32>,
    stderr: String,
    run: std::path::PathBuf,
}

/// Runs `surge run` against the mock to its end (bounded: the planned 60 s and more).
fn run(profile: &Path, mock: &Mock, out: &Path, extra: &[&str]) -> Ended {
    let child = Command::new(SURGE)
        .args(["run", profile.to_str().unwrap(), "--no-progress"])
        .args(["--target", &format!("ws://{}/chat", mock.addr)])
        .arg("--out")
        .arg(out)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let o = rx
        .recv_timeout(Duration::from_secs(150))
        .expect("surge run ends within 150 s")
        .unwrap();
    Ended {
        code: o.status.code(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        run: only_run(out),
    }
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Run time of the last timeline row.
fn last_row_s(run: &Path) -> f64 {
    let text = std::fs::read_to_string(run.join("timeline.csv")).unwrap();
    let last = text.lines().last().unwrap();
    last.split(',').next().unwrap().parse().unwrap()
}

#[test]
fn a_breached_error_rate_aborts_the_run_soon_after_the_fault() {
    let dir = tempfile::tempdir().unwrap();
    let p = profile(
        dir.path(),
        r#""errors.rate" = { limit = "< 5%", abort = true, window = "3s", after = "1s" }
"e2e.p99" = "< 30s""#,
    );
    let fault_from = 6.0;
    // The mock's clock starts after this instant, the run's at its time zero: the run's
    // clock lags the mock's by at most the gap between the two.
    let mock_spawned = std::time::SystemTime::now();
    let mock = Mock::start_with(
        &p,
        &["--fault-error-rate", "chat=0.5", "--fault-from", "6s"],
    );
    let out = dir.path().join("out");
    let e = run(&p, &mock, &out, &[]);
    assert_eq!(e.code, Some(1), "{}", e.stderr);
    assert!(e.stderr.contains("ABORTED"), "{}", e.stderr);

    let info = json(&e.run.join("run.json"));
    assert_eq!(info["status"], "aborted", "{info}");
    let breach = &info["breach"];
    assert_eq!(breach["guard"], "errors.rate < 5% over 3s", "{info}");
    let at = breach["at_s"].as_f64().unwrap();
    let zero = surge_record::UtcTime::parse_rfc3339(info["started_at"].as_str().unwrap())
        .unwrap()
        .to_system_time();
    let lag = zero
        .duration_since(mock_spawned)
        .unwrap_or_default()
        .as_secs_f64();
    // Not before the fault (the run was healthy), and within a few windows of it. In run
    // time the fault begins at `fault_from - lag` at the earliest.
    assert!(
        at > fault_from - lag,
        "breach at {at} s, fault from {fault_from} s of the mock's clock, {lag:.2} s ahead"
    );
    assert!(at < fault_from + 15.0, "breach at {at} s");
    let measured: f64 = breach["measured"]
        .as_str()
        .unwrap()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    assert!(measured >= 5.0, "{breach}");

    // A complete directory: the summary, every hlog, a timeline that stops near the breach.
    let summary = json(&e.run.join("summary.json"));
    assert!(
        summary["counts"]["sent"].as_u64().unwrap() > 50,
        "{summary}"
    );
    assert!(
        summary["errors"]["server_error"].as_u64().unwrap() > 0,
        "{summary}"
    );
    assert!(e.run.join("shard-000.hlog").is_file());
    let end = last_row_s(&e.run);
    assert!(end >= at && end < 40.0, "last row {end} s, breach {at} s");
    // Closed cleanly: no session was cut off by the stop itself.
    for class in ["dropped", "reply_timeout", "closed_mid_answer"] {
        assert_eq!(summary["errors"][class], 0, "{class}: {summary}");
    }
    // Reading it back works like any run.
    let report = Command::new(SURGE)
        .args(["report", e.run.to_str().unwrap(), "--format", "json"])
        .output()
        .unwrap();
    assert!(report.status.success(), "{report:?}");
    assert!(String::from_utf8_lossy(&report.stdout).contains("\"aborted\""));
}

#[test]
fn max_errors_judges_the_merged_view_of_all_shards() {
    let dir = tempfile::tempdir().unwrap();
    let p = profile(dir.path(), "");
    let mock = Mock::start_with(
        &p,
        &["--fault-error-rate", "chat=0.5", "--fault-from", "3s"],
    );
    let out = dir.path().join("out");
    let e = run(&p, &mock, &out, &["--shards", "2", "--max-errors", "30"]);
    assert_eq!(e.code, Some(1), "{}", e.stderr);
    let info = json(&e.run.join("run.json"));
    assert_eq!(info["status"], "aborted", "{info}");
    assert_eq!(info["breach"]["guard"], "errors <= 30 (--max-errors)");
    // The count is of both shards: 10 errors a second together, so the cap of 30 falls a
    // few seconds after the fault; either shard alone would need twice as long.
    let measured: u64 = info["breach"]["measured"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(measured > 30, "{info}");
    let at = info["breach"]["at_s"].as_f64().unwrap();
    assert!(at < 3.0 + 15.0, "breach at {at} s");
    assert!(e.run.join("shard-001.hlog").is_file());
}
