//! Layer behaviour under steps of traffic: ECS target tracking and DynamoDB on-demand.

mod common;

use common::{layers_off_except, profile, stage};
use surge_record::Timeline;
use surge_sim::{SimOptions, simulate};

/// Seed's orchestrator (10..200 tasks, 60 % target, 1–2 min task start) with every other
/// layer off. Messages cost 3 s of CPU at 1/100 of Q19's rates: 25 % CPU at baseline, and
/// the 50× step needs 125 busy workers, so even 200 tasks stay above the 60 % target
/// until traffic drops.
#[test]
fn a_50x_step_scales_out_after_three_minutes_and_in_after_fifteen() {
    let system = format!(
        "{}\norchestrator.cpu_per_message = \"exp(mean=3s)\"\n",
        layers_off_except(&["orchestrator"])
    );
    let stages = [
        stage("baseline", "10m", 500, "50/min"),
        stage("spike", "30m", 25_000, "2500/min"),
        stage("after", "30m", 500, "50/min"),
    ]
    .concat();
    let p = profile(&system, "poisson", r#"order_tracking = "100%""#, &stages);
    let root = tempfile::tempdir().unwrap();
    let opts = SimOptions {
        out_root: Some(root.path().to_path_buf()),
        ..SimOptions::default()
    };
    let out = simulate(&p, &opts).unwrap();
    let t = Timeline::read(&out.run_dir.unwrap().join("timeline.csv")).unwrap();
    let minute = |i: usize| t.column("t_s").unwrap()[i] / 60.0;
    let running = t.column("ecs_tasks_running").unwrap();
    let starting = t.column("ecs_tasks_starting").unwrap();
    let cpu = t.column("ecs_cpu").unwrap();
    println!("{}", out.report);
    for i in 0..t.len() {
        println!(
            "{:>4.0} min: {:>5.0} running {:>4.0} starting cpu {:.2}",
            minute(i),
            running[i],
            starting[i],
            cpu[i]
        );
    }
    let first = |pred: &dyn Fn(usize) -> bool| (0..t.len()).find(|&i| pred(i)).map(minute).unwrap();
    // Spike at minute 10; datapoints at 11, 12, 13 are above target.
    let out_at = first(&|i| starting[i] > 0.0);
    assert!((12.0..=14.0).contains(&out_at), "scale-out at {out_at} min");
    let joined = first(&|i| running[i] > 10.0);
    assert!(
        joined - out_at >= 1.0 && joined - out_at <= 2.0,
        "tasks joined at {joined} min"
    );
    assert_eq!(
        running.iter().cloned().fold(0.0, f64::max),
        200.0,
        "capped at max_tasks"
    );
    // Traffic drops at minute 40: no scale-in before 15 low datapoints.
    let in_at = first(&|i| minute(i) > 40.0 && running[i] < 200.0);
    assert!(in_at >= 55.0, "scale-in at {in_at} min");
    assert!(running[t.len() - 1] < 200.0);
}

/// Memory only, constant arrivals: base load 10 msg/s = 100 WRU/s and 30 RRU/s, which
/// is also the table's previous peak (instant capacity twice that).
fn dynamodb(factor: u32, warm: bool) -> surge_sim::SimReport {
    let warm = if warm {
        "memory.warm_writes = \"6000/s\"\nmemory.warm_reads = \"2000/s\""
    } else {
        ""
    };
    let system = format!(
        "{}\nmemory.previous_peak_writes = \"100/s\"\nmemory.previous_peak_reads = \"30/s\"\n{warm}\n",
        layers_off_except(&["memory"])
    );
    let stages = [
        stage("baseline", "1m", 100, "10/s"),
        stage("step", "1m", 100, &format!("{factor}/s")),
    ]
    .concat();
    let p = profile(&system, "constant", r#"order_tracking = "100%""#, &stages);
    simulate(&p, &SimOptions::default()).unwrap().report
}

#[test]
fn dynamodb_absorbs_1_9x_but_throttles_50x_unless_prewarmed() {
    let throttled =
        |r: &surge_sim::SimReport| r.throttles["dynamodb_reads"] + r.throttles["dynamodb_writes"];
    let small = dynamodb(19, false);
    // 19/10 = 1.9×.
    assert_eq!(throttled(&small), 0, "{small}");
    let big = dynamodb(50, false);
    assert!(throttled(&big) > 1000, "{big}");
    assert!(big.errors["dynamodb_read"] > 0);
    let warmed = dynamodb(50, true);
    assert_eq!(throttled(&warmed), 0, "{warmed}");
}

/// Bedrock alone, a sonnet quota of 20 calls a minute (a bucket of 20, refilled at 20 a
/// minute) against 60: what happens to the other ~20 is the `on_throttle` policy.
fn bedrock(policy: &str) -> surge_sim::SimReport {
    let system = format!(
        "{}\nbedrock.on_throttle = \"{policy}\"\nbedrock.max_retries = 2\nbedrock.models.sonnet.requests_per_minute = 20\n",
        layers_off_except(&["bedrock"])
    );
    let p = profile(
        &system,
        "constant",
        r#"recommendation = "100%""#,
        &stage("a", "1m", 10, "60/min"),
    );
    simulate(&p, &SimOptions::default()).unwrap().report
}

#[test]
fn bedrock_throttles_follow_the_policy() {
    let fail = bedrock("fail");
    let refused = fail.errors["bedrock_throttled"];
    assert!((19..=21).contains(&refused), "{fail}");
    assert_eq!(fail.completed + refused, fail.sent);
    let fallback = bedrock("fallback");
    assert_eq!(fallback.errors["bedrock_throttled"], 0, "{fallback}");
    let haiku = fallback
        .peaks
        .bedrock
        .iter()
        .find(|m| m.model == "haiku")
        .unwrap();
    assert_eq!(haiku.calls, refused, "{fallback}");
    // Two retries within ~300 ms rarely meet the next token (one every 3 s); each
    // failed turn was throttled three times.
    let retry = bedrock("retry");
    let failed = retry.errors["bedrock_throttled"];
    assert!(failed > 0 && failed <= refused, "{retry}");
    assert!(retry.throttles["bedrock"] >= 3 * failed);
}

/// Two tasks of one worker, 1 s of CPU per message, 10 messages a second: the queue
/// passes its threshold at once and Lambda takes the overflow, cold, up to its cap.
#[test]
fn lambda_takes_the_overflow_up_to_its_cap() {
    let system = format!(
        r#"{}
orchestrator.autoscaling.enabled = false
orchestrator.initial_tasks = 2
orchestrator.min_tasks = 2
orchestrator.max_tasks = 2
orchestrator.cpu_per_message = "1s"
burst.queue_threshold = 5
burst.spike_factor = 1
burst.service = "2s"
burst.cold_start = "300ms"
"#,
        layers_off_except(&["orchestrator", "burst"])
    );
    let p = profile(
        &system,
        "constant",
        r#"order_tracking = "100%""#,
        &stage("a", "1m", 1000, "10/s"),
    );
    let r = simulate(&p, &SimOptions::default()).unwrap().report;
    // Cap: min(10 × spike_factor, 1000) = 10 environments of 2.3 s each.
    assert_eq!(r.peaks.lambda_concurrency, 10, "{r}");
    assert_eq!(
        r.peaks.lambda_cold_starts, 10,
        "each environment starts cold once"
    );
    assert!(r.peaks.lambda_throttles > 0);
    let burst = r.steps.iter().find(|s| s.step == "lambda_burst").unwrap();
    assert!(burst.messages > 200, "{r}");
    assert!(r.peaks.orchestrator_queue > 5);
}

/// One user, a message due every second (at 1 s, 2 s, …, 9 s), answers that take 1.5 s:
/// each message waits for the previous answer, so message i (due at i + 1 s) is sent at
/// 1 + 1.5 i s and answered 1.5 s later — e2e = 1.5 + 0.5 i s, measured from the intended
/// time — and every message but the first is late.
#[test]
fn a_user_sends_one_message_at_a_time() {
    let system = format!(
        r#"{}
orchestrator.autoscaling.enabled = false
orchestrator.initial_tasks = 1
orchestrator.min_tasks = 1
orchestrator.max_tasks = 1
orchestrator.cpu_per_message = "1500ms"
"#,
        layers_off_except(&["orchestrator"])
    );
    let p = profile(
        &system,
        "constant",
        r#"order_tracking = "100%""#,
        &stage("a", "10s", 1, "1/s"),
    );
    let out = simulate(&p, &SimOptions::default()).unwrap();
    let counts = out.summary.counts;
    assert_eq!((counts.sent, counts.completed), (9, 9), "{}", out.report);
    assert_eq!(counts.late, 8);
    let e2e = &out.summary.latency_ms[&surge_record::Tag::from(surge_record::Metric::E2e)];
    // i = 0..8: 1.5 s to 5.5 s, mean 3.5 s (an exact sum; percentiles within HDR precision).
    assert!(
        (out.report.mean_e2e_ms - 3_500.0).abs() < 1e-6,
        "{}",
        out.report
    );
    assert!((e2e.max - 5_500.0).abs() < 6.0, "{e2e:?}");
    assert!((e2e.p50 - 3_500.0).abs() < 4.0, "{e2e:?}");
}
