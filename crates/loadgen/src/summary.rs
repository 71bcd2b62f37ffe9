//! `summary.json` and the printed report of a measured run, from merged totals.
//!
//! Thresholds are evaluated on the run's totals, the way the simulator evaluates them, so a
//! prediction and a measurement of the same profile are judged by the same rules. The
//! generator's own health goes into `extra.generator`, and the report says when the
//! generator, not the server, was the bottleneck.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use serde_json::json;
use surge_profile::Profile;
use surge_profile::goodput::Slos;
use surge_profile::metric::{Comparison, MetricRef, RatioMetric, Stat};
use surge_record::{
    Connections, Counts, Goodput, Histogram, Metric, Summary, Tag, ThresholdVerdict,
};

use crate::errors::ErrorClass;
use crate::health::{CPU_WAIT_EXPLAINS, Saturation, bottleneck};
use crate::recording::CounterValues;

/// A threshold to judge the run by: the figure, the comparison, the limit (ms or fraction).
#[derive(Debug, Clone)]
pub struct Wanted {
    pub metric: MetricRef,
    pub op: Comparison,
    pub limit: f64,
}

impl Wanted {
    /// The profile's thresholds.
    pub fn of(profile: &Profile) -> Vec<Wanted> {
        profile
            .thresholds
            .iter()
            .map(|t| Wanted {
                metric: t.metric.clone(),
                op: t.comparison,
                limit: t.limit.value(),
            })
            .collect()
    }
}

pub struct Inputs<'a> {
    pub thresholds: &'a [Wanted],
    pub duration: Duration,
    pub counts: &'a CounterValues,
    pub totals: &'a BTreeMap<Tag, Histogram<u64>>,
    pub tokens_per_s: &'a Histogram<u64>,
    pub upgrade_status: &'a BTreeMap<u16, u64>,
    /// Connections the server closed, by close code.
    pub closed_by_server: &'a BTreeMap<u16, u64>,
    /// The profile's `[goodput]` SLOs, and (good answers, answers) per store and model.
    pub goodput: &'a Slos,
    pub goodput_by_scope: &'a BTreeMap<String, (u64, u64)>,
    /// The busiest shards' figures (health.rs).
    pub busiest: Saturation,
    pub shards: usize,
    pub dead: &'a [String],
}

pub fn build(i: &Inputs<'_>) -> Summary {
    let mut s = Summary::new(i.duration.as_secs_f64());
    s.counts = Counts {
        sessions: i.counts.sessions_opened,
        sent: i.counts.sent,
        completed: i.counts.completed,
        late: i.counts.late,
        unsolicited: i.counts.unsolicited,
        abandoned: i.counts.abandoned,
        retries: i.counts.retries,
    };
    s.connections = Some(Connections {
        opened: i.counts.sessions_opened,
        reconnects: i.counts.reconnects,
        keepalives: i.counts.keepalives,
        closed_by_server: i
            .closed_by_server
            .iter()
            .map(|(code, n)| (code.to_string(), *n))
            .collect(),
    });
    s.set_histograms(i.totals);
    s.errors = ErrorClass::ALL
        .iter()
        .map(|c| (c.name().to_string(), i.counts.errors[c.index()]))
        .collect();
    s.compute_rates();
    if i.goodput.any() {
        s.goodput = Some(Goodput::from_counts(
            i.counts.good,
            i.counts.sent,
            s.duration_s,
            &i.goodput.in_ms(),
            i.goodput_by_scope.iter().map(|(k, v)| (k.clone(), *v)),
        ));
    }
    s.thresholds = verdicts(i.thresholds, &s);
    let lag_p99 = i
        .totals
        .get(&Tag::from(Metric::Lag))
        .map(|h| Duration::from_micros(h.value_at_quantile(0.99)));
    let note = bottleneck(lag_p99, i.busiest);
    s.extra.insert(
        "generator".into(),
        json!({
            "lag_p99_ms": lag_p99.map(|l| l.as_secs_f64() * 1e3),
            "cpu_share_max": i.busiest.cpu_share,
            "cpu_wait_share": i.busiest.wait_share,
            "paced": i.counts.paced,
            "bottleneck": note.is_some(),
            "host_busy": i.busiest.wait_share >= CPU_WAIT_EXPLAINS,
            "note": note,
            "shards": i.shards,
            "shards_failed": i.dead,
        }),
    );
    // Due but never sent: the open model's lost load (the server was too slow to catch up
    // before the session's window closed).
    s.extra.insert("unsent".into(), json!(i.counts.unsent));
    if !i.tokens_per_s.is_empty() {
        let h = i.tokens_per_s;
        s.extra.insert(
            "tokens_per_s".into(),
            json!({
                "count": h.len(),
                "p50": h.value_at_quantile(0.5),
                "p90": h.value_at_quantile(0.9),
                "p99": h.value_at_quantile(0.99),
                "mean": h.mean(),
            }),
        );
    }
    if !i.upgrade_status.is_empty() {
        let by: BTreeMap<String, u64> = i
            .upgrade_status
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        s.extra
            .insert("upgrade_rejected_by_status".into(), json!(by));
    }
    s
}

fn verdicts(wanted: &[Wanted], s: &Summary) -> Vec<ThresholdVerdict> {
    wanted
        .iter()
        .map(|t| {
            let measured = match &t.metric {
                MetricRef::Latency { stat, .. } => t
                    .metric
                    .tag()
                    .and_then(|tag| tag.parse::<Tag>().ok())
                    .and_then(|tag| {
                        let st = s.figures_of(&tag)?;
                        Some(match stat {
                            Stat::P50 => st.p50,
                            Stat::P90 => st.p90,
                            Stat::P99 => st.p99,
                            Stat::P999 => st.p999,
                            Stat::Max => st.max,
                            Stat::Mean => st.mean,
                        })
                    }),
                MetricRef::Ratio(RatioMetric::Errors) => Some(s.rates.error_ratio),
                MetricRef::Ratio(RatioMetric::Late) => Some(s.rates.late_ratio),
                MetricRef::Ratio(RatioMetric::Goodput) => s.goodput.as_ref().map(|g| g.ratio),
            };
            ThresholdVerdict::evaluate(t.metric.to_string(), t.op, t.limit, measured)
        })
        .collect()
}

/// The report printed at the end of a run.
pub fn render(s: &Summary) -> String {
    let mut out = String::new();
    let w = &mut out;
    let c = &s.counts;
    let _ = writeln!(
        w,
        "{:.1} s   sessions opened {}   sent {} ({:.1}/s)   completed {}   late {} ({:.2}%)",
        s.duration_s,
        c.sessions,
        c.sent,
        s.rates.sent_per_s,
        c.completed,
        c.late,
        s.rates.late_ratio * 100.0
    );
    for l in &s.lost_shards {
        let _ = writeln!(
            w,
            "LOST shard {} at {:.1} s (last report {:.0} s): {:.1}% of the offered load was not sent; {}",
            l.shard,
            l.lost_at_s,
            l.last_report_s,
            l.offered_share_lost * 100.0,
            l.why
        );
    }
    if let Some(n) = s
        .extra
        .get("unsent")
        .and_then(|v| v.as_u64())
        .filter(|n| *n > 0)
    {
        let _ = writeln!(
            w,
            "{n} messages fell due but were never sent: their sessions ended while waiting for answers"
        );
    }
    let _ = writeln!(
        w,
        "\n{:<22} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "latency (ms)", "count", "p50", "p90", "p99", "p99.9", "max"
    );
    for (tag, st) in &s.latency_ms {
        let _ = writeln!(
            w,
            "{:<22} {:>9} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
            tag.to_string(),
            st.count,
            st.p50,
            st.p90,
            st.p99,
            st.p999,
            st.max
        );
    }
    if let Some(t) = s.extra.get("tokens_per_s") {
        let _ = writeln!(
            w,
            "\ntokens/s per answer    p50 {}  p90 {}  p99 {}",
            t["p50"], t["p90"], t["p99"]
        );
    }
    let llm = s.llm_lines();
    if !llm.is_empty() {
        let _ = write!(w, "\n{llm}");
    }
    let errors: Vec<String> = s
        .errors
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    let _ = writeln!(
        w,
        "\nerrors {} ({:.3}% of sent){}{}",
        s.errors_total(),
        s.rates.error_ratio * 100.0,
        if errors.is_empty() { "" } else { ": " },
        errors.join(", ")
    );
    if let Some(by) = s.extra.get("upgrade_rejected_by_status") {
        let _ = writeln!(w, "upgrade rejected by HTTP status: {by}");
    }
    if let Some(conn) = &s.connections {
        let closed: Vec<String> = conn
            .closed_by_server
            .iter()
            .map(|(code, n)| format!("{code} ×{n}"))
            .collect();
        let _ = writeln!(
            w,
            "connections opened {} (reconnects {}), closed by the server: {}{}",
            conn.opened,
            conn.reconnects,
            if closed.is_empty() {
                "none".to_string()
            } else {
                closed.join(", ")
            },
            if conn.keepalives > 0 {
                format!("; keepalives sent {}", conn.keepalives)
            } else {
                String::new()
            }
        );
    }
    if c.abandoned > 0 || c.retries > 0 {
        let _ = writeln!(
            w,
            "users gave up on {} answers (abandoned; not errors, not in the latencies) and \
             retried {} messages after an error or a throttle",
            c.abandoned, c.retries
        );
    }
    if c.unsolicited > 0 {
        let _ = writeln!(
            w,
            "unsolicited frames {} (answered no message; not errors)",
            c.unsolicited
        );
    }
    if let Some(g) = s.extra.get("generator") {
        let lag = g["lag_p99_ms"]
            .as_f64()
            .map_or("-".to_string(), |l| format!("{l:.1} ms"));
        let cpu = g["cpu_share_max"].as_f64().unwrap_or(0.0);
        let wait = g["cpu_wait_share"].as_f64().unwrap_or(0.0);
        let _ = writeln!(
            w,
            "generator: scheduling lag p99 {lag}, busiest shard {:.0}% of its core, \
             waited for a CPU {:.0}% of the run",
            cpu * 100.0,
            wait * 100.0
        );
        if let Some(paced) = g["paced"].as_u64().filter(|n| *n > 0) {
            let _ = writeln!(
                w,
                "generator: {paced} messages it sent late itself were paced to the planned \
                 rate, not sent in a burst"
            );
        }
        if let Some(note) = g["note"].as_str() {
            let _ = writeln!(w, "WARNING: {note}");
        } else if g["host_busy"].as_bool() == Some(true) {
            let _ = writeln!(
                w,
                "NOTE: the host was busy (a generator shard waited {:.0}% of the run for a CPU \
                 other processes held), but the generator kept its schedule (lag p99 {lag}): \
                 its figures stand",
                wait * 100.0
            );
        }
    }
    for t in &s.thresholds {
        let measured = t
            .measured
            .map_or_else(|| "no data".to_string(), |m| format!("{m:.3}"));
        let _ = writeln!(
            w,
            "threshold {} {} {} {}: measured {measured}",
            if t.passed { "passed" } else { "FAILED" },
            t.metric,
            t.op.symbol(),
            t.limit
        );
    }
    out
}
