//! `timeline.csv` rows, one per simulated minute, and the peaks the report quotes.
//!
//! Counters are written as differences over the minute, gauges as their value at the end
//! of the minute (or their peak within it, where the column says `_peak`); rates per
//! second are averages over the minute. The same samples feed [`Peaks`], so the report
//! and the timeline never disagree.

use surge_record::TimelineColumns;

use crate::plan::Plan;
use crate::report::{DynamoPeaks, ModelPeak, Peaks};
use crate::stats::{Counters, ErrorClass};
use surge_model::bedrock;
use surge_model::burst::Burst;
use surge_model::dynamodb::Table;
use surge_model::orchestrator::{Integrals, Orchestrator};
use surge_model::time::{Nanos, secs};

/// One row, in the column order of [`MinuteSampler::columns`].
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub t_s: f64,
    pub sessions_open: u64,
    pub sent: u64,
    pub completed: u64,
    pub errors: Vec<u64>,
    pub extra: Vec<f64>,
}

const FIXED_EXTRA: [&str; 26] = [
    "abandoned",
    "retries",
    "connect_backlog",
    "connections_opened",
    "closed_by_gateway",
    "in_flight",
    "throttles_lambda",
    "throttles_dynamodb",
    "throttles_bedrock",
    "ecs_tasks_running",
    "ecs_tasks_starting",
    "ecs_cpu",
    "orchestrator_queue",
    "orchestrator_queue_peak",
    "lambda_concurrency_peak",
    "lambda_cold_starts",
    "ddb_wru_per_s",
    "ddb_wru_capacity",
    "ddb_rru_per_s",
    "ddb_rru_capacity",
    "cache_hit_rate",
    "semantic_cache_hit_rate",
    "llm_calls",
    "burst_invocations",
    "good",
    "tokens",
];

/// The state a row reads (and resets, for per-minute peaks and usage) in each layer.
pub struct Layers<'a> {
    pub connected: u64,
    pub backlog: u64,
    /// Connections admitted so far, and closed by the gateway (at `max_connection` or
    /// after the idle timeout) so far.
    pub opened: u64,
    pub closed_by_gateway: u64,
    pub in_flight: usize,
    /// The orchestrator and its running totals now.
    pub ecs: Option<(&'a mut Orchestrator, Integrals)>,
    pub burst: Option<&'a mut Burst>,
    pub table: Option<&'a mut Table>,
    pub bedrock: Option<&'a mut bedrock::Capacity>,
}

pub struct MinuteSampler {
    models: usize,
    last_t: Nanos,
    last: Counters,
    last_integrals: Integrals,
    last_cold: u64,
    last_lambda_throttles: u64,
    last_opened: u64,
    last_closed: u64,
    peaks: Peaks,
    model_tpm: Vec<f64>,
}

fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 {
        f64::NAN
    } else {
        n as f64 / d as f64
    }
}

impl MinuteSampler {
    pub fn new(plan: &Plan) -> Self {
        Self {
            models: plan.models.len(),
            last_t: 0,
            last: Counters::default(),
            last_integrals: Integrals::default(),
            last_cold: 0,
            last_lambda_throttles: 0,
            last_opened: 0,
            last_closed: 0,
            peaks: Peaks::default(),
            model_tpm: vec![0.0; plan.models.len()],
        }
    }

    pub fn columns(plan: &Plan) -> TimelineColumns {
        let models = plan.models.iter().flat_map(|m| {
            [
                format!("bedrock_tokens_per_min:{}", m.name),
                format!("bedrock_capacity_per_min:{}", m.name),
            ]
        });
        let extra: Vec<String> = FIXED_EXTRA
            .iter()
            .map(|s| s.to_string())
            .chain(models)
            .collect();
        TimelineColumns::new(ErrorClass::ALL.iter().map(|c| c.name()), extra)
            .expect("column names are fixed and valid")
    }

    /// Samples the minute ending at `now`.
    pub fn sample(&mut self, now: Nanos, c: &Counters, layers: Layers<'_>) -> Row {
        let Layers {
            connected,
            backlog,
            opened,
            closed_by_gateway,
            in_flight,
            ecs,
            burst,
            table,
            bedrock,
        } = layers;
        let minute = secs(now - self.last_t).max(1e-9);
        let last = std::mem::replace(&mut self.last, *c);
        let p = &mut self.peaks;
        let (running, starting, cpu, queue, queue_peak) = match ecs {
            Some((o, integrals)) => {
                let cpu = integrals.cpu_since(&self.last_integrals);
                self.last_integrals = integrals;
                let len = o.queue_len();
                let peak = std::mem::replace(&mut o.queue_peak, len);
                (o.running(), o.starting(), cpu, o.queue_len(), peak)
            }
            None => (0, 0, 0.0, 0, 0),
        };
        p.ecs_tasks = p.ecs_tasks.max(running);
        p.ecs_cpu = p.ecs_cpu.max(cpu);
        p.orchestrator_queue = p.orchestrator_queue.max(queue_peak);
        let (lambda_peak, cold, lambda_throttles) = match burst {
            Some(b) => {
                let peak = b.take_peak();
                let cold = b.cold_starts - std::mem::replace(&mut self.last_cold, b.cold_starts);
                let thr =
                    b.throttles - std::mem::replace(&mut self.last_lambda_throttles, b.throttles);
                (peak, cold, thr)
            }
            None => (0, 0, 0),
        };
        p.lambda_concurrency = p.lambda_concurrency.max(lambda_peak);
        let (w, r) = match table {
            Some(t) => (t.writes.take_usage(), t.reads.take_usage()),
            None => Default::default(),
        };
        let mut bedrock_throttles = 0;
        let mut models = Vec::with_capacity(2 * self.models);
        if let Some(b) = bedrock {
            for (i, tpm) in self.model_tpm.iter_mut().enumerate() {
                let u = b.take_usage(i);
                bedrock_throttles += u.throttles;
                let per_minute = u.tokens / minute * 60.0;
                *tpm = tpm.max(per_minute);
                models.extend([per_minute, u.capacity_per_minute]);
            }
        } else {
            models.resize(2 * self.models, 0.0);
        }
        let opened_now = opened - std::mem::replace(&mut self.last_opened, opened);
        let closed_now =
            closed_by_gateway - std::mem::replace(&mut self.last_closed, closed_by_gateway);
        let mut extra = vec![
            (c.abandoned - last.abandoned) as f64,
            (c.retries - last.retries) as f64,
            backlog as f64,
            opened_now as f64,
            closed_now as f64,
            in_flight as f64,
            lambda_throttles as f64,
            (w.throttles + r.throttles) as f64,
            bedrock_throttles as f64,
            f64::from(running),
            f64::from(starting),
            cpu,
            queue as f64,
            queue_peak as f64,
            f64::from(lambda_peak),
            cold as f64,
            w.units / minute,
            w.capacity_per_second,
            r.units / minute,
            r.capacity_per_second,
            ratio(
                c.cache_hits - last.cache_hits,
                c.cache_lookups - last.cache_lookups,
            ),
            ratio(
                c.semantic_hits - last.semantic_hits,
                c.semantic_lookups - last.semantic_lookups,
            ),
            (c.llm_calls - last.llm_calls) as f64,
            (c.burst_invocations - last.burst_invocations) as f64,
            (c.good - last.good) as f64,
            (c.tokens - last.tokens) as f64,
        ];
        extra.extend(models);
        self.last_t = now;
        Row {
            t_s: secs(now),
            sessions_open: connected,
            sent: c.sent - last.sent,
            completed: c.completed - last.completed,
            errors: c
                .errors
                .iter()
                .zip(last.errors)
                .map(|(a, b)| a - b)
                .collect(),
            extra,
        }
    }

    /// The peaks over the run, completed with the layers' own totals.
    pub fn peaks(
        &self,
        plan: &Plan,
        burst: Option<&Burst>,
        table: Option<&Table>,
        bedrock: Option<&bedrock::Capacity>,
    ) -> Peaks {
        let mut p = self.peaks.clone();
        if let Some(b) = burst {
            p.lambda_cold_starts = b.cold_starts;
            p.lambda_throttles = b.throttles;
        }
        p.dynamodb = table.map(|t| DynamoPeaks {
            wru_per_s: t.writes.peak_per_second,
            wru_capacity: t.writes.capacity(),
            write_throttles: t.writes.throttles,
            rru_per_s: t.reads.peak_per_second,
            rru_capacity: t.reads.capacity(),
            read_throttles: t.reads.throttles,
        });
        p.bedrock = bedrock
            .map(|b| {
                plan.models
                    .iter()
                    .enumerate()
                    .map(|(i, m)| ModelPeak {
                        model: m.name.clone(),
                        tokens_per_minute: self.model_tpm[i],
                        capacity_per_minute: m.model.provisioned_units as f64
                            * m.model.unit_tokens_per_minute as f64
                            + m.model.tokens_per_minute as f64,
                        calls: b.calls(i),
                        throttles: b.throttles(i),
                    })
                    .collect()
            })
            .unwrap_or_default();
        p
    }
}
