//! API Gateway's two-hour limit, shortened: connections close with 1001 when they reach
//! `max_connection` and reconnect through the connect-rate admission, and the run says
//! so in `summary.json` (`connections`, as a measured run counts them) and per minute in
//! `timeline.csv` (`connections_opened`, `closed_by_gateway`, `connect_backlog`).
//!
//! The idle timeout the same way: sessions that seldom send close the timeout after they
//! opened (all but the few that spoke) and again after every reconnect, unless a
//! keepalive message holds them open.
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
    let (summary, timeline, _) = run_with(gateway, duration, "100/s", "");
    (summary, timeline)
}

/// As [`run`], with the sessions' message rate and the sections after the stages (`tail`):
/// also the printed report.
fn run_with(gateway: &str, duration: &str, rate: &str, tail: &str) -> (Summary, Timeline, String) {
    let system = format!("{}{gateway}", layers_off_except(&["gateway"]));
    let p = profile(
        &system,
        "constant",
        r#"chitchat = "100%""#,
        &format!("{}{tail}", stage("steady", duration, 1000, rate)),
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
        out.report.to_string(),
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

/// 1,000 sessions sending one message a second between them (one each per 1,000 s), with
/// a one-minute idle timeout: a session is silent for a minute with probability
/// e^(−60/1000) = 0.942. So the cohort of 0 s (500) closes at 60 s but for ~29 that spoke
/// (the row ending at 60 s: 471); the next row has the cohort of 1 s at 61 s (471), the
/// first cohort's reconnections again at 120 s (0.942 × 471 = 444) and the ~2 × 27 that
/// spoke once and then fell silent: ~970. A keepalive message every 30 s holds every
/// connection; a WebSocket ping does not.
#[test]
fn the_idle_timeout_closes_silent_connections_in_a_wave_unless_a_keepalive_holds_them() {
    let gateway = "gateway.idle_timeout = \"1m\"\ngateway.max_connection = \"3h\"\n";
    let (summary, timeline, printed) = run_with(gateway, "3m", "1/s", "");
    let closed = timeline.column("closed_by_gateway").unwrap();
    assert!((465.0..=477.0).contains(&closed[0]), "{closed:?}");
    assert!((940.0..=1000.0).contains(&closed[1]), "{closed:?}");
    let c = summary.connections.unwrap();
    assert_eq!(c.reconnects, closed.iter().sum::<f64>() as u64);
    assert_eq!(c.closed_by_server.get("1001"), Some(&c.reconnects));
    assert!(printed.contains("after the idle timeout"), "{printed}");
    assert!(printed.contains("reconnect wave:"), "{printed}");

    let held = "\n[protocol]\nkeepalive = { every = \"30s\", send = '{\"action\":\"ping\"}' }\n";
    let c = run_with(gateway, "3m", "1/s", held).0.connections.unwrap();
    assert_eq!((c.opened, c.reconnects), (1000, 0), "{c:?}");
    let pinged = "\n[protocol]\nkeepalive = { every = \"30s\", ping = true }\n";
    let c = run_with(gateway, "3m", "1/s", pinged)
        .0
        .connections
        .unwrap();
    assert!(c.reconnects >= 900, "pings do not count as messages: {c:?}");
}

/// A streamed answer of 100 tokens at 100 tokens/s, on an account of 60 requests a
/// second, for 10 messages a second. Posted per answer, a message costs 3 requests (30 a
/// second: nothing throttled). Posted per chunk of 10 tokens it costs 1 + 10 = 11, and
/// the account admits 60 / 11 = 5.45 messages a second: 45 % throttled. The first token
/// comes with the first chunk, 9 tokens (90 ms) later.
#[test]
fn answers_posted_per_chunk_charge_the_account_per_chunk_and_delay_the_first_token() {
    let run = |posts: &str| {
        let system = format!(
            "{}gateway.account_rate = \"60/s\"\ngateway.account_burst = 60\n\
             gateway.posts_per_answer = \"{posts}\"\ngateway.chunk_tokens = 10\n\
             bedrock.streaming = true\nbedrock.tiering = true\n\
             bedrock.models.haiku.ttft = \"100ms\"\nbedrock.models.haiku.output_rate = \"100/s\"\n\
             bedrock.models.haiku.requests_per_minute = 1000000\n\
             bedrock.models.haiku.tokens_per_minute = 1000000000\n\
             intents.chitchat.output_tokens = \"100\"\n",
            layers_off_except(&["gateway", "bedrock"])
        );
        let p = profile(
            &system,
            "constant",
            r#"chitchat = "100%""#,
            &stage("steady", "5m", 1000, "10/s"),
        );
        simulate(&p, &SimOptions::default()).unwrap().summary
    };
    let throttled = |s: &Summary| {
        s.errors.get("gateway_account_limit").copied().unwrap_or(0) as f64 / s.counts.sent as f64
    };
    let ttft = |s: &Summary| s.latency_ms[&surge_record::Tag::from(surge_record::Metric::Ttft)].p50;
    let per_answer = run("per_answer");
    let per_chunk = run("per_chunk");
    assert_eq!(throttled(&per_answer), 0.0);
    let share = throttled(&per_chunk);
    assert!((share - (1.0 - 60.0 / 110.0)).abs() < 0.02, "{share}");
    let later = ttft(&per_chunk) - ttft(&per_answer);
    assert!((85.0..=95.0).contains(&later), "{later} ms");
}
