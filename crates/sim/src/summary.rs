//! Turns the statistics of a finished run into the [`SimReport`] and `summary.json`.
//!
//! Both are computed from simulated quantities only (no wall-clock figures), so the same
//! profile and seed always give byte-identical summaries.

use std::collections::BTreeMap;

use surge_profile::Profile;
use surge_profile::metric::{LatencyMetric, MetricRef, Threshold};
use surge_record::{Counts, LatencyStats, Summary, Tag};

use crate::engine::Finished;
use crate::plan::Plan;
use crate::report::{LatencyRow, QueueStats, RunCost, SimReport, StepRow};
use crate::stats::{ErrorClass, Step};
use surge_model::time::{Nanos, secs};

fn scope_of(tag: &Tag, plan: &Plan) -> String {
    match tag.qualifier() {
        None => "all".into(),
        Some(q) if plan.stores.iter().any(|s| s.name == q) => format!("store:{q}"),
        Some(q) => format!("model:{q}"),
    }
}

fn latency_rows(f: &Finished, plan: &Plan) -> Vec<LatencyRow> {
    let tagged = f.latencies.recorder.latency_ms();
    let mut rows: Vec<LatencyRow> = tagged
        .iter()
        .filter(|(t, _)| t.qualifier().is_none())
        .map(|(t, s)| LatencyRow::new("all", t.metric().to_string(), s))
        .collect();
    if let [name] = plan.stages.as_slice() {
        // One stage: every measured answer is its (see `Latencies::stages`).
        let overall: Vec<LatencyRow> = rows
            .iter()
            .filter(|r| r.metric == "e2e" || r.metric == "ttft")
            .map(|r| LatencyRow {
                scope: format!("stage:{name}"),
                ..r.clone()
            })
            .collect();
        rows.extend(overall);
    }
    for (name, stage) in plan.stages.iter().zip(&f.latencies.stages) {
        for (metric, h) in [("e2e", &stage.e2e), ("ttft", &stage.ttft)] {
            if !h.is_empty() {
                let stats = LatencyStats::from_histogram(h);
                rows.push(LatencyRow::new(format!("stage:{name}"), metric, &stats));
            }
        }
    }
    rows.extend(
        tagged
            .iter()
            .filter(|(t, _)| t.qualifier().is_some())
            .map(|(t, s)| LatencyRow::new(scope_of(t, plan), t.metric().to_string(), s)),
    );
    rows
}

fn step_rows(f: &Finished) -> Vec<StepRow> {
    let measured = f.steps.measured.max(1) as f64;
    Step::ALL
        .iter()
        .map(|&step| {
            let (total, n) = (f.steps.nanos[step as usize], f.steps.count[step as usize]);
            StepRow {
                step: step.name().into(),
                messages: n,
                mean_ms: if n == 0 {
                    0.0
                } else {
                    total as f64 / n as f64 / 1e6
                },
                per_message_ms: total as f64 / measured / 1e6,
            }
        })
        .collect()
}

fn queue_stats(f: &Finished, warmup: Nanos) -> QueueStats {
    let h = &f.latencies.queue_wait;
    let served = h.len();
    if served == 0 {
        return QueueStats::default();
    }
    QueueStats {
        served,
        wait_probability: f.latencies.waited as f64 / served as f64,
        mean_wait_s: f.latencies.queue_wait_sum / served as f64 / 1e9,
        p99_wait_s: h.value_at_quantile(0.99) as f64 / 1e6,
        mean_length: f.queue_mean,
        arrival_rate: served as f64 / secs(f.ended.saturating_sub(warmup)).max(1e-9),
    }
}

fn error_map(f: &Finished) -> BTreeMap<String, u64> {
    ErrorClass::ALL
        .iter()
        .map(|&c| (c.name().to_string(), f.counters.errors[c as usize]))
        .collect()
}

fn throttles(f: &Finished, report_peaks: &crate::report::Peaks) -> BTreeMap<String, u64> {
    let e = &f.counters.errors;
    let mut t = BTreeMap::new();
    t.insert(
        "gateway".to_string(),
        e[ErrorClass::GatewayUser as usize] + e[ErrorClass::GatewayAccount as usize],
    );
    t.insert("lambda".into(), report_peaks.lambda_throttles);
    if let Some(d) = &report_peaks.dynamodb {
        t.insert("dynamodb_reads".into(), d.read_throttles);
        t.insert("dynamodb_writes".into(), d.write_throttles);
    }
    t.insert(
        "bedrock".into(),
        report_peaks.bedrock.iter().map(|m| m.throttles).sum(),
    );
    t
}

fn mean_ms(sum_ns: f64, n: u64) -> f64 {
    if n == 0 { 0.0 } else { sum_ns / n as f64 / 1e6 }
}

fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).expect("plain data serializes")
}

/// What the run cost, priced from what it consumed (simulated time includes the drain).
fn run_cost(profile: &Profile, plan: &Plan, f: &Finished) -> RunCost {
    let usage = f.consumption.usage(profile, plan, f.ended, f.task_seconds);
    let days_per_month = profile.cost.as_ref().map_or(30.0, |c| c.days_per_month);
    let table = surge_cost::price(&usage, &profile.system, days_per_month);
    let chargeback = surge_cost::chargeback(&usage, &table, &profile.system);
    RunCost {
        run_total: table.total_per_day * usage.days,
        run_hours: usage.days * 24.0,
        table,
        chargeback,
    }
}

/// The report and the summary of a finished run.
pub(crate) fn assemble(
    profile: &Profile,
    plan: &Plan,
    seed: u64,
    warmup: Nanos,
    f: &Finished,
) -> (SimReport, Summary) {
    // Rates are per second of the schedule, or of the part run before an early stop.
    let scheduled = profile.duration.as_secs_f64();
    let duration_s = match f.stopped_early {
        Some(_) => scheduled.min(secs(f.ended)),
        None => scheduled,
    };
    let report = SimReport {
        profile: profile.name.clone(),
        seed,
        duration_s,
        sessions: f.sessions,
        sent: f.counters.sent,
        completed: f.counters.completed,
        abandoned: f.counters.abandoned,
        retries: f.counters.retries,
        errors: error_map(f),
        mean_e2e_ms: mean_ms(f.latencies.e2e_sum, f.latencies.answers),
        mean_ttft_ms: mean_ms(f.latencies.ttft_sum, f.latencies.answers),
        latency: latency_rows(f, plan),
        throttles: throttles(f, &f.peaks),
        peaks: f.peaks.clone(),
        connections: profile.system.gateway.enabled.then_some(f.connections),
        steps: step_rows(f),
        queue: queue_stats(f, warmup),
        events: f.events,
        cost: run_cost(profile, plan, f),
        stopped_early: f.stopped_early.clone(),
    };
    let mut summary = Summary::new(report.duration_s);
    summary.counts = Counts {
        sessions: f.sessions,
        sent: f.counters.sent,
        completed: f.counters.completed,
        late: f.late,
        unsolicited: 0,
        abandoned: f.counters.abandoned,
        retries: f.counters.retries,
    };
    // The gateway's connections, as a measured run counts them: its closes at
    // `max_connection` and after the idle timeout are API Gateway's 1001, and each is a
    // reconnection.
    let c = &f.connections;
    summary.connections = (c.opened > 0).then(|| {
        let mut closed_by_server = std::collections::BTreeMap::new();
        if c.closed_by_gateway() > 0 {
            closed_by_server.insert("1001".to_string(), c.closed_by_gateway());
        }
        surge_record::Connections {
            opened: c.opened,
            reconnects: c.closed_by_gateway(),
            keepalives: 0,
            closed_by_server,
        }
    });
    summary.set_histograms(f.latencies.recorder.totals().filter(|(_, h)| !h.is_empty()));
    summary.errors = report.errors.clone();
    summary.compute_rates();
    if plan.goodput.any() {
        summary.goodput = Some(surge_record::Goodput::from_counts(
            f.counters.good,
            f.counters.sent,
            summary.duration_s,
            &plan.goodput.in_ms(),
            f.latencies.good_by_scope(plan),
        ));
    }
    // The load generator's own figures (scheduling lag, connect, service) have no
    // simulated counterpart: their thresholds are for measured runs only.
    let simulated: Vec<Threshold> = profile
        .thresholds
        .iter()
        .filter(|t| match &t.metric {
            MetricRef::Latency { metric, .. } => matches!(
                metric,
                LatencyMetric::E2e
                    | LatencyMetric::Ttft
                    | LatencyMetric::Itl
                    | LatencyMetric::Tpot
                    | LatencyMetric::Tokens
            ),
            MetricRef::Ratio(_) => true,
        })
        .cloned()
        .collect();
    summary.thresholds = summary.evaluate(&simulated);
    let extra = &mut summary.extra;
    extra.insert("simulated_s".into(), json(&secs(f.ended)));
    extra.insert("events".into(), json(&f.events));
    extra.insert("throttles".into(), json(&report.throttles));
    extra.insert("peaks".into(), json(&report.peaks));
    extra.insert("steps_ms".into(), json(&report.steps));
    extra.insert("queue".into(), json(&report.queue));
    extra.insert("mean_e2e_ms".into(), json(&report.mean_e2e_ms));
    extra.insert("mean_ttft_ms".into(), json(&report.mean_ttft_ms));
    summary.cost = Some(json(&report.cost));
    (report, summary)
}
