//! Traffic shapes against the scripted server: gamma bursts, a flash crowd, trace replay.
//!
//! Timing is checked one way only: a message is never sent before it is due, a connection
//! never admitted faster than `connect_rate`. A slow machine makes things later, never
//! earlier, so these bounds hold however busy CI is.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use support::{Shape, errors, options, profile, run};
use surge_loadgen::testkit::{Script, TestServer};
use surge_profile::burst::gaps_cv;
use tokio::time::Instant;

fn quick() -> Script {
    Script {
        tokens: 1,
        first_token_delay: Duration::from_millis(1),
        token_gap: Duration::from_millis(1),
        ..Script::default()
    }
}

/// Gamma(cv=3) arrivals are bursty across all sessions together: the gaps between the
/// messages the server receives, whichever session sent them, vary far more than a
/// Poisson stream's (CV 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gamma_arrivals_reach_the_server_in_bursts() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(quick()).await.unwrap();
    let p = profile(
        dir.path(),
        &Shape {
            arrival: "gamma(cv=3)",
            sessions: 50,
            rate: "200/s",
            duration: "5s",
            ..Shape::default()
        },
    );
    let o = run(options(p, server.url(), dir.path())).await;
    let c = o.summary.counts;
    assert_eq!(server.messages(), c.sent, "{}", o.report);
    assert_eq!(o.summary.errors_total(), 0, "{}", o.report);
    // 1,000 expected; a gamma(cv=3) count over 5 s has a standard deviation of ~95.
    assert!((600..=1_400).contains(&c.sent), "{}", o.report);
    let received = server.received();
    let first = received[0].at;
    let times: Vec<f64> = received
        .iter()
        .map(|r| (r.at - first).as_secs_f64())
        .collect();
    let cv = gaps_cv(&times);
    eprintln!("gamma(cv=3): {} messages, receive-gap cv {cv:.2}", c.sent);
    assert!(cv > 2.0, "the gaps' cv is {cv}");
    // Handed out among the sessions, not kept by a few.
    let sessions: BTreeSet<_> = received
        .iter()
        .filter_map(|r| r.message.as_ref().map(|m| m.session.clone()))
        .collect();
    assert!(sessions.len() >= 40, "{} sessions sent", sessions.len());
}

/// A step with `ramp = "0s"`: every session of the step wants to connect at its start,
/// and they are admitted no faster than `connect_rate`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flash_crowd_connects_at_the_step_paced_by_connect_rate() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(quick()).await.unwrap();
    let p = profile(
        dir.path(),
        &Shape {
            sessions: 2,
            rate: "2/s",
            duration: "2s",
            connect_rate: "20/s",
            extra: r#"[[traffic.stages]]
name = "release"
duration = "3s"
ramp = "0s"
sessions = 30
message_rate = "30/s"
"#,
            ..Shape::default()
        },
    );
    let before = Instant::now();
    let o = run(options(p, server.url(), dir.path())).await;
    assert_eq!(o.summary.errors_total(), 0, "{}", o.report);
    assert_eq!(server.connections(), 30, "{}", o.report);
    let mut at = server.connected_at();
    at.sort();
    // The base stage's two sessions, then the crowd, none before the release at 2 s and
    // each one a connect_rate slot (50 ms) after the one before.
    let release = before + Duration::from_secs(2);
    assert!(at[1] < release, "the base sessions connect first");
    for (j, t) in at[2..].iter().enumerate() {
        let earliest = release + Duration::from_millis(50) * j as u32;
        assert!(*t >= earliest, "crowd connection {j} came before its slot");
    }
}

/// One replayed trace message: (offset in seconds, session, intent).
type Row = (f64, String, &'static str);

/// 120 messages of 12 sessions over 6 s, written out of order; intents alternate.
fn trace_rows() -> Vec<Row> {
    let mut x: u64 = 12_345;
    (0..120)
        .map(|i| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let offset = (x >> 40) as f64 / (1u64 << 24) as f64 * 6.0;
            let intent = if i % 2 == 0 {
                "chitchat"
            } else {
                "order_tracking"
            };
            (
                (offset * 1000.0).round() / 1000.0,
                format!("u{}", i % 12),
                intent,
            )
        })
        .collect()
}

fn write_trace(dir: &Path, rows: &[Row], jsonl: bool) -> std::path::PathBuf {
    let (name, text) = if jsonl {
        let lines: String = rows
            .iter()
            .map(|(o, s, i)| {
                format!("{{\"offset\": {o}, \"session\": \"{s}\", \"intent\": \"{i}\"}}\n")
            })
            .collect();
        ("trace.jsonl", lines)
    } else {
        let lines: String = rows
            .iter()
            .map(|(o, s, i)| format!("{o},{s},{i}\n"))
            .collect();
        ("trace.csv", format!("offset,session,intent\n{lines}"))
    };
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Replays the trace and checks it was sent exactly: every message once, on its session's
/// own connection, with its intent, never before offset / speed.
async fn replay_exactly(jsonl: bool, speed: f64) {
    let dir = tempfile::tempdir().unwrap();
    let rows = trace_rows();
    let file = write_trace(dir.path(), &rows, jsonl);
    let server = TestServer::start(quick()).await.unwrap();
    let arrival = format!("{{ trace = \"{}\", speed = {speed} }}", file.display());
    let p = profile(
        dir.path(),
        &Shape {
            arrival: &arrival,
            // The stage only labels the time: its rate gives way to the trace.
            duration: "7s",
            rate: "1/s",
            ..Shape::default()
        },
    );
    let texts = |intent: &str| p.system.intents[intent].texts.clone();
    let (chitchat, orders) = (texts("chitchat"), texts("order_tracking"));
    let before = Instant::now();
    let o = run(options(p, server.url(), dir.path())).await;

    let c = o.summary.counts;
    assert_eq!(c.sent, 120, "{}", o.report);
    assert_eq!(server.messages(), 120, "{}", o.report);
    assert_eq!(c.completed, 120, "{}", o.report);
    assert_eq!(o.summary.errors_total(), 0, "{}", o.report);
    assert_eq!(errors(&o, "reply_timeout"), 0);

    // The trace by session, in time order.
    let mut want: BTreeMap<String, Vec<(f64, &str)>> = BTreeMap::new();
    for (offset, session, intent) in &rows {
        want.entry(session.clone())
            .or_default()
            .push((*offset, intent));
    }
    for v in want.values_mut() {
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let mut got: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for r in server.received() {
        let m = r.message.clone().expect("default-shape messages");
        got.entry(m.session.clone()).or_default().push((r, m));
    }
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "the trace's session values are the sessions sent"
    );
    let mut connections = BTreeSet::new();
    for (session, sent) in &got {
        let trace = &want[session];
        assert_eq!(sent.len(), trace.len(), "messages of {session}");
        let conn: BTreeSet<u64> = sent.iter().map(|(r, _)| r.connection).collect();
        assert_eq!(conn.len(), 1, "{session} used connections {conn:?}");
        assert!(connections.insert(conn.into_iter().next().unwrap()));
        for ((r, m), (offset, intent)) in sent.iter().zip(trace) {
            let due = before + Duration::from_secs_f64(offset / speed);
            assert!(
                r.at >= due,
                "{session}'s message due at {offset}/{speed} s came early"
            );
            let allowed = if *intent == "chitchat" {
                &chitchat
            } else {
                &orders
            };
            assert!(
                allowed.contains(&m.text),
                "{session}: {:?} is not {intent}",
                m.text
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_trace_is_replayed_exactly_at_double_speed() {
    replay_exactly(false, 2.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jsonl_trace_is_replayed_exactly() {
    replay_exactly(true, 1.0).await;
}
