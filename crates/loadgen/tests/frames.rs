//! Frames nobody asked for and closes by the server, in surge's default frame shape: a
//! greeting on every connection, idle connections closed by code, a keepalive that keeps
//! them open (the same against a third-party server: crates/cli/tests/gateway_frames.rs).

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use support::{Shape, errors, options, profile, run};
use surge_loadgen::testkit::{Script, TestServer};
use surge_record::Connections;

/// Two sessions, each with a message every 500 ms: idle longer than the server allows.
fn shape(extra: &str) -> Shape<'_> {
    Shape {
        sessions: 2,
        rate: "4/s",
        duration: "3s",
        reply_timeout: "1s",
        extra,
        ..Shape::default()
    }
}

fn script(code: u16) -> Script {
    Script {
        greeting: Some(r#"{"type":"greeting","text":"Welcome!"}"#.into()),
        idle_close: Some((Duration::from_millis(300), code)),
        ..Script::default()
    }
}

fn closed(c: &Connections, code: &str) -> u64 {
    c.closed_by_server.get(code).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_closes_with_1001_are_reconnects_and_greetings_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(script(1001)).await.unwrap();
    let p = profile(dir.path(), &shape(""));
    let o = run(options(p, server.url(), dir.path())).await;
    let s = &o.summary;
    let c = s
        .connections
        .as_ref()
        .expect("a measured run counts connections");
    let idle_closes = server.seen.idle_closes.load(Ordering::SeqCst);
    assert!(idle_closes >= 4, "{}", o.report);
    assert!(
        closed(c, "1001") >= 4 && closed(c, "1001") <= idle_closes,
        "{}",
        o.report
    );
    assert_eq!(s.errors_total(), 0, "{}", o.report);
    assert_eq!(c.opened, server.connections(), "{}", o.report);
    assert_eq!(c.opened, 2 + c.reconnects, "{}", o.report);
    assert!(c.reconnects >= 4, "{}", o.report);
    assert_eq!(s.counts.completed, s.counts.sent, "{}", o.report);
    assert!(
        s.counts.unsolicited >= c.opened - 2 && s.counts.unsolicited <= c.opened,
        "one greeting per connection: {}",
        o.report
    );
    assert!(o.report.contains("reconnects"), "{}", o.report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_close_codes_while_idle_are_dropped_connections() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(script(1011)).await.unwrap();
    let p = profile(dir.path(), &shape(""));
    let o = run(options(p, server.url(), dir.path())).await;
    let c = o.summary.connections.as_ref().unwrap();
    assert!(closed(c, "1011") >= 4, "{}", o.report);
    assert_eq!(errors(&o, "dropped"), closed(c, "1011"), "{}", o.report);
    assert_eq!(o.summary.counts.completed, o.summary.counts.sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_keepalive_keeps_idle_connections_open() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(script(1001)).await.unwrap();
    let extra = "[protocol]\nkeepalive = { every = \"100ms\", ping = true }\n";
    let p = profile(dir.path(), &shape(extra));
    let o = run(options(p, server.url(), dir.path())).await;
    let c = o.summary.connections.as_ref().unwrap();
    assert_eq!(
        server.seen.idle_closes.load(Ordering::SeqCst),
        0,
        "{}",
        o.report
    );
    assert!(c.closed_by_server.is_empty(), "{}", o.report);
    assert_eq!((c.opened, c.reconnects), (2, 0), "{}", o.report);
    assert!(c.keepalives >= 10, "{}", o.report);
    assert_eq!(c.keepalives, server.seen.pings.load(Ordering::SeqCst));
    assert_eq!(o.summary.errors_total(), 0, "{}", o.report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsolicited_error_makes_greetings_protocol_violations() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(Script {
        greeting: Some(r#"{"type":"greeting"}"#.into()),
        ..Script::default()
    })
    .await
    .unwrap();
    let extra = "[protocol]\nunsolicited = \"error\"\n";
    let p = profile(dir.path(), &shape(extra));
    let o = run(options(p, server.url(), dir.path())).await;
    assert_eq!(errors(&o, "protocol_violation"), 2, "{}", o.report);
    assert_eq!(o.summary.counts.unsolicited, 0);
    // Ignored, the greeting is neither.
    let extra = "[protocol]\nunsolicited = \"error\"\nignore = [ { pointer = \"/type\", equals = \"greeting\" } ]\n";
    let p = profile(dir.path(), &shape(extra));
    let o = run(options(p, server.url(), dir.path())).await;
    assert_eq!(errors(&o, "protocol_violation"), 0, "{}", o.report);
    assert_eq!(o.summary.counts.unsolicited, 0);
}
