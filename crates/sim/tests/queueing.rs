//! The orchestrator queue against queueing theory, configured through ordinary profiles:
//! a fixed task count (min = max = initial), autoscaling off, every other layer off,
//! `cpu_per_message` as the service time and a stage with the arrival rate. Each check
//! runs independent replications and asks for the closed form inside the 95 % CI. A
//! Bedrock model's serving slots are checked the same way: calls of exponential length
//! queue for `max_concurrency` slots like customers of an M/M/c queue.

mod common;

use common::{layers_off_except, profile, stage};
use surge_profile::Profile;
use surge_sim::{Replications, SimOptions, replicate};

/// Erlang C: probability of waiting and mean wait in M/M/c.
fn erlang_c(c: u32, lambda: f64, mu: f64) -> (f64, f64) {
    let a = lambda / mu;
    let (mut term, mut sum) = (1.0, 0.0);
    for k in 0..c {
        sum += term;
        term *= a / f64::from(k + 1);
    }
    // `term` is now a^c / c!.
    let tail = term * f64::from(c) / (f64::from(c) - a);
    let p_wait = tail / (sum + tail);
    (p_wait, p_wait / (f64::from(c) * mu - lambda))
}

fn queue_profile(tasks: u32, service: &str, rate: &str, duration: &str) -> Profile {
    let system = format!(
        r#"{off}
orchestrator.autoscaling.enabled = false
orchestrator.initial_tasks = {tasks}
orchestrator.min_tasks = {tasks}
orchestrator.max_tasks = {tasks}
orchestrator.workers_per_task = 1
orchestrator.vcpu_per_task = 1
orchestrator.cpu_per_message = "{service}"
"#,
        off = layers_off_except(&["orchestrator"])
    );
    profile(
        &system,
        "poisson",
        r#"order_tracking = "100%""#,
        // Many users, each rarely busy (see surge_sim::sessions): arrivals stay Poisson.
        &stage("steady", duration, 200_000, rate),
    )
}

fn run(p: &Profile, warmup: &str, n: u32) -> Replications {
    let opts = SimOptions {
        warmup: warmup.parse().unwrap(),
        ..SimOptions::default()
    };
    replicate(p, &opts, n).unwrap()
}

fn check(r: &Replications, name: &str, expected: f64) {
    let e = r.figure(name).unwrap();
    println!(
        "{name}: simulated {:.5} ± {:.5}, theory {expected:.5}",
        e.mean, e.half_width
    );
    assert!(e.contains(expected), "{name}: {e:?} vs {expected}");
}

#[test]
fn erlang_c_reference_values() {
    let (p, wq) = erlang_c(10, 9.0, 1.0);
    assert!((p - 0.6687).abs() < 1e-4 && (wq - 0.6687).abs() < 1e-4);
    let (_, wq) = erlang_c(200, 180.0, 1.0);
    assert!((wq - 0.00472).abs() < 1e-5, "{wq}");
}

#[test]
fn m_m_10_matches_erlang_c_and_littles_law() {
    let (p_wait, wq) = erlang_c(10, 9.0, 1.0);
    let r = run(
        &queue_profile(10, "exp(mean=1s)", "9/s", "3000s"),
        "300s",
        8,
    );
    check(&r, "queue.wait_probability", p_wait);
    check(&r, "queue.mean_wait_s", wq);
    // Little's law on the same runs: Lq = λ Wq, replication by replication.
    let f = |n: &str| r.figure(n).unwrap().values.clone();
    for ((l, lambda), w) in f("queue.mean_length")
        .iter()
        .zip(f("queue.arrival_rate"))
        .zip(f("queue.mean_wait_s"))
    {
        assert!(
            (l - lambda * w).abs() <= 0.03 * l,
            "Lq {l} vs λWq {}",
            lambda * w
        );
    }
}

#[test]
fn m_m_200_matches_erlang_c() {
    let (_, wq) = erlang_c(200, 180.0, 1.0);
    let r = run(
        &queue_profile(200, "exp(mean=1s)", "180/s", "400s"),
        "50s",
        6,
    );
    check(&r, "queue.mean_wait_s", wq);
}

#[test]
fn m_m_1_matches_closed_form() {
    // ρ = 0.5: Wq = ρ / (μ − λ) = 1 s.
    let r = run(
        &queue_profile(1, "exp(mean=1s)", "0.5/s", "20000s"),
        "500s",
        8,
    );
    check(&r, "queue.mean_wait_s", 1.0);
}

#[test]
fn m_d_1_matches_pollaczek_khinchine() {
    // ρ = 0.5, deterministic service: Wq = ρ / (2 μ (1 − ρ)) = 0.5 s.
    let r = run(&queue_profile(1, "1s", "0.5/s", "20000s"), "500s", 8);
    check(&r, "queue.mean_wait_s", 0.5);
}

#[test]
fn model_slots_queue_calls_like_m_m_10() {
    // Ten slots, calls of exp(1 s) (TTFT only: no output tokens), 9 calls a second: the
    // mean TTFT is the Erlang C wait plus the call itself.
    let (_, wq) = erlang_c(10, 9.0, 1.0);
    let system = format!(
        r#"{off}
bedrock.tiering = false
bedrock.models.sonnet.max_concurrency = 10
bedrock.models.sonnet.ttft = "exp(mean=1s)"
bedrock.models.sonnet.tokens_per_minute = 1000000000000
bedrock.models.sonnet.requests_per_minute = 1000000000
intents.recommendation.output_tokens = "0"
"#,
        off = layers_off_except(&["bedrock"])
    );
    let p = profile(
        &system,
        "poisson",
        r#"recommendation = "100%""#,
        &stage("steady", "3000s", 200_000, "9/s"),
    );
    let r = run(&p, "300s", 8);
    check(&r, "ttft.mean_ms", 1000.0 * (1.0 + wq));
}

/// A run stopped early (a planner's hopeless candidate) divides its counts by the time it
/// ran, not by the schedule it did not finish: its rates are the rates it saw.
#[test]
fn an_early_stop_keeps_rates_per_second_of_the_time_run() {
    use surge_profile::metric::Threshold;
    // 8 workers, 9 messages a second of 1 s each: the queue grows by one a second, so e2e
    // passes 10 s within a few minutes of the hour.
    let p = queue_profile(8, "exp(mean=1s)", "9/s", "1h");
    let limit = Threshold::parse("e2e.p99".parse().unwrap(), "<= 10s").unwrap();
    let out = surge_sim::simulate(
        &p,
        &SimOptions {
            stop_when_failed: vec![limit],
            seed: Some(7),
            ..SimOptions::default()
        },
    )
    .unwrap();
    let why = out.report.stopped_early.as_deref().expect("stopped early");
    assert!(why.contains("e2e.p99"), "{why}");
    let ran = out.summary.duration_s;
    assert!(ran > 60.0 && ran < 1800.0, "ran {ran} s of 3,600");
    assert_eq!(out.report.duration_s, ran);
    // About 9 messages a second of the time run (Poisson: a few percent either way).
    let rate = out.summary.rates.sent_per_s;
    assert_eq!(rate, out.summary.counts.sent as f64 / ran);
    assert!((8.0..10.0).contains(&rate), "{rate}/s");
}

/// Without a gateway, a table or an early stop, the once-a-second tick is skipped through
/// quiet seconds (an M/M/1 run has as many seconds as customers). An early stop that can
/// never trigger makes every second's tick run: both runs must agree to the last figure,
/// events and connection-minutes included, with exponential times and with constant ones
/// that put answers on whole seconds, where a tick and an event share a nanosecond.
#[test]
fn skipping_quiet_seconds_changes_nothing() {
    use surge_profile::metric::Threshold;
    let never = Threshold::parse("e2e.p99".parse().unwrap(), "<= 10h").unwrap();
    let poisson = queue_profile(1, "exp(mean=1s)", "0.9/s", "2000s");
    let mut constant = queue_profile(1, "1s", "0.5/s", "2000s");
    constant.traffic.arrival = surge_profile::traffic::Arrival::Constant;
    for p in [poisson, constant] {
        let quiet = SimOptions {
            seed: Some(3),
            warmup: "120s".parse().unwrap(),
            hlog_interval: Some("60s".parse().unwrap()),
            ..SimOptions::default()
        };
        let every_second = SimOptions {
            stop_when_failed: vec![never.clone()],
            ..quiet.clone()
        };
        let skipped = surge_sim::simulate(&p, &quiet).unwrap();
        let ticked = surge_sim::simulate(&p, &every_second).unwrap();
        assert!(ticked.report.stopped_early.is_none());
        assert!(skipped.report.events > 2_000, "{}", skipped.report.events);
        assert!(skipped.report.sent > 900, "{}", skipped.report.sent);
        assert_eq!(skipped.report, ticked.report);
        assert_eq!(skipped.summary, ticked.summary);
    }
}
