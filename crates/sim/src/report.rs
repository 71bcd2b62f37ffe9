//! The plain-data report of one simulation, for the CLI to print and tests to check.
//!
//! [`SimReport`] holds what an engineer asks after a rehearsal: latency percentiles
//! (overall, per traffic stage, per store and model), errors and throttles per layer, the
//! peak capacity each layer used, and where the time of a turn went. `Display` renders it
//! as a compact text report.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use surge_record::LatencyStats;

/// Latency figures of one scope (`all`, a stage, a store, a model), in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencyRow {
    /// `all`, `stage:<name>`, `store:<name>` or `model:<name>`.
    pub scope: String,
    /// `e2e`, `ttft` or `itl`.
    pub metric: String,
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl LatencyRow {
    pub fn new(scope: impl Into<String>, metric: impl Into<String>, s: &LatencyStats) -> Self {
        Self {
            scope: scope.into(),
            metric: metric.into(),
            count: s.count,
            p50: s.p50,
            p90: s.p90,
            p99: s.p99,
            max: s.max,
        }
    }
}

/// Mean time of one pipeline step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRow {
    pub step: String,
    /// Messages that went through the step.
    pub messages: u64,
    /// Mean time of the step among those messages, ms.
    pub mean_ms: f64,
    /// Total time of the step divided by all measured messages, ms (these add up to the
    /// mean turn, errors aside).
    pub per_message_ms: f64,
}

/// The orchestrator queue, for checks against queueing theory (M/M/c, Little's law).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct QueueStats {
    /// Messages a worker served (after the warm-up).
    pub served: u64,
    /// Share of them that had to wait.
    pub wait_probability: f64,
    /// Mean wait in the queue, seconds (Wq).
    pub mean_wait_s: f64,
    pub p99_wait_s: f64,
    /// Time-average queue length (Lq).
    pub mean_length: f64,
    /// Messages entering the queue per second (λ).
    pub arrival_rate: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DynamoPeaks {
    pub wru_per_s: f64,
    /// Write capacity at the end of the run, WRU/s.
    pub wru_capacity: f64,
    pub write_throttles: u64,
    pub rru_per_s: f64,
    pub rru_capacity: f64,
    pub read_throttles: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ModelPeak {
    pub model: String,
    /// Highest tokens per minute used in a timeline minute.
    pub tokens_per_minute: f64,
    /// Provisioned plus on-demand quota.
    pub capacity_per_minute: f64,
    pub calls: u64,
    pub throttles: u64,
}

/// Highest use of each layer's capacity.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Peaks {
    pub ecs_tasks: u32,
    /// Highest one-minute average CPU (0..1).
    pub ecs_cpu: f64,
    pub orchestrator_queue: usize,
    pub lambda_concurrency: u32,
    pub lambda_cold_starts: u64,
    pub lambda_throttles: u64,
    pub dynamodb: Option<DynamoPeaks>,
    pub bedrock: Vec<ModelPeak>,
}

/// The gateway's connections over a run: the reconnect waves and the line they wait in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Connections {
    /// Connections admitted, first ones and reconnections.
    pub opened: u64,
    /// Closed by the gateway (close code 1001) at `max_connection`, and after the idle
    /// timeout; each is a reconnection.
    pub closed_max_connection: u64,
    pub closed_idle: u64,
    /// The most gateway closes in one timeline minute, and the minute's end (s).
    pub peak_closes_per_minute: u64,
    pub peak_closes_at_s: u64,
    /// The most sessions waiting for admission at once, and session-seconds waited.
    pub peak_backlog: u64,
    pub backlog_session_seconds: u64,
}

impl Connections {
    pub fn closed_by_gateway(&self) -> u64 {
        self.closed_max_connection + self.closed_idle
    }
}

/// What one simulation predicts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimReport {
    pub profile: String,
    pub seed: u64,
    /// Simulated seconds of traffic (the profile duration).
    pub duration_s: f64,
    pub sessions: u64,
    pub sent: u64,
    pub completed: u64,
    /// Answers whose user had given up (`traffic.abandon_after`): not errors.
    pub abandoned: u64,
    /// Messages sent again after a failure (`traffic.retry_after_error`).
    pub retries: u64,
    pub errors: BTreeMap<String, u64>,
    /// Exact mean e2e and ttft of the answered messages, ms.
    pub mean_e2e_ms: f64,
    pub mean_ttft_ms: f64,
    pub latency: Vec<LatencyRow>,
    /// Throttled requests per layer (each retry counts again).
    pub throttles: BTreeMap<String, u64>,
    pub peaks: Peaks,
    /// The gateway's connections (`None` with the gateway off).
    pub connections: Option<Connections>,
    pub steps: Vec<StepRow>,
    pub queue: QueueStats,
    /// Events processed (simulated work; wall-clock speed is in [`crate::SimOutcome`]).
    pub events: u64,
    /// What the run cost, priced from what it consumed.
    pub cost: RunCost,
    /// Set when the run stopped as soon as a threshold could no longer hold
    /// ([`crate::SimOptions::stop_when_failed`]): why. Figures cover the run so far.
    pub stopped_early: Option<String>,
}

/// The cost of a simulated run: the priced table (per day and month at the run's rate)
/// and the run's own total.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunCost {
    pub run_total: f64,
    pub run_hours: f64,
    pub table: surge_cost::CostTable,
    pub chargeback: Vec<surge_cost::StoreCharge>,
}

impl SimReport {
    /// The latency row of `metric` in `scope`, if any message was recorded there.
    pub fn latency(&self, scope: &str, metric: &str) -> Option<&LatencyRow> {
        self.latency
            .iter()
            .find(|r| r.scope == scope && r.metric == metric)
    }

    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }

    /// The figures replications summarise, by name.
    pub fn headline(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        for metric in ["e2e", "ttft"] {
            if let Some(r) = self.latency("all", metric) {
                out.push((format!("{metric}.p50_ms"), r.p50));
                out.push((format!("{metric}.p99_ms"), r.p99));
            }
        }
        let ratio = if self.sent == 0 {
            0.0
        } else {
            self.errors_total() as f64 / self.sent as f64
        };
        out.push(("ttft.mean_ms".into(), self.mean_ttft_ms));
        out.push(("error_ratio".into(), ratio));
        out.push(("queue.mean_wait_s".into(), self.queue.mean_wait_s));
        out.push(("queue.wait_probability".into(), self.queue.wait_probability));
        out.push(("queue.mean_length".into(), self.queue.mean_length));
        out.push(("queue.arrival_rate".into(), self.queue.arrival_rate));
        out.push(("peak.ecs_tasks".into(), f64::from(self.peaks.ecs_tasks)));
        out.push((
            "peak.lambda_concurrency".into(),
            f64::from(self.peaks.lambda_concurrency),
        ));
        out
    }
}

impl fmt::Display for SimReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "simulated {} (seed {}): {:.0} s, {} sessions, {} messages sent, {} completed, {} errors",
            self.profile,
            self.seed,
            self.duration_s,
            self.sessions,
            self.sent,
            self.completed,
            self.errors_total()
        )?;
        if self.abandoned > 0 || self.retries > 0 {
            writeln!(
                f,
                "users gave up on {} answers (abandoned; not errors, not in the latencies) and \
                 retried {} messages after a failure",
                self.abandoned, self.retries
            )?;
        }
        if let Some(why) = &self.stopped_early {
            writeln!(f, "stopped early: {why}")?;
        }
        writeln!(
            f,
            "\nlatency (ms): mean e2e {:.1}, mean ttft {:.1}",
            self.mean_e2e_ms, self.mean_ttft_ms
        )?;
        writeln!(
            f,
            "  {:<24} {:<6} {:>10} {:>9} {:>9} {:>9} {:>9}",
            "scope", "metric", "count", "p50", "p90", "p99", "max"
        )?;
        for r in &self.latency {
            writeln!(
                f,
                "  {:<24} {:<6} {:>10} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
                r.scope, r.metric, r.count, r.p50, r.p90, r.p99, r.max
            )?;
        }
        writeln!(f, "\nwhere the time went (ms)")?;
        for s in self.steps.iter().filter(|s| s.messages > 0) {
            writeln!(
                f,
                "  {:<20} {:>9.1} per message {:>9.1} when used ({} messages)",
                s.step, s.per_message_ms, s.mean_ms, s.messages
            )?;
        }
        let nonzero = |m: &BTreeMap<String, u64>| {
            m.iter()
                .filter(|(_, n)| **n > 0)
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(f, "\nerrors: {}", or_none(nonzero(&self.errors)))?;
        writeln!(f, "throttles: {}", or_none(nonzero(&self.throttles)))?;
        let p = &self.peaks;
        writeln!(f, "\npeaks")?;
        writeln!(
            f,
            "  ECS tasks {} (CPU {:.0}% peak minute), orchestrator queue {}",
            p.ecs_tasks,
            p.ecs_cpu * 100.0,
            p.orchestrator_queue
        )?;
        writeln!(
            f,
            "  Lambda concurrency {} ({} cold starts, {} throttled)",
            p.lambda_concurrency, p.lambda_cold_starts, p.lambda_throttles
        )?;
        if let Some(d) = &p.dynamodb {
            writeln!(
                f,
                "  DynamoDB {:.0} WRU/s of {:.0} ({} throttled), {:.0} RRU/s of {:.0} ({} throttled)",
                d.wru_per_s,
                d.wru_capacity,
                d.write_throttles,
                d.rru_per_s,
                d.rru_capacity,
                d.read_throttles
            )?;
        }
        for m in &p.bedrock {
            writeln!(
                f,
                "  Bedrock {}: {:.0} tokens/min of {:.0}, {} calls, {} throttled",
                m.model, m.tokens_per_minute, m.capacity_per_minute, m.calls, m.throttles
            )?;
        }
        let c = &self.cost;
        writeln!(
            f,
            "\ncost: ${:.2} for these {:.2} simulated hours (${:.0}/day, ${:.0}/month at this rate; LLM {:.1}%)",
            c.run_total,
            c.run_hours,
            c.table.total_per_day,
            c.table.total_per_month,
            c.table.llm_share * 100.0
        )?;
        for line in c.table.lines.iter().filter(|l| l.per_day > 0.0) {
            writeln!(
                f,
                "  {:<30} ${:>12.2}/day  {}",
                line.component, line.per_day, line.basis
            )?;
        }
        if let Some(c) = &self.connections {
            writeln!(
                f,
                "\ngateway connections: {} opened, {} closed by the gateway with 1001 \
                 ({} at max_connection, {} after the idle timeout), each a reconnect",
                c.opened,
                c.closed_by_gateway(),
                c.closed_max_connection,
                c.closed_idle
            )?;
            if c.peak_closes_per_minute > 0 {
                writeln!(
                    f,
                    "  reconnect wave: {} closes in the minute ending at {} s",
                    c.peak_closes_per_minute, c.peak_closes_at_s
                )?;
            }
            if c.peak_backlog > 0 {
                writeln!(
                    f,
                    "  waiting for the connect rate: {} sessions at the peak, {} session-seconds in all",
                    c.peak_backlog, c.backlog_session_seconds
                )?;
            }
        }
        let q = &self.queue;
        if q.served > 0 {
            writeln!(
                f,
                "\norchestrator queue: P(wait) {:.4}, Wq {:.5} s (p99 {:.3} s), Lq {:.3}, λ {:.2}/s",
                q.wait_probability, q.mean_wait_s, q.p99_wait_s, q.mean_length, q.arrival_rate
            )?;
        }
        Ok(())
    }
}

fn or_none(s: String) -> String {
    if s.is_empty() { "none".into() } else { s }
}
