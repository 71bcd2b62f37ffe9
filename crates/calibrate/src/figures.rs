//! The figures a fit matches: per run, the latency percentiles its users saw (overall,
//! per store and per model; e2e, TTFT, inter-token latency), its error ratio, and the
//! server's busy workers when the run scraped them — measured on one side, simulated
//! from the run's own traffic on the other.

use serde::Serialize;
use surge_record::{Metric, Summary, Tag};
use surge_sim::SimOutcome;

use crate::runs::MeasuredRun;

/// Which statistic of a run a figure is.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantity {
    /// A latency percentile of a tag, in ms.
    Latency { tag: String, percentile: u8 },
    /// Errors over messages sent.
    ErrorRatio,
    /// Mean orchestrator workers holding a message.
    BusyWorkers,
}

/// One figure to match.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    /// Index of the run it belongs to.
    pub run: usize,
    /// `all`, `store:<name>`, `model:<name>`, `server`.
    pub scope: String,
    /// `e2e.p99`, `ttft.p50`, `itl.p90`, `errors.ratio`, `busy_workers.mean`.
    pub metric: String,
    #[serde(skip)]
    pub quantity: Quantity,
    pub measured: f64,
    /// How much the figure counts in the fit.
    #[serde(skip)]
    pub weight: f64,
}

/// Answers needed before a tag's percentiles are matched (fewer are too noisy to say much).
pub const MIN_COUNT: u64 = 30;
/// Answers above which a p99 counts fully; below, in proportion.
const FULL_P99: u64 = 1000;

const METRICS: [Metric; 3] = [Metric::E2e, Metric::Ttft, Metric::Itl];

fn scope(tag: &Tag, run: &MeasuredRun) -> String {
    match tag.qualifier() {
        None => "all".into(),
        Some(q) => {
            let is_store = run
                .system
                .as_ref()
                .is_some_and(|s| s.stores.contains_key(q));
            if is_store {
                format!("store:{q}")
            } else {
                format!("model:{q}")
            }
        }
    }
}

/// The figures of `run` (index `index`).
pub fn of_run(index: usize, run: &MeasuredRun) -> Vec<Figure> {
    let mut out = Vec::new();
    let answers = run.summary.counts.completed.max(1) as f64;
    for (tag, stats) in &run.summary.latency_ms {
        if !METRICS.contains(&tag.metric()) || stats.count < MIN_COUNT {
            continue;
        }
        for (percentile, value) in [(50, stats.p50), (90, stats.p90), (99, stats.p99)] {
            if value <= 0.0 {
                continue;
            }
            // A scope counts by its share of the run's answers (a store with a tenth of
            // the traffic says a tenth as much, and its percentiles are that much noisier),
            // and a tail percentile by the answers beyond it.
            let share = (stats.count as f64 / answers).min(1.0);
            let weight = match (tag.metric(), percentile) {
                // Reported, not fitted: a measured gap between tokens carries the jitter of
                // timers, network and batching, which the model does not describe, so its
                // percentiles would pull the output rate away from what e2e − TTFT says.
                (Metric::Itl, _) => 0.0,
                (_, 99) => share * (stats.count as f64 / FULL_P99 as f64).min(1.0),
                _ => share,
            };
            out.push(Figure {
                run: index,
                scope: scope(tag, run),
                metric: format!("{}.p{percentile}", tag.metric().name()),
                quantity: Quantity::Latency {
                    tag: tag.to_string(),
                    percentile,
                },
                measured: value,
                weight,
            });
        }
    }
    out.push(Figure {
        run: index,
        scope: "all".into(),
        metric: "errors.ratio".into(),
        quantity: Quantity::ErrorRatio,
        measured: run.summary.rates.error_ratio,
        weight: 1.0,
    });
    if let Some(busy) = run.telemetry.busy_workers.filter(|b| b.mean > 0.0) {
        let latencies: f64 = out.iter().map(|f| f.weight).sum();
        out.push(Figure {
            run: index,
            scope: "server".into(),
            metric: "busy_workers.mean".into(),
            quantity: Quantity::BusyWorkers,
            measured: busy.mean,
            // The utilisation law: busy workers are messages per second times the mean
            // service time. Integrated over the run it is known to a few percent from a
            // few hundred messages, where a p99 of as many moves by ten or more from run to
            // run (one long busy period sets it); so it weighs as much as all the run's
            // latencies together, and pins the service time's mean while they shape the
            // rest. Sampled once an interval it sees instants only, and weighs like two.
            weight: if busy.integrated {
                latencies.max(1.0)
            } else {
                2.0
            },
        });
    }
    out
}

/// A figure's value in one simulated replay of its run; `None` when the replay has no
/// answer under that tag.
fn simulated_once(q: &Quantity, outcome: &SimOutcome) -> Option<f64> {
    match q {
        Quantity::Latency { tag, percentile } => {
            let tag: Tag = tag.parse().ok()?;
            let s = outcome.summary.latency_ms.get(&tag)?;
            if s.count == 0 {
                return None;
            }
            Some(match percentile {
                50 => s.p50,
                90 => s.p90,
                _ => s.p99,
            })
        }
        Quantity::ErrorRatio => Some(outcome.summary.rates.error_ratio),
        Quantity::BusyWorkers => {
            let r = &outcome.report;
            let step = r.steps.iter().find(|s| s.step == "orchestrator_cpu")?;
            let busy_s = step.messages as f64 * step.mean_ms / 1000.0;
            (r.duration_s > 0.0).then(|| busy_s / r.duration_s)
        }
    }
}

/// A figure's value over several replays of its run: the mean of the replays that have it.
pub fn simulated(q: &Quantity, outcomes: &[&SimOutcome]) -> Option<f64> {
    let values: Vec<f64> = outcomes
        .iter()
        .filter_map(|o| simulated_once(q, o))
        .collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// How far `simulated` is from `measured`, as the fit counts it: the log ratio for
/// latencies and busy workers (so 10 % too high and 10 % too low weigh alike), ten times
/// the difference for the error ratio (one point of errors counts like a 10 % miss). A
/// missing simulated figure counts as a miss by a factor of e.
pub fn miss(figure: &Figure, simulated: Option<f64>) -> f64 {
    let Some(sim) = simulated else { return 1.0 };
    match figure.quantity {
        Quantity::ErrorRatio => 10.0 * (sim - figure.measured),
        _ if figure.measured <= 0.0 || sim <= 0.0 => 1.0,
        _ => (sim / figure.measured).ln(),
    }
}

/// The relative error `simulated / measured - 1` a report shows (the difference for
/// the error ratio).
pub fn error(figure: &Figure, simulated: Option<f64>) -> Option<f64> {
    let sim = simulated?;
    Some(match figure.quantity {
        Quantity::ErrorRatio => sim - figure.measured,
        _ if figure.measured == 0.0 => return None,
        _ => sim / figure.measured - 1.0,
    })
}

/// The summary figure a tag's stats come from, for tests and reports.
pub fn measured_count(summary: &Summary, tag: &str) -> u64 {
    tag.parse::<Tag>()
        .ok()
        .and_then(|t| summary.latency_ms.get(&t).map(|s| s.count))
        .unwrap_or(0)
}
