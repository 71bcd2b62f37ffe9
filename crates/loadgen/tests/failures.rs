//! Failures: every error class, reconnection after drops, samples in the run directory.

mod support;

use support::{Shape, against, closed_port, errors, options, profile, run};
use surge_loadgen::testkit::{Script, TestServer};
use surge_record::{RunDir, read_error_samples};

fn short<'a>() -> Shape<'a> {
    Shape {
        sessions: 2,
        rate: "4/s",
        duration: "2s",
        reply_timeout: "1s",
        ..Shape::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_level_classes_are_counted_and_sampled() {
    let (server, o, _dir) = against(
        Script {
            throttle_every: Some(5),
            server_error_every: Some(7),
            garbage_every: Some(9),
            silent_every: Some(11),
            drop_mid_answer_every: Some(13),
            ping: true,
            ..Script::default()
        },
        &Shape {
            sessions: 4,
            rate: "40/s",
            duration: "4s",
            reply_timeout: "500ms",
            ..Shape::default()
        },
    )
    .await;
    assert_eq!(server.messages(), o.summary.counts.sent, "{}", o.report);
    for class in [
        "throttled",
        "server_error",
        "protocol_violation",
        "reply_timeout",
        "closed_mid_answer",
    ] {
        assert!(errors(&o, class) > 0, "{class}: {}", o.report);
    }
    // Every message ends exactly one way (garbage is an extra frame, not an outcome).
    let c = o.summary.counts;
    let outcomes = c.completed
        + errors(&o, "throttled")
        + errors(&o, "server_error")
        + errors(&o, "reply_timeout")
        + errors(&o, "closed_mid_answer");
    assert_eq!(outcomes, c.sent, "{}", o.report);
    // Sessions reconnected after the drops and timeouts, and answered pings meanwhile.
    assert!(server.connections() > 4, "{}", o.report);
    assert!(server.seen.pongs.load(std::sync::atomic::Ordering::SeqCst) > 0);
    let rd = RunDir::open(&o.dir).unwrap();
    let (samples, _) = read_error_samples(&rd.list_error_samples().unwrap()[0]).unwrap();
    for class in ["throttled", "closed_mid_answer", "reply_timeout"] {
        assert!(
            samples.iter().any(|s| s.class == class),
            "{class}: {samples:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_reconnect_after_the_server_drops_them() {
    let (server, o, _dir) = against(
        Script {
            drop_after_answer_every: Some(4),
            ..Script::default()
        },
        &Shape {
            sessions: 2,
            rate: "20/s",
            duration: "3s",
            ..Shape::default()
        },
    )
    .await;
    let c = o.summary.counts;
    assert!(errors(&o, "dropped") >= 3, "{}", o.report);
    assert!(server.connections() >= 5, "{}", o.report);
    assert_eq!(server.messages(), c.sent);
    assert_eq!(c.completed, c.sent, "{}", o.report);
    assert!(
        c.sent >= 40,
        "reconnected sessions keep sending: {}",
        o.report
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_level_classes() {
    let dir = tempfile::tempdir().unwrap();
    let p = || profile(dir.path(), &short());

    // Nothing listening.
    let o = run(options(
        p(),
        format!("ws://127.0.0.1:{}/chat", closed_port()),
        dir.path(),
    ))
    .await;
    assert!(errors(&o, "refused") > 0, "{}", o.report);
    assert_eq!(o.summary.counts.sent, 0);

    // A listener that never answers the upgrade.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/chat", silent.local_addr().unwrap());
    let o = run(options(p(), url, dir.path())).await;
    assert!(errors(&o, "timeout") > 0, "{}", o.report);
    drop(silent);

    // TLS spoken to a plain server.
    let server = TestServer::start(Script::default()).await.unwrap();
    let url = format!("wss://{}/chat", server.addr);
    let o = run(options(p(), url, dir.path())).await;
    assert!(errors(&o, "tls") > 0, "{}", o.report);

    // The upgrade refused with 503: counted by status.
    let server = TestServer::start(Script {
        reject_upgrade: Some(503),
        ..Script::default()
    })
    .await
    .unwrap();
    let o = run(options(p(), server.url(), dir.path())).await;
    let n = errors(&o, "upgrade_rejected");
    assert!(n > 0, "{}", o.report);
    assert_eq!(
        o.summary.extra["upgrade_rejected_by_status"]["503"].as_u64(),
        Some(n),
        "{}",
        o.report
    );
    // Retries back off: two sessions over two seconds make a handful of attempts, not hundreds.
    assert!(n < 60, "{}", o.report);
}

/// A reply timeout by id keeps the connection: the late answer is recognised and dropped,
/// not taken for the next message's nor counted as a violation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_answers_after_a_reply_timeout_are_dropped_on_the_same_connection() {
    let (server, o, _dir) = against(
        Script {
            slow: Some((3, std::time::Duration::from_millis(900))),
            ..Script::default()
        },
        &Shape {
            sessions: 2,
            rate: "8/s",
            duration: "3s",
            reply_timeout: "300ms",
            ..Shape::default()
        },
    )
    .await;
    let c = o.summary.counts;
    assert!(errors(&o, "reply_timeout") > 0, "{}", o.report);
    assert_eq!(errors(&o, "protocol_violation"), 0, "{}", o.report);
    assert_eq!(
        c.completed + errors(&o, "reply_timeout"),
        c.sent,
        "{}",
        o.report
    );
    assert_eq!(server.connections(), 2, "{}", o.report);
    assert_eq!(server.messages(), c.sent);
}
