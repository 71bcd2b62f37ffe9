//! The seed's Q35 cost arithmetic, from first principles, including where the seed errs.

use std::path::Path;

use surge_cost::{Optimizations, Usage, chargeback, optimizations, price, seed_notes};
use surge_profile::Profile;

fn profile(name: &str) -> Profile {
    Profile::load(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../profiles")
            .join(name),
    )
    .unwrap()
}

fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
    (actual - expected).abs() <= tolerance
}

#[test]
fn llm_line_of_100k_conversations_a_day() {
    let p = profile("cost-100k.toml");
    let usage = Usage::analytic(&p, Optimizations::default()).unwrap();
    let llm = usage.llm_total();
    assert!(close(llm.calls, 200_000.0, 1e-6), "{}", llm.calls);
    assert!(close(llm.input_tokens, 300e6, 1.0), "{}", llm.input_tokens);
    assert!(close(llm.output_tokens, 60e6, 1.0), "{}", llm.output_tokens);
    let table = price(&usage, &p.system, 30.0);
    assert!(
        close(table.llm_per_day, 1_800.0, 1e-6),
        "{}",
        table.llm_per_day
    );
    assert!(close(table.llm_per_day * 30.0, 54_000.0, 1e-3));
}

#[test]
fn total_is_in_the_seeds_range_and_llm_dominates() {
    let p = profile("cost-100k.toml");
    let usage = Usage::analytic(&p, Optimizations::default()).unwrap();
    let table = price(&usage, &p.system, 30.0);
    assert!(
        (55_000.0..=75_000.0).contains(&table.total_per_month),
        "{}",
        table.total_per_month
    );
    let line = |name: &str| {
        table
            .lines
            .iter()
            .find(|l| l.component == name)
            .unwrap_or_else(|| panic!("no line {name}"))
            .per_month
    };
    // Q35: 10 tasks × 1 vCPU × $0.04048 × 24 h ≈ $10/day (plus 2 GB per task the seed omits).
    assert!(close(
        line("ECS Fargate orchestrator") / 30.0,
        9.715 + 2.134,
        0.01
    ));
    // Q35: 500K WCU/day at $1.25 per million ≈ $0.63/day (plus reads).
    assert!(close(line("DynamoDB memory") / 30.0, 0.625 + 0.125, 1e-6));
    // Q35: 2 OCU × $0.24 × 24 × 30 ≈ $346/month.
    assert!(close(line("OpenSearch Serverless"), 345.6, 1e-6));
    assert!(close(line("ElastiCache Redis"), 200.0, 1e-9));
    // Q35: 100K connections × 5 min × $0.000001 = $0.50/day (plus 1M messages at $1/M).
    assert!(close(line("API Gateway WebSocket") / 30.0, 0.5 + 1.0, 1e-6));
    assert!(close(line("Lambda burst workers"), 50.0, 1e-9));
    assert!(close(line("cloudwatch_kinesis_sagemaker"), 500.0, 1e-9));
    // The LLM is ~97% of the total, not the seed's "~75%".
    assert!(
        table.llm_share > 0.95 && table.llm_share < 0.99,
        "{}",
        table.llm_share
    );
    // ≈ $0.02 per conversation, not the seed's $0.55.
    assert!(
        close(table.per_conversation, 0.0185, 0.0005),
        "{}",
        table.per_conversation
    );
    let notes = seed_notes(&optimizations(&p).unwrap(), p.cost.as_ref().unwrap());
    assert_eq!(notes.len(), 3, "{notes:?}");
    assert!(notes[0].computed.contains("$810/day"), "{notes:?}");
}

#[test]
fn optimizations_stack_with_the_seeds_corrected_figures() {
    let p = profile("cost-100k.toml");
    let steps = optimizations(&p).unwrap();
    let llm: Vec<f64> = steps.iter().map(|s| s.table.llm_per_day).collect();
    assert!(close(llm[0], 1_800.0, 1e-6));
    // Tiering 60% of 200,000 calls to Haiku: $90 + $720 = $810/day (the seed says ~$720).
    assert!(close(llm[1], 810.0, 1e-6), "{}", llm[1]);
    // Semantic caching avoids 30% of the remaining calls.
    assert!(close(llm[2], 810.0 * 0.7, 1e-6), "{}", llm[2]);
    // MAX_TOKENS of 300–500 do not bind on Q35's 300-token answers: no saving.
    assert!(close(llm[3], llm[2], 1e-9), "{}", llm[3]);
    // 20% provisioned-throughput discount.
    assert!(close(llm[4], llm[3] * 0.8, 1e-6), "{}", llm[4]);
    assert!(close(steps[1].llm_saving_per_day, 990.0, 1e-6));
    assert!(
        steps
            .windows(2)
            .all(|w| w[1].table.total_per_day <= w[0].table.total_per_day)
    );
}

#[test]
fn semantic_caching_alone_saves_what_the_seed_says() {
    // Q35: 60,000 calls avoided × ~$0.009/call = $540/day, against the unoptimized cost.
    let p = profile("cost-100k.toml");
    let only_cache = Optimizations {
        semantic_cache: true,
        ..Optimizations::default()
    };
    let base = price(
        &Usage::analytic(&p, Optimizations::default()).unwrap(),
        &p.system,
        30.0,
    );
    let cached = price(&Usage::analytic(&p, only_cache).unwrap(), &p.system, 30.0);
    assert!(close(base.llm_per_day - cached.llm_per_day, 540.0, 1e-6));
}

#[test]
fn length_limits_cut_only_answers_longer_than_the_cap() {
    let p = profile("cost-100k.toml");
    let long = p
        .system
        .intents
        .get("recommendation")
        .unwrap()
        .output_tokens
        .clone();
    assert!(long.is_constant());
    let mut p = p;
    for intent in p.system.intents.values_mut() {
        intent.output_tokens = "uniform(0, 1000)".parse().unwrap();
        intent.max_tokens = 500;
    }
    let limited = Optimizations {
        length_limits: true,
        ..Optimizations::default()
    };
    let free = Usage::analytic(&p, Optimizations::default())
        .unwrap()
        .llm_total();
    let capped = Usage::analytic(&p, limited).unwrap().llm_total();
    // E[X] = 500; E[min(X, 500)] = 375 for X ~ U(0, 1000).
    assert!(close(free.output_tokens / free.calls, 500.0, 1e-6));
    assert!(close(capped.output_tokens / capped.calls, 375.0, 0.5));
}

#[test]
fn hundred_times_the_traffic() {
    let p = profile("cost-10m.toml");
    let usage = Usage::analytic(&p, Optimizations::default()).unwrap();
    let table = price(&usage, &p.system, 30.0);
    assert!(
        close(table.llm_per_day * 30.0, 5.4e6, 1.0),
        "{}",
        table.llm_per_day
    );
    // 50 M messages a day need more than the 10-task minimum at 60% CPU.
    let ecs = table
        .lines
        .iter()
        .find(|l| l.component == "ECS Fargate orchestrator")
        .unwrap();
    assert!(ecs.per_day > 10.0 * 24.0 * 0.04048 * 2.0, "{}", ecs.per_day);
}

#[test]
fn chargeback_adds_up_to_the_total() {
    let p = profile("cost-100k.toml");
    let usage = Usage::analytic(&p, Optimizations::default()).unwrap();
    let table = price(&usage, &p.system, 30.0);
    let bills = chargeback(&usage, &table, &p.system);
    assert_eq!(bills.len(), 3);
    let sum: f64 = bills.iter().map(|b| b.total_per_month).sum();
    assert!(
        close(sum, table.total_per_month, 1e-6),
        "{sum} vs {}",
        table.total_per_month
    );
    let shares: f64 = bills.iter().map(|b| b.message_share).sum();
    assert!(close(shares, 1.0, 1e-12));
    // manga_jp has 60% of the traffic and so 60% of the LLM bill (same prompt size here).
    let jp = bills.iter().find(|b| b.store == "manga_jp").unwrap();
    assert!(close(jp.llm_per_month, 0.6 * 54_000.0, 1e-3));
}

#[test]
fn store_prompts_feed_input_tokens() {
    // With the Q27 templates, each store's rendered prompt adds its own input tokens.
    let p = profile("stores.toml");
    let sys = &p.system;
    let jp = sys.prompt_tokens(&sys.stores["manga_jp"]);
    let us = sys.prompt_tokens(&sys.stores["comics_us"]);
    assert!(jp > 50.0 && us > 50.0);
    assert!((jp - us).abs() > 0.1, "stores render different prompts");
}
#[test]
fn prompt_cache_reads_are_priced_at_the_cache_price() {
    // cost-100k: 200,000 calls a day of 1,500 input tokens, here 1,000 of them a system
    // prompt (4,000 characters at 4 a token) and 500 of context.
    let mut p = profile("cost-100k.toml");
    p.system.prompt.template = "x".repeat(4_000);
    p.system.prompt.chars_per_token = 4.0;
    p.system.prompt.context_tokens = "500".parse().unwrap();
    let base = Usage::analytic(&p, Optimizations::default()).unwrap();
    p.system.prompt.cache_hit_ratio = "100%".parse().unwrap();
    for m in p.system.bedrock.models.values_mut() {
        m.cache_read_price_per_million = Some("$0".parse().unwrap());
    }
    let cached = Usage::analytic(&p, Optimizations::default()).unwrap();
    let (b, c) = (base.llm_total(), cached.llm_total());
    assert!(
        close(c.cache_read_tokens, 200_000.0 * 1_000.0, 1e-3),
        "{c:?}"
    );
    assert!(close(
        c.input_tokens + c.cache_read_tokens,
        b.input_tokens,
        1e-3
    ));
    // Free cache reads save exactly the input price of the cached tokens.
    let saved =
        price(&base, &p.system, 30.0).llm_per_day - price(&cached, &p.system, 30.0).llm_per_day;
    let input_price: f64 = p.system.bedrock.models["sonnet"]
        .input_price_per_million
        .dollars();
    let days = base.days;
    assert!(
        close(saved, c.cache_read_tokens / 1e6 * input_price / days, 1e-6),
        "saved {saved}"
    );
}
