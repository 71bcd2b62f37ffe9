//! Q26's latency budget, one message, no load: every layer deterministic.

mod common;

use common::{profile, stage};
use surge_sim::{SimOptions, simulate};

/// The seed's system with constant latencies, caches off and 300 output tokens:
/// auth 50 + classifier 20 + memory 10 + fan-out 200 + LLM (300 ms + 300 / 250 s)
/// + guardrails 100 + format 10 + network 50.
fn one_message(streaming: bool) -> surge_profile::Profile {
    let system = format!(
        r#"orchestrator.cpu_per_message = "0"
orchestrator.autoscaling.enabled = false
burst.enabled = false
cache.enabled = false
semantic_cache.enabled = false
precomputed.enabled = false
bedrock.streaming = {streaming}
intents.recommendation.output_tokens = "300"
"#
    );
    // Constant arrivals at 1/min over 90 s: exactly one message, at 60 s.
    profile(
        &system,
        "constant",
        r#"recommendation = "100%""#,
        &stage("one", "90s", 1, "1/min"),
    )
}

#[test]
fn one_message_takes_1940_ms() {
    let out = simulate(&one_message(false), &SimOptions::default()).unwrap();
    let r = &out.report;
    assert_eq!((r.sent, r.completed, r.errors_total()), (1, 1, 0), "{r}");
    assert_eq!(r.mean_e2e_ms, 1940.0, "{r}");
    assert_eq!(
        r.mean_ttft_ms, 1940.0,
        "without streaming the first token comes with the last"
    );
    let e2e = r.latency("all", "e2e").unwrap();
    assert!(
        (e2e.p50 - 1940.0).abs() <= 1940.0 * 1e-3,
        "HDR precision: {e2e:?}"
    );
    let per_model = r.latency("model:sonnet", "e2e").unwrap();
    assert_eq!(per_model.count, 1);
    let step = |name: &str| r.steps.iter().find(|s| s.step == name).unwrap().mean_ms;
    for (name, ms) in [
        ("auth", 50.0),
        ("classifier", 20.0),
        ("memory", 10.0),
        ("fan_out", 200.0),
        ("llm", 1500.0),
        ("guardrails", 100.0),
        ("format", 10.0),
        ("network", 50.0),
    ] {
        assert_eq!(step(name), ms, "{name}");
    }
}

#[test]
fn streaming_brings_the_first_token_forward() {
    let r = simulate(&one_message(true), &SimOptions::default())
        .unwrap()
        .report;
    assert_eq!(r.mean_e2e_ms, 1940.0);
    // auth 50 + classifier 20 + memory 10 + fan-out 200 + TTFT 300 + network 50.
    assert_eq!(r.mean_ttft_ms, 630.0, "{r}");
    let itl = r.latency("all", "itl").unwrap();
    assert_eq!(itl.count, 299);
    assert!((itl.p50 - 4.0).abs() < 0.01, "{itl:?}");
}
