//! The quota pre-flight's arithmetic (means and Little's law, no events) against the
//! simulator's token buckets: a Bedrock quota a quarter above what the pre-flight says the
//! peak needs holds, a quota a quarter below it throttles.

mod common;

use common::{layers_off_except, profile, stage};
use surge_model::preflight::Preflight;
use surge_sim::{SimOptions, simulate};

fn with_quota(tokens_per_minute: Option<f64>) -> surge_profile::Profile {
    let mut system = layers_off_except(&["bedrock"]);
    system.push_str(
        r#"bedrock.tiering = false
prompt.context_tokens = "1000"
intents.recommendation.output_tokens = "300"
intents.recommendation.max_tokens = 500
bedrock.models.sonnet.ttft = "1s"
bedrock.models.sonnet.output_rate = "100/s"
bedrock.models.sonnet.output_burndown = 5.0
bedrock.models.sonnet.requests_per_minute = 100000
bedrock.models.sonnet.provisioned_units = 0
bedrock.on_throttle = "fail"
"#,
    );
    if let Some(tpm) = tokens_per_minute {
        system.push_str(&format!(
            "bedrock.models.sonnet.tokens_per_minute = {tpm:.0}\n"
        ));
    }
    let stages = stage("steady", "5m", 500, "600/min");
    profile(&system, "constant", r#"recommendation = "100%""#, &stages)
}

fn bedrock_throttles(p: &surge_profile::Profile) -> u64 {
    let out = simulate(p, &SimOptions::default()).unwrap();
    out.report.throttles["bedrock"]
}

#[test]
fn the_preflight_demand_is_where_the_simulator_starts_to_throttle() {
    let f = Preflight::of(&with_quota(None));
    let sonnet = f.models.iter().find(|m| m.name == "sonnet").unwrap();
    let needed = sonnet.tokens_per_minute + sonnet.held_in_flight;
    assert!(needed > 1e6, "burned-down output dominates: {needed}");

    let above = with_quota(Some(needed * 1.25));
    assert!(Preflight::of(&above).over().is_empty());
    assert_eq!(
        bedrock_throttles(&above),
        0,
        "a quota a quarter above the need holds"
    );

    let below = with_quota(Some(needed * 0.75));
    assert_eq!(
        Preflight::of(&below).over(),
        ["bedrock.models.sonnet.tokens_per_minute"]
    );
    let throttled = bedrock_throttles(&below);
    assert!(
        throttled > 100,
        "a quota a quarter below the need throttles: {throttled}"
    );
}

#[test]
fn prompt_cache_reads_do_not_count_against_the_quota() {
    // With every system prompt read from the cache, the quota the pre-flight sizes holds;
    // the same quota without prompt caching does not.
    // The system prompt is all that is charged: no context, answers of no tokens.
    let cached = |ratio: &str, tpm: Option<f64>| {
        let mut p = with_quota(tpm);
        let sys = &mut p.system;
        sys.prompt.cache_hit_ratio = ratio.parse().unwrap();
        sys.prompt.context_tokens = "0".parse().unwrap();
        let intent = sys.intents.get_mut("recommendation").unwrap();
        intent.output_tokens = "0".parse().unwrap();
        p
    };
    let f = Preflight::of(&cached("100%", None));
    let sonnet = f.models.iter().find(|m| m.name == "sonnet").unwrap();
    assert!(
        sonnet.cached_tokens > 50.0,
        "the prompt is cached: {sonnet:?}"
    );
    assert_eq!(
        sonnet.input_tokens, 0.0,
        "and nothing else is read: {sonnet:?}"
    );
    let needed = sonnet.tokens_per_minute + sonnet.held_in_flight;
    let quota = Some(needed * 1.1);
    assert_eq!(bedrock_throttles(&cached("100%", quota)), 0);
    let uncached = cached("0%", quota);
    assert!(!Preflight::of(&uncached).over().is_empty());
    assert!(
        bedrock_throttles(&uncached) > 100,
        "the prompt's tokens count without the cache"
    );
}

#[test]
fn the_context_grows_with_the_sessions_earlier_turns() {
    // Only the history is charged: a cached prompt, no other context, answers of no
    // tokens. M messages spread at random over S sessions carry M(M-1)/(2S) earlier
    // turns in all (the binomial count of pairs), 100 tokens each.
    let mut p = with_quota(Some(1e12));
    let sys = &mut p.system;
    sys.prompt.cache_hit_ratio = "100%".parse().unwrap();
    sys.prompt.context_tokens = "0".parse().unwrap();
    sys.prompt.history = Some(surge_profile::system::History {
        tokens_per_turn: "100".parse().unwrap(),
        turns: 255,
    });
    sys.bedrock.models.get_mut("sonnet").unwrap().ttft = "10ms".parse().unwrap();
    sys.intents.get_mut("recommendation").unwrap().output_tokens = "0".parse().unwrap();
    let root = tempfile::tempdir().unwrap();
    let opts = SimOptions {
        out_root: Some(root.path().to_path_buf()),
        ..SimOptions::default()
    };
    let out = simulate(&p, &opts).unwrap();
    let timeline =
        surge_record::Timeline::read(&out.run_dir.unwrap().join("timeline.csv")).unwrap();
    let charged: f64 = timeline
        .column("bedrock_tokens_per_min:sonnet")
        .unwrap()
        .iter()
        .sum();
    let (m, s) = (out.report.sent as f64, 500.0);
    let expected = 100.0 * m * (m - 1.0) / (2.0 * s);
    assert!(
        (charged / expected - 1.0).abs() < 0.05,
        "charged {charged}, expected {expected} for {m} messages over {s} sessions"
    );
}
