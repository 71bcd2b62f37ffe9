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

/// The same message judged as LLM-serving benchmarks judge it: 300 output tokens, one
/// every 4 ms after the first (250 tokens/s), and goodput by per-answer SLOs.
#[test]
fn tpot_tokens_and_goodput_of_one_streamed_message() {
    use surge_profile::goodput::Slos;
    use surge_record::{Metric, Tag};
    let ms = |n| Some(surge_profile::Duration::from_millis(n));
    let judged = |slos: Slos| {
        let mut p = one_message(true);
        p.goodput = slos;
        simulate(&p, &SimOptions::default()).unwrap().summary
    };
    // e2e 1,940 ms, TTFT 630 ms, TPOT 4 ms: good by all three.
    let s = judged(Slos {
        ttft: ms(700),
        e2e: ms(2000),
        tpot: ms(5),
    });
    let tpot = s.latency_ms[&Tag::from(Metric::Tpot)];
    assert_eq!(tpot.count, 1);
    assert!((tpot.p50 - 4.0).abs() < 0.01, "{tpot:?}");
    assert_eq!(s.tokens[&Tag::from(Metric::Tokens)].p50, 300.0);
    let g = s.goodput.as_ref().unwrap();
    assert_eq!((g.good, g.ratio), (1, 1.0), "{g:?}");
    assert_eq!(g.by_scope["model:sonnet"].answers, 1);
    // Each SLO alone can fail it.
    for slos in [
        Slos {
            ttft: ms(600),
            ..Slos::default()
        },
        Slos {
            e2e: ms(1900),
            ..Slos::default()
        },
        Slos {
            tpot: ms(3),
            ..Slos::default()
        },
    ] {
        let g = judged(slos).goodput.unwrap();
        assert_eq!((g.good, g.ratio), (0, 0.0), "{slos:?}");
    }
    // Without a [goodput] table there is no goodput.
    assert!(judged(Slos::default()).goodput.is_none());
}
