//! The LLM-serving measures against a scripted server whose token timing is known: time
//! per output token, tokens per answer (the usage the done frame reports), and goodput by
//! the profile's `[goodput]` SLOs.

mod support;

use std::time::Duration;

use support::{Shape, options, profile, run};
use surge_loadgen::testkit::{Script, TestServer};
use surge_record::{Metric, RunDir, RunStatus, Tag};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpot_and_token_counts_follow_the_servers_token_timing() {
    let dir = tempfile::tempdir().unwrap();
    // Hidden from the generator: 11 token frames, 25 ms apart, after 20 ms.
    let (tokens, gap_ms) = (11u32, 25u64);
    let server = TestServer::start(Script {
        tokens,
        first_token_delay: Duration::from_millis(20),
        token_gap: Duration::from_millis(gap_ms),
        ..Script::default()
    })
    .await
    .unwrap();
    let shape = Shape {
        rate: "10/s",
        ..Shape::default()
    };
    let o = run(options(
        profile(dir.path(), &shape),
        server.url(),
        dir.path(),
    ))
    .await;
    assert_eq!(o.status, RunStatus::Complete, "{}", o.report);
    let s = &o.summary;
    assert!(s.counts.completed > 10, "{}", o.report);

    // Every answer reports 11 output tokens and the script's 10 input tokens.
    let counts = |m: Metric| s.tokens[&Tag::from(m)];
    let out = counts(Metric::Tokens);
    assert_eq!(
        (out.count, out.p50, out.max),
        (s.counts.completed, 11.0, 11.0)
    );
    assert_eq!(counts(Metric::InputTokens).p50, 10.0);
    // TPOT: the ten gaps after the first token, each at least the script's (a timer never
    // fires early); the mean of ten gaps stays near it.
    let tpot = s.latency_ms[&Tag::from(Metric::Tpot)];
    assert_eq!(tpot.count, s.counts.completed);
    assert!(tpot.p50 >= gap_ms as f64 * 0.99, "{tpot:?}");
    assert!(tpot.p50 < gap_ms as f64 * 2.0, "{tpot:?}");
    assert!(o.report.contains("TPOT p50"), "{}", o.report);

    // The timeline counts the output tokens of each interval.
    let tl = RunDir::open(&o.dir).unwrap().read_timeline().unwrap();
    let streamed: f64 = tl.column("tokens").unwrap().iter().sum();
    assert_eq!(streamed as u64, s.counts.completed * u64::from(tokens));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goodput_counts_the_answers_that_meet_every_slo() {
    let dir = tempfile::tempdir().unwrap();
    // Hidden: every 4th message the server answers 700 ms late, past the 300 ms SLO.
    let every = 4u64;
    let server = TestServer::start(Script {
        slow: Some((every, Duration::from_millis(700))),
        ..Script::default()
    })
    .await
    .unwrap();
    // Each session sends every 2 s, so a slow answer never delays its session's next message.
    let shape = Shape {
        sessions: 20,
        rate: "10/s",
        duration: "4s",
        extra: "[goodput]\ne2e = \"300ms\"\nttft = \"300ms\"\n\
                [thresholds]\n\"goodput.ratio\" = \"> 99%\"\n",
        ..Shape::default()
    };
    let o = run(options(
        profile(dir.path(), &shape),
        server.url(),
        dir.path(),
    ))
    .await;
    assert_eq!(o.status, RunStatus::Complete, "{}", o.report);
    let s = &o.summary;
    let g = s
        .goodput
        .as_ref()
        .expect("a [goodput] table asks for goodput");
    assert_eq!(s.counts.completed, s.counts.sent, "{}", o.report);
    // Exactly the slow answers miss: one in four of what the server answered.
    let slow = server.messages().div_ceil(every);
    assert_eq!(g.good, s.counts.sent - slow, "{}", o.report);
    assert!((g.ratio - 0.75).abs() < 0.05, "{}", o.report);
    assert_eq!(g.slo_ms["e2e"], 300.0);
    let store = g.by_scope["store:manga_jp"];
    assert_eq!((store.good, store.answers), (g.good, s.counts.completed));
    assert!(g.by_scope.contains_key("model:haiku"), "{:?}", g.by_scope);
    // The threshold judges it; the timeline adds up to the summary.
    assert!(!s.passed(), "{}", o.report);
    assert!(o.report.contains("goodput"), "{}", o.report);
    let tl = RunDir::open(&o.dir).unwrap().read_timeline().unwrap();
    let good: f64 = tl.column("good").unwrap().iter().sum();
    assert_eq!(good as u64, g.good);
}
