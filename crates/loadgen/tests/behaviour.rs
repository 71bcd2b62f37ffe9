//! Users under slowness: they give up on slow answers (`abandon_after`) and send the text
//! again after an error (`retry_after_error`), against the scripted server.

mod support;

use std::time::Duration;

use support::{Shape, errors, options, profile, run};
use surge_loadgen::RunOutcome;
use surge_loadgen::testkit::{Script, TestServer};
use surge_profile::Traffic;
use surge_record::{Metric, RunDir, Tag};

/// Four sessions for 3 s at `rate` against `script`, the users' behaviour set by `users`;
/// the run directory lives as long as the `TempDir`.
async fn run_users(
    script: Script,
    rate: &str,
    users: impl FnOnce(&mut Traffic),
) -> (RunOutcome, TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(script).await.unwrap();
    let mut p = profile(
        dir.path(),
        &Shape {
            sessions: 4,
            rate,
            duration: "3s",
            reply_timeout: "2s",
            ..Shape::default()
        },
    );
    users(&mut p.traffic);
    let o = run(options(p, server.url(), dir.path())).await;
    (o, server, dir)
}

/// The sum of a timeline column of the run.
fn column_total(o: &RunOutcome, column: &str) -> u64 {
    let tl = RunDir::open(&o.dir).unwrap().read_timeline().unwrap();
    tl.column(column).unwrap().iter().sum::<f64>() as u64
}

/// Every third answer takes 600 ms longer than a user waits (300 ms): those are counted
/// abandoned, not errors and not in the latencies, and their late frames are dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_give_up_on_answers_slower_than_abandon_after() {
    let (o, server, _dir) = run_users(
        Script {
            slow: Some((3, Duration::from_millis(600))),
            ..Script::default()
        },
        "8/s",
        |t| t.abandon_after = Some("300ms".parse().unwrap()),
    )
    .await;
    let c = o.summary.counts;
    assert_eq!(server.messages(), c.sent, "{}", o.report);
    assert!(c.abandoned > 0, "{}", o.report);
    // Each message ends one way; giving up is not an error, and late frames of an
    // abandoned answer are recognised by id, neither violations nor unsolicited.
    assert_eq!(c.completed + c.abandoned, c.sent, "{}", o.report);
    assert_eq!(o.summary.errors_total(), 0, "{}", o.report);
    assert_eq!(c.unsolicited, 0, "{}", o.report);
    assert_eq!(errors(&o, "protocol_violation"), 0, "{}", o.report);
    // Only completed answers are in the latencies, and none took longer than the user
    // waited (from the intended time).
    let e2e = o.summary.latency_ms[&Tag::from(Metric::E2e)];
    assert_eq!(e2e.count, c.completed, "{}", o.report);
    assert!(e2e.max <= 300.0 + 1.0, "{}", o.report);
    assert!(o.report.contains("users gave up on"), "{}", o.report);
    assert_eq!(column_total(&o, "abandoned"), c.abandoned);
    let summary = RunDir::open(&o.dir).unwrap().read_summary().unwrap();
    assert_eq!(summary.counts, c);
}

/// Every fourth message gets an error frame and every sixth a throttle; users send the
/// same text again 300 ms later, once: the retries are extra messages, at most one per
/// failed original, sent no earlier than the delay after the failure (read from the
/// server's log, not a clock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_retry_after_an_error_or_a_throttle_once_after_the_delay() {
    let (error_every, throttle_every) = (4, 6);
    let delay = Duration::from_millis(300);
    let (o, server, _dir) = run_users(
        Script {
            server_error_every: Some(error_every),
            throttle_every: Some(throttle_every),
            ..Script::default()
        },
        "20/s",
        |t| t.retry_after_error = Some("300ms".parse().unwrap()),
    )
    .await;
    let c = o.summary.counts;
    let failed = errors(&o, "server_error") + errors(&o, "throttled");
    assert_eq!(server.messages(), c.sent, "{}", o.report);
    assert_eq!(c.completed + failed, c.sent, "{}", o.report);
    let log = server.received();
    let fails = |n: u64| n % error_every == 0 || n % throttle_every == 0;
    let failures: Vec<_> = log.iter().filter(|r| fails(r.n)).collect();
    assert_eq!(failed, failures.len() as u64, "{}", o.report);
    assert!(errors(&o, "throttled") > 0, "{}", o.report);
    // Every failure of an original is retried unless its retry would fall after the end;
    // a failed retry is not retried. With a third failing and 300 ms of a 3 s run lost at
    // the end, retries lie between half the failures and all of them.
    assert!(c.retries > 0 && c.retries <= failed, "{}", o.report);
    assert!(2 * c.retries >= failed, "{}", o.report);
    // Each retry repeats a failed message of its session, 300 ms or more after it.
    let repeated = failures
        .iter()
        .filter(|f| {
            let m = f.message.as_ref().unwrap();
            log.iter().any(|r| {
                let r_m = r.message.as_ref().unwrap();
                r.n > f.n
                    && r.at >= f.at + delay
                    && r_m.session == m.session
                    && r_m.text == m.text
                    && r_m.store == m.store
            })
        })
        .count() as u64;
    assert!(
        repeated >= c.retries,
        "{repeated} < {}: {}",
        c.retries,
        o.report
    );
    assert_eq!(column_total(&o, "retries"), c.retries);
}
