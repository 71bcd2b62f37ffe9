//! Users under slowness in the simulator, by known answers: they give up on answers slower
//! than `abandon_after` (the system still does the work) and send the text again once
//! after a failure (`retry_after_error`), counted as the load generator counts them.

mod common;

use common::{layers_off_except, profile, stage};
use surge_record::{RunDir, Tag};
use surge_sim::{SimOptions, simulate};

/// The seed's system with constant latencies: every answer takes exactly 1,940 ms
/// (tests/known_answer.rs), over five minutes of constant arrivals; a user may send up to
/// one message a second.
fn slow_system(abandon_after: &str, sessions: u64, rate: &str) -> surge_profile::Profile {
    let system = r#"orchestrator.cpu_per_message = "0"
orchestrator.autoscaling.enabled = false
burst.enabled = false
cache.enabled = false
semantic_cache.enabled = false
precomputed.enabled = false
intents.recommendation.output_tokens = "300"
gateway.per_user_rate = "60/min"
"#;
    let mut p = profile(
        system,
        "constant",
        r#"recommendation = "100%""#,
        &stage("hold", "5m", sessions, rate),
    );
    p.traffic.abandon_after = Some(abandon_after.parse().unwrap());
    p
}

#[test]
fn users_give_up_on_every_answer_slower_than_they_wait_and_the_system_still_works() {
    let root = tempfile::tempdir().unwrap();
    let out = simulate(
        &slow_system("1s", 100, "60/min"),
        &SimOptions {
            out_root: Some(root.path().to_path_buf()),
            hlog_interval: Some("1m".parse().unwrap()),
            ..SimOptions::default()
        },
    )
    .unwrap();
    let r = &out.report;
    assert!(r.sent >= 290, "{r}");
    assert_eq!(
        (r.abandoned, r.completed, r.errors_total()),
        (r.sent, 0, 0),
        "{r}"
    );
    // Not in the latencies, yet every call was made: the capacity is spent all the same.
    assert!(r.latency("all", "e2e").is_none(), "{r}");
    let llm = r.steps.iter().find(|s| s.step == "llm").unwrap();
    assert_eq!(llm.messages, r.sent, "{r}");
    let c = &out.summary.counts;
    assert_eq!((c.abandoned, c.retries), (r.sent, 0));
    assert!(
        !out.summary
            .latency_ms
            .contains_key(&Tag::from(surge_record::Metric::E2e))
    );
    let tl = RunDir::open(&out.run_dir.unwrap())
        .unwrap()
        .read_timeline()
        .unwrap();
    let abandoned: f64 = tl.column("abandoned").unwrap().iter().sum();
    assert_eq!(abandoned as u64, r.sent);
    assert!(r.to_string().contains("users gave up on"), "{r}");

    // Users patient enough wait for all of them.
    let r = simulate(&slow_system("3s", 100, "60/min"), &SimOptions::default())
        .unwrap()
        .report;
    assert_eq!((r.abandoned, r.completed), (0, r.sent), "{r}");
}

/// One user asks every 1.5 s and each answer takes 1.94 s: a patient user's next question
/// waits for the answer (late), one who gives up after 1 s is free by then and sends on
/// time, though the system is still answering the question given up on.
#[test]
fn a_user_who_gave_up_sends_the_next_message_on_time() {
    let run = |abandon_after| {
        simulate(
            &slow_system(abandon_after, 1, "40/min"),
            &SimOptions::default(),
        )
        .unwrap()
    };
    // The patient user falls further and further behind.
    let patient = run("3s");
    let c = &patient.summary.counts;
    assert!(c.late * 2 > c.sent, "{}", patient.report);
    let impatient = run("1s");
    let c = &impatient.summary.counts;
    assert_eq!((c.abandoned, c.late), (c.sent, 0), "{}", impatient.report);
}

/// Half the messages ask the model, whose quota serves nothing and fails the call; the
/// other half are answered by a template. A failed message is sent again once (and fails
/// again: not retried), so retries are half the original messages.
#[test]
fn users_retry_each_failure_once() {
    let p = 0.5;
    let system = format!(
        "{}bedrock.on_throttle = \"fail\"\nbedrock.models.sonnet.tokens_per_minute = 1\n",
        layers_off_except(&["bedrock"])
    );
    let mut profile = profile(
        &system,
        "poisson",
        r#"recommendation = "50%"
order_tracking = "50%""#,
        &stage("hold", "10m", 1000, "120/min"),
    );
    profile.traffic.retry_after_error = Some("exp(mean=5s)".parse().unwrap());
    let r = simulate(&profile, &SimOptions::default()).unwrap().report;
    let originals = r.sent - r.retries;
    let failed_originals = r.errors_total() - r.retries;
    assert!(originals > 1000, "{r}");
    assert_eq!(r.completed, originals - failed_originals, "{r}");
    // Every failed original is retried, but for the few whose retry would fall after the end.
    assert!(r.retries <= failed_originals, "{r}");
    assert!(failed_originals - r.retries <= 10, "{r}");
    // A binomial share of about 1,200 draws: its standard deviation is 1.4 points.
    let share = r.retries as f64 / originals as f64;
    assert!(
        (share - p).abs() < 0.05,
        "retries {share} of originals: {r}"
    );
    assert_eq!(r.abandoned, 0, "{r}");
}
