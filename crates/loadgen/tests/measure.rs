//! Measurement: exact counts, intended-time latency, tags, the run directory.

mod support;

use std::time::Duration;

use support::{Shape, against, errors, options, profile, run};
use surge_loadgen::testkit::{Script, TestServer};
use surge_record::{Metric, RunDir, RunStatus, Tag};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_match_the_server_and_tags_follow_store_and_model() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(Script::default()).await.unwrap();
    let p = profile(dir.path(), &Shape::default());
    let o = run(options(p, server.url(), dir.path())).await;

    let c = o.summary.counts;
    assert_eq!(o.status, RunStatus::Complete, "{}", o.report);
    assert_eq!(server.messages(), c.sent, "{}", o.report);
    assert_eq!(c.completed, c.sent, "{}", o.report);
    assert_eq!(o.summary.errors_total(), 0, "{}", o.report);
    // 4 sessions × 5/s × 3 s, give or take the phase of the first message of each session.
    assert!((48..=64).contains(&c.sent), "{}", o.report);
    assert_eq!(c.sessions, 4);
    for tag in [
        "e2e",
        "ttft",
        "itl",
        "service",
        "connect",
        "lag",
        "ttft:manga_jp",
        "e2e:haiku",
    ] {
        let tag: Tag = tag.parse().unwrap();
        assert!(
            o.summary.latency_ms.contains_key(&tag),
            "{tag} missing: {}",
            o.report
        );
    }
    let e2e = o.summary.latency_ms[&Tag::from(Metric::E2e)];
    assert_eq!(e2e.count, c.completed);
    assert!(o.summary.extra.contains_key("tokens_per_s"), "{}", o.report);

    // The run directory reads back: every interval of the hlog, the timeline adds up.
    let rd = RunDir::open(&o.dir).unwrap();
    assert_eq!(rd.read_run_info().unwrap().status, RunStatus::Complete);
    let logs = rd.read_hlogs().unwrap();
    assert_eq!(logs.len(), 1);
    let e2e_in_log: u64 = logs[0]
        .intervals
        .iter()
        .filter(|i| i.tag.surge() == Some(&Tag::from(Metric::E2e)))
        .map(|i| i.histogram.len())
        .sum();
    assert_eq!(e2e_in_log, c.completed);
    let tl = rd.read_timeline().unwrap();
    let sent: f64 = tl.column("sent").unwrap().iter().sum();
    assert_eq!(sent as u64, c.sent);
    assert_eq!(rd.read_summary().unwrap().counts, c);
}

/// A server that stalls 2 s in the middle of a constant-rate run: the stall is in the
/// corrected (intended-time) percentiles and not in `service`, and the messages that fell
/// due during it are counted late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_shows_in_corrected_latency_not_in_service() {
    let (server, o, _dir) = against(
        Script {
            stall: Some((Duration::from_secs(3), Duration::from_secs(2))),
            tokens: 2,
            first_token_delay: Duration::from_millis(1),
            token_gap: Duration::from_millis(1),
            ..Script::default()
        },
        &Shape {
            sessions: 1,
            rate: "50/s",
            duration: "8s",
            reply_timeout: "5s",
            ..Shape::default()
        },
    )
    .await;
    let lat = &o.summary.latency_ms;
    let e2e = lat[&Tag::from(Metric::E2e)];
    let service = lat[&Tag::from(Metric::Service)];
    assert_eq!(server.messages(), o.summary.counts.sent);
    // ~100 of ~400 messages fell due during the stall; they waited up to 2 s.
    assert!(o.summary.counts.late >= 50, "{}", o.report);
    assert!(e2e.p99 >= 1000.0, "{}", o.report);
    assert!(e2e.max >= 1500.0, "{}", o.report);
    // Only the one message in flight when the stall began took long to serve.
    assert!(service.p99 < 500.0, "{}", o.report);
    assert!(service.max >= 1000.0, "{}", o.report);
    assert_eq!(errors(&o, "reply_timeout"), 0, "{}", o.report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poisson_arrivals_keep_the_mean_rate() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(Script::default()).await.unwrap();
    let p = profile(
        dir.path(),
        &Shape {
            arrival: "poisson",
            sessions: 10,
            rate: "100/s",
            duration: "4s",
            ..Shape::default()
        },
    );
    let o = run(options(p, server.url(), dir.path())).await;
    let sent = o.summary.counts.sent;
    assert_eq!(server.messages(), sent);
    // 400 expected; Poisson with sd 20, and a loaded machine: generous bounds.
    assert!((300..=500).contains(&sent), "{}", o.report);
}

/// Rates are per second of the schedule, as the simulator's are: the answers still
/// landing after its end are counted, but waiting for them does not stretch the window
/// (it used to, and `surge bench` then read the generator's sent/s a few percent low).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rates_are_per_second_of_the_schedule_not_of_its_drain() {
    let started = std::time::Instant::now();
    let (_server, o, _dir) = against(
        Script {
            first_token_delay: Duration::from_millis(1200),
            ..Script::default()
        },
        &Shape {
            sessions: 20,
            rate: "20/s",
            duration: "2s",
            reply_timeout: "5s",
            ..Shape::default()
        },
    )
    .await;
    // The run waited for the last answers, sent near the end and 1.2 s in coming…
    assert!(
        started.elapsed() >= Duration::from_millis(3000),
        "{}",
        o.report
    );
    let c = o.summary.counts;
    assert!(c.sent >= 20, "{}", o.report);
    assert_eq!(c.completed, c.sent, "{}", o.report);
    // …and its window is still the schedule's two seconds.
    assert_eq!(o.summary.duration_s, 2.0, "{}", o.report);
    assert_eq!(o.summary.rates.sent_per_s, c.sent as f64 / 2.0);
    assert_eq!(o.summary.rates.completed_per_s, c.completed as f64 / 2.0);
}

/// `--bind`: sessions connect from the listed source addresses, `k mod n`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_spread_over_the_bound_source_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(Script::default()).await.unwrap();
    let p = profile(
        dir.path(),
        &Shape {
            sessions: 6,
            duration: "2s",
            ..Shape::default()
        },
    );
    let mut opts = options(p, server.url(), dir.path());
    opts.bind = surge_loadgen::bind::parse_bind("127.0.0.2-127.0.0.4").unwrap();
    let o = run(opts).await;
    assert_eq!(o.summary.errors_total(), 0, "{}", o.report);
    let peers: Vec<String> = server
        .seen
        .peers
        .lock()
        .unwrap()
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(peers, ["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
}

/// A server that stalls past the end of the run: the run still ends on time, and what fell
/// due but could not be sent is counted as unsent rather than sent after the fact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_ends_on_time_and_counts_what_it_could_not_send() {
    let started = std::time::Instant::now();
    let (server, o, _dir) = against(
        Script {
            stall: Some((Duration::from_secs(1), Duration::from_secs(30))),
            ..Script::default()
        },
        &Shape {
            sessions: 1,
            rate: "10/s",
            duration: "3s",
            reply_timeout: "1500ms",
            ..Shape::default()
        },
    )
    .await;
    // 3 s, plus at most one reply timeout for the answer in flight at the end, plus slack.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let sent = o.summary.counts.sent;
    let unsent = o.summary.extra["unsent"].as_u64().unwrap();
    assert_eq!(server.messages(), sent, "{}", o.report);
    assert!(unsent >= 10, "{}", o.report);
    // Every message of the schedule is either sent or counted unsent (±1 for the phase).
    assert!((29..=31).contains(&(sent + unsent)), "{}", o.report);
}
