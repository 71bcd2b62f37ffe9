//! The quota pre-flight's arithmetic (means and Little's law, no events) against the
//! simulator's token buckets: a Bedrock quota a quarter above what the pre-flight says the
//! peak needs holds, a quota a quarter below it throttles.

mod common;

use common::{layers_off_except, profile, stage};
use surge_model::preflight::{BurstDemand, Preflight};
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
    let (out, timeline) = simulated(&p);
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

/// Ten tasks of one worker at 10 ms a message serve 1,000 messages/s; the stage asks
/// 1,200/s. Lambda holds an environment for its start and 20 ms of service: 300 ms cold,
/// 5 ms warm. `changes` (system lines) replace or add to these.
fn overflowing(changes: &str) -> surge_profile::Profile {
    let base = r#"orchestrator.initial_tasks = 10
orchestrator.min_tasks = 10
orchestrator.max_tasks = 10
orchestrator.workers_per_task = 1
orchestrator.vcpu_per_task = 1
orchestrator.cpu_per_message = "10ms"
burst.service = "20ms"
burst.cold_start = "300ms"
burst.warm_start = "5ms"
burst.provisioned = 0"#;
    let key = |line: &str| line.split('=').next().unwrap_or("").trim().to_string();
    let changed: Vec<String> = changes.lines().map(key).collect();
    let mut system = layers_off_except(&["orchestrator", "burst"]);
    for line in base.lines().filter(|l| !changed.contains(&key(l))) {
        system.push_str(line);
        system.push('\n');
    }
    system.push_str(changes);
    let stages = stage("spike", "1m", 200_000, "72000/min");
    profile(&system, "constant", r#"order_tracking = "100%""#, &stages)
}

fn burst_need(f: &Preflight) -> &surge_model::preflight::BurstNeed {
    match &f.burst {
        BurstDemand::On(b) => b,
        other => panic!("burst workers on: {other:?}"),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9 * b.abs().max(1.0)
}

#[test]
fn lambda_concurrency_is_the_overflow_beyond_the_task_maximum_times_its_hold() {
    let p = overflowing("");
    let f = Preflight::of(&p);
    let b = burst_need(&f);
    // 10 tasks × 1 worker / 10 ms = 1,000/s; the peak's 1,200/s leaves 200/s.
    assert!(close(b.orchestration.capacity, 1000.0), "{b:?}");
    assert!(close(b.orchestration.overflow, 200.0), "{b:?}");
    assert_eq!(b.orchestration.tasks_key, "orchestrator.max_tasks");
    // Cold: 200/s × (300 + 20) ms = 64 environments; once warm, 200/s × 25 ms = 5.
    assert!(
        close(b.cold_hold, 0.320) && close(b.warm_hold, 0.025),
        "{b:?}"
    );
    assert!(close(b.concurrency, 64.0), "{b:?}");
    assert!(close(b.warm_concurrency, 5.0), "{b:?}");
    // The system model's cap: min(10 × spike_factor 50, account_concurrency 1,000).
    assert_eq!((b.cap, b.cap_key), (500, "burst.spike_factor"));
    assert_eq!(b.scale_time, surge_profile::Duration::ZERO, "64 ≤ one step");
    assert!(b.before_scale_out.is_none(), "initial_tasks = max_tasks");
    let line = f
        .lines
        .iter()
        .find(|l| l.key == "burst.spike_factor")
        .unwrap();
    assert_eq!((line.peak, line.quota), (b.concurrency, 500.0));
    // 12 vCPUs busy against 10 × 60 %: the orchestrator line is over, the burst one not.
    assert_eq!(f.over(), ["orchestrator.max_tasks"]);

    // The simulator's burst workers reach the same concurrency as the overflow sets in.
    let out = simulate(&p, &SimOptions::default()).unwrap();
    let peak = f64::from(out.report.peaks.lambda_concurrency);
    println!("simulated Lambda concurrency peak {peak}, pre-flight 64");
    assert!((peak - 64.0).abs() <= 3.0, "simulated peak {peak}");
    assert_eq!(out.report.peaks.lambda_throttles, 0);
}

#[test]
fn provisioned_environments_take_the_overflow_warm_first() {
    // 3 provisioned environments at 25 ms serve 120/s warm; the other 80/s start cold:
    // 3 + 80 × 0.32 = 28.6.
    let f = Preflight::of(&overflowing("burst.provisioned = 3"));
    let b = burst_need(&f);
    assert!(close(b.concurrency, 28.6), "{b:?}");
    // Everything provisioned: 200/s × 25 ms = 5.
    let f = Preflight::of(&overflowing("burst.provisioned = 10"));
    assert!(close(burst_need(&f).concurrency, 5.0));
}

#[test]
fn a_need_over_the_cap_names_the_key_that_sets_it() {
    // spike_factor 5: the cap is 10 × 5 = 50 < 64.
    let p = overflowing("burst.spike_factor = 5");
    let f = Preflight::of(&p);
    let b = burst_need(&f);
    assert_eq!((b.cap, b.cap_key), (50, "burst.spike_factor"));
    assert!(b.share() > 1.0);
    assert_eq!(f.over(), ["orchestrator.max_tasks", "burst.spike_factor"]);
    let out = simulate(&p, &SimOptions::default()).unwrap();
    assert_eq!(out.report.peaks.lambda_concurrency, 50);
    assert!(out.report.peaks.lambda_throttles > 0);

    // account_concurrency 40 below 10 × 50: the account limit sets the cap.
    let f = Preflight::of(&overflowing("burst.account_concurrency = 40"));
    let b = burst_need(&f);
    assert_eq!((b.cap, b.cap_key), (40, "burst.account_concurrency"));
    assert_eq!(
        f.over(),
        ["orchestrator.max_tasks", "burst.account_concurrency"]
    );
}

#[test]
fn lambda_scaling_and_the_tasks_before_scale_out() {
    // Autoscaling from 2 tasks (200/s) up to 10: until it adds tasks, 1,000/s overflow,
    // 1,000/s × 320 ms = 320 environments cold.
    let f = Preflight::of(&overflowing(
        "orchestrator.initial_tasks = 2\norchestrator.min_tasks = 2\nburst.scale_step = 100",
    ));
    let b = burst_need(&f);
    assert!(close(b.concurrency, 64.0), "at max_tasks as before: {b:?}");
    let first = b.before_scale_out.as_ref().expect("autoscaling adds tasks");
    assert_eq!(first.tasks, 2);
    assert!(close(first.capacity, 200.0) && close(first.overflow, 1000.0));
    assert!(close(first.concurrency, 320.0), "{first:?}");
    // At max_tasks, 64 ≤ the first 100: no scaling to wait for.
    assert_eq!(b.scale_time, surge_profile::Duration::ZERO);
    let f = Preflight::of(&overflowing("burst.scale_step = 20"));
    // 64 environments at 20 more per 10 s after the first 20: 30 s (20, 40, 60, 80).
    assert_eq!(burst_need(&f).scale_time, "30s".parse().unwrap());
}

#[test]
fn without_burst_workers_the_overflow_is_named_not_sized() {
    let f = Preflight::of(&overflowing("burst.enabled = false"));
    match &f.burst {
        BurstDemand::Off(o) => {
            assert!(
                close(o.capacity, 1000.0) && close(o.overflow, 200.0),
                "{o:?}"
            );
        }
        other => panic!("burst workers off: {other:?}"),
    }
    assert!(!f.lines.iter().any(|l| l.key.starts_with("burst.")));
    assert_eq!(f.over(), ["orchestrator.max_tasks"]);

    let mut p = overflowing("");
    p.system.orchestrator.enabled = false;
    assert_eq!(Preflight::of(&p).burst, BurstDemand::NoOrchestrator);
}

/// 40,000 sessions over a 100 s ramp (400/s), held for 2 h; then 30,000 more over 200 s
/// (150/s), held for an hour. `second_ramp` is the second stage's ramp.
fn three_hours(second_ramp: &str) -> surge_profile::Profile {
    three_hours_kept(second_ramp, true)
}

fn three_hours_kept(second_ramp: &str, keepalive: bool) -> surge_profile::Profile {
    let keepalive = if keepalive { "" } else { "# " };
    let stages = format!(
        r#"[[traffic.stages]]
name = "first"
duration = "2h"
ramp = "100s"
sessions = 40000
message_rate = "600/min"

[[traffic.stages]]
name = "second"
duration = "1h"
ramp = "{second_ramp}"
sessions = 70000
message_rate = "600/min"

# A message an hour per user: without a keepalive the idle timeout, not the two-hour limit,
# would close (and reopen) most connections every ten minutes.
[protocol]
{keepalive}keepalive = {{ every = "5m", send = '{{"action":"ping"}}' }}
"#
    );
    profile(
        &layers_off_except(&["gateway"]),
        "constant",
        r#"order_tracking = "100%""#,
        &stages,
    )
}

/// Simulates `p`: what it returns, and the timeline.csv it writes.
fn simulated(p: &surge_profile::Profile) -> (surge_sim::SimOutcome, surge_record::Timeline) {
    let root = tempfile::tempdir().unwrap();
    let opts = SimOptions {
        out_root: Some(root.path().to_path_buf()),
        ..SimOptions::default()
    };
    let out = simulate(p, &opts).unwrap();
    let dir = out.run_dir.clone().expect("a run directory");
    (
        out,
        surge_record::Timeline::read(&dir.join("timeline.csv")).unwrap(),
    )
}

fn connect_backlog_peak(p: &surge_profile::Profile) -> f64 {
    simulated(p)
        .1
        .column("connect_backlog")
        .unwrap()
        .iter()
        .fold(0.0, |a, &b| a.max(b))
}

#[test]
fn the_first_ramp_reconnects_two_hours_later_on_top_of_the_second() {
    let p = three_hours("200s");
    let f = Preflight::of(&p);
    let r = f.reconnects.as_ref().expect("gateway on");
    let w = r
        .fastest
        .as_ref()
        .expect("a 3 h run outlasts max_connection");
    // At 2h the sessions of the first ramp reconnect at its 400/s while the second stage
    // opens 150/s: 550/s against the gateway's 500/s.
    assert_eq!(w.at, "2h".parse().unwrap());
    assert_eq!(w.opened, surge_profile::Duration::ZERO);
    assert!(close(w.sessions, 40_000.0), "{w:?}");
    assert!(close(w.reconnects, 400.0) && close(w.new, 150.0), "{w:?}");
    assert_eq!(w.leaving, 0.0);
    assert!(close(w.rate(), 550.0) && close(w.quota, 500.0), "{w:?}");
    // The second ramp's sessions would reconnect at 4h, after the run.
    assert_eq!((r.waves, r.largest.is_none()), (1, true));
    // Either ramp alone is under the gateway's rate; the wave is not.
    let ramp = f
        .lines
        .iter()
        .find(|l| l.what == "new connections/s")
        .unwrap();
    assert_eq!(ramp.peak, 400.0);
    assert_eq!(f.over(), ["gateway.connect_rate"]);

    // The simulated gateway falls behind by the 50/s excess for the wave's 100 s: 3,000
    // sessions wait at the minute's end, 60 s in.
    let backlog = connect_backlog_peak(&p);
    println!("simulated connect backlog {backlog}, pre-flight 50/s × 60 s = 3,000");
    assert!(
        (backlog - 3000.0).abs() < 150.0,
        "connect backlog {backlog}"
    );
}

/// Without the keepalive, 70,000 users sending 10 messages a second between them (one
/// every 7,000 s each) are silent for the 10-minute idle timeout e^(−600/7000) of the time:
/// the gateway closes and reopens 70,000 · (1/7000) / (e^(600/7000) − 1) = 111.8
/// connections a second. The pre-flight says so, and the simulator closes as many.
#[test]
fn without_a_keepalive_the_idle_timeout_reopens_connections_all_the_time() {
    let p = three_hours_kept("300s", false);
    let f = Preflight::of(&p);
    let idle = f
        .lines
        .iter()
        .find(|l| l.what.contains("idle timeout"))
        .expect("an idle-timeout line");
    let expected = 10.0 / (600.0f64 / 7000.0).exp_m1();
    assert!((idle.peak - expected).abs() < 0.01, "{idle:?}");
    let kept = Preflight::of(&three_hours("300s"));
    assert!(
        kept.lines.iter().all(|l| !l.what.contains("idle timeout")),
        "a keepalive holds the connections"
    );

    let (_, timeline) = simulated(&p);
    let closed = timeline.column("closed_by_gateway").unwrap();
    // The last full hour is the second stage's steady state (its ramp and first echoes
    // done by 2 h 30).
    let steady: f64 = closed[150..179].iter().sum::<f64>() / 29.0 / 60.0;
    assert!(
        (steady / expected - 1.0).abs() < 0.03,
        "{steady}/s simulated against {expected}"
    );
}

#[test]
fn a_wave_within_the_connect_rate_holds() {
    // The second stage opens 30,000 over 300 s (100/s): 400 + 100 = 500/s, the quota.
    let p = three_hours("300s");
    let f = Preflight::of(&p);
    let w = f.reconnects.as_ref().unwrap().fastest.clone().unwrap();
    assert!(close(w.rate(), 500.0), "{w:?}");
    assert!(f.over().is_empty(), "{:?}", f.over());
    assert!(connect_backlog_peak(&p) < 50.0);
}

#[test]
fn a_run_shorter_than_max_connection_has_no_wave() {
    let stages = "[[traffic.stages]]\nname = \"ramp\"\nduration = \"10m\"\nramp = \"100s\"\nsessions = 40000\nmessage_rate = \"600/min\"\n";
    let p = profile(
        &layers_off_except(&["gateway"]),
        "constant",
        r#"order_tracking = "100%""#,
        stages,
    );
    let r = Preflight::of(&p).reconnects.unwrap();
    assert_eq!((r.fastest, r.waves), (None, 0));
    assert_eq!(r.max_connection, "2h".parse().unwrap());
    assert_eq!(r.duration, "10m".parse().unwrap());
}

fn gateway_only(stages: &str) -> surge_profile::Profile {
    profile(
        &layers_off_except(&["gateway"]),
        "constant",
        r#"order_tracking = "100%""#,
        stages,
    )
}

#[test]
fn the_spikes_wave_reconnects_while_the_cool_down_closes_sessions() {
    // The one-piece-spike schedule: 500 sessions at once, 24,500 more over a minute at
    // 10m, back to 500 over ten minutes from 2h10m.
    let p = gateway_only(
        r#"[[traffic.stages]]
name = "baseline"
duration = "10m"
sessions = 500
message_rate = "600/min"

[[traffic.stages]]
name = "spike"
duration = "2h"
ramp = "1m"
sessions = 25000
message_rate = "600/min"

[[traffic.stages]]
name = "cool-down"
duration = "30m"
ramp = "10m"
sessions = 500
message_rate = "600/min"
"#,
    );
    let r = Preflight::of(&p).reconnects.unwrap();
    assert_eq!(r.waves, 2);
    // Fastest: the first 500, admitted at the gateway's 500/s, again at 2h.
    let w = r.fastest.unwrap();
    assert_eq!(w.at, "2h".parse().unwrap());
    assert!(close(w.sessions, 500.0) && close(w.rate(), 500.0), "{w:?}");
    // Largest: the spike's 24,500 at 24,500/60 s = 408.3/s, less the cool-down's
    // 24,500/600 s = 40.8/s leaving: 367.5/s.
    let l = r.largest.unwrap();
    assert_eq!(
        (l.at, l.opened),
        ("2h10m".parse().unwrap(), "10m".parse().unwrap())
    );
    assert!(close(l.sessions, 24_500.0), "{l:?}");
    assert!(close(l.reconnects, 24_500.0 / 60.0), "{l:?}");
    assert!(close(l.leaving, 24_500.0 / 600.0), "{l:?}");
    assert!(close(l.rate(), 367.5), "{l:?}");
}

#[test]
fn sessions_closed_before_the_wave_do_not_reconnect() {
    // 40,000 over 100 s (400/s), down to 10,000 at 1h: the 30,000 newest left, so the
    // first 10,000 reconnect at 2h, at 400/s for 25 s.
    let p = gateway_only(
        r#"[[traffic.stages]]
name = "up"
duration = "1h"
ramp = "100s"
sessions = 40000
message_rate = "600/min"

[[traffic.stages]]
name = "down"
duration = "2h"
sessions = 10000
message_rate = "600/min"
"#,
    );
    let w = Preflight::of(&p).reconnects.unwrap().fastest.unwrap();
    assert_eq!(w.at, "2h".parse().unwrap());
    assert!(
        close(w.sessions, 10_000.0) && close(w.rate(), 400.0),
        "{w:?}"
    );
}
