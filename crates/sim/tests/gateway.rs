//! API Gateway's two-hour limit, shortened: connections close with 1001 when they reach
//! `max_connection` and reconnect through the connect-rate admission, and the run says
//! so in `summary.json` (`connections`, as a measured run counts them) and per minute in
//! `timeline.csv` (`connections_opened`, `closed_by_gateway`, `connect_backlog`).
//!
//! Known answer, by hand: 1,000 sessions, admitted 500 a second (one second of burst), so
//! cohorts of 500 open at 0 s and 1 s. With `max_connection = 2m` each cohort closes at
//! 120 s and 240 s after its first opening and reopens at once: 2,000 closes and 3,000
//! connections opened over the five minutes. A timeline row counts what happened up to
//! and including its end, so the cohort of 0 s closes in the row ending at 120 s and the
//! cohort of 1 s in the next.

mod common;

use common::{layers_off_except, profile, stage};
use surge_record::{Summary, Timeline};
use surge_sim::{SimOptions, simulate};

/// 1,000 sessions of the gateway alone, with these `[gateway]` overrides, for `duration`:
/// the summary and the timeline the run wrote.
fn run(gateway: &str, duration: &str) -> (Summary, Timeline) {
    let system = format!("{}{gateway}", layers_off_except(&["gateway"]));
    let p = profile(
        &system,
        "constant",
        r#"chitchat = "100%""#,
        &stage("steady", duration, 1000, "100/s"),
    );
    let root = tempfile::tempdir().unwrap();
    let out = simulate(
        &p,
        &SimOptions {
            out_root: Some(root.path().to_path_buf()),
            ..SimOptions::default()
        },
    )
    .unwrap();
    let dir = out.run_dir.expect("a run directory");
    (
        out.summary,
        Timeline::read(&dir.join("timeline.csv")).unwrap(),
    )
}

#[test]
fn the_connection_limit_closes_and_reopens_every_connection_in_waves() {
    let (summary, timeline) = run(
        "gateway.max_connection = \"2m\"\ngateway.connect_rate = \"500/s\"\n",
        "5m",
    );
    let c = summary.connections.expect("the gateway counts connections");
    assert_eq!(c.reconnects, 2000, "{c:?}");
    assert_eq!(c.opened, 3000, "{c:?}");
    assert_eq!(c.closed_by_server.get("1001"), Some(&2000), "{c:?}");

    let closed = timeline.column("closed_by_gateway").unwrap();
    let opened = timeline.column("connections_opened").unwrap();
    // Rows ending at 60, 120, 180, 240 and 300 s.
    assert_eq!(
        &closed[..5],
        &[0.0, 500.0, 500.0, 500.0, 500.0],
        "{closed:?}"
    );
    assert_eq!(
        &opened[..5],
        &[1000.0, 500.0, 500.0, 500.0, 500.0],
        "{opened:?}"
    );

    // Without the limit nothing closes: the counts are the gateway's, not the schedule's.
    let c = run("gateway.max_connection = \"3h\"\n", "5m")
        .0
        .connections
        .unwrap();
    assert_eq!((c.opened, c.reconnects), (1000, 0));
    assert!(c.closed_by_server.is_empty());
}

/// A wave that meets the ramp: admitted five a second, 1,000 sessions take 200 s to
/// connect, and from 120 s on the first of them close again and wait in the same line.
/// The connect backlog at the end of minute 3 is the wave's doing.
#[test]
fn a_reconnect_wave_during_a_slow_ramp_waits_for_admission() {
    let backlog_at_180s = |max_connection: &str| {
        let gateway = format!(
            "gateway.max_connection = \"{max_connection}\"\ngateway.connect_rate = \"5/s\"\n"
        );
        run(&gateway, "4m").1.column("connect_backlog").unwrap()[2]
    };
    let steady = backlog_at_180s("3h");
    let waved = backlog_at_180s("2m");
    // Without closes, 1,000 − 5 × 181 are still waiting; with them, the ~300 closed since
    // 120 s wait too.
    assert!((90.0..=100.0).contains(&steady), "{steady}");
    assert!(waved >= steady + 250.0, "{waved} against {steady}");
}
