//! Stopping a run as soon as a threshold can no longer be met.
//!
//! The planner asks one question of a candidate: does it meet the SLOs? A candidate that
//! has already failed need not be simulated to the end, and most failures show within
//! seconds of the spike (a retry storm, a throttled model). An upper limit on
//! `errors.rate` fails for sure once the errors counted exceed the limit times the most
//! messages the run can send; an upper limit on an e2e or ttft percentile q (or the max)
//! once more answers than (1 − q) times that many lie beyond it. Other figures (means,
//! lower limits, one store's or model's series) never stop a run. A run can also be
//! cancelled from outside, when its answer is no longer needed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use surge_profile::metric::{Comparison, LatencyMetric, MetricRef, RatioMetric, Stat, Threshold};

use surge_model::time::{Nanos, micros};

/// A latency limit being watched.
#[derive(Debug, Clone)]
struct LatencyRule {
    ttft: bool,
    /// Answers at or beyond this many µs count against the limit.
    beyond_us: u64,
    /// Share of answers allowed beyond it (1 − q).
    allowed: f64,
    label: String,
    beyond: u64,
}

/// The thresholds a run stops on, and what it has seen of them.
#[derive(Debug, Clone)]
pub(crate) struct EarlyStop {
    /// Most messages the run can send: the schedule's expectation plus Poisson noise.
    most_messages: f64,
    errors: Option<(f64, String)>,
    latencies: Vec<LatencyRule>,
    cancel: Option<Arc<AtomicBool>>,
}

/// What [`EarlyStop::violated`] says of a cancelled run.
pub(crate) const CANCELLED: &str = "cancelled: its answer was no longer needed";

impl EarlyStop {
    /// Watches the thresholds of `thresholds` that can fail before the end, and `cancel`;
    /// `None` when there is nothing to watch.
    pub fn new(
        thresholds: &[Threshold],
        expected_messages: f64,
        cancel: Option<Arc<AtomicBool>>,
    ) -> Option<Self> {
        let upper = |c: Comparison| matches!(c, Comparison::Less | Comparison::LessOrEqual);
        let mut errors = None;
        let mut latencies = Vec::new();
        for t in thresholds.iter().filter(|t| upper(t.comparison)) {
            match &t.metric {
                MetricRef::Ratio(RatioMetric::Errors) => {
                    errors = Some((t.limit.value(), t.to_string()));
                }
                MetricRef::Latency {
                    metric: metric @ (LatencyMetric::E2e | LatencyMetric::Ttft),
                    qualifier: None,
                    stat,
                } => {
                    let allowed = match stat {
                        Stat::P50 => 0.5,
                        Stat::P90 => 0.1,
                        Stat::P99 => 0.01,
                        Stat::P999 => 0.001,
                        Stat::Max => 0.0,
                        Stat::Mean => continue,
                    };
                    let limit_us = (t.limit.value() * 1e3).round() as u64;
                    latencies.push(LatencyRule {
                        ttft: *metric == LatencyMetric::Ttft,
                        // `< L` fails at L itself, `<= L` only beyond.
                        beyond_us: match t.comparison {
                            Comparison::Less => limit_us,
                            _ => limit_us + 1,
                        },
                        allowed,
                        label: t.to_string(),
                        beyond: 0,
                    });
                }
                _ => {}
            }
        }
        if errors.is_none() && latencies.is_empty() && cancel.is_none() {
            return None;
        }
        Some(Self {
            most_messages: expected_messages * 1.01 + 6.0 * expected_messages.sqrt() + 100.0,
            errors,
            latencies,
            cancel,
        })
    }

    /// One measured answer.
    #[inline]
    pub fn answered(&mut self, e2e: Nanos, ttft: Nanos) {
        for rule in &mut self.latencies {
            let value = micros(if rule.ttft { ttft } else { e2e });
            rule.beyond += u64::from(value >= rule.beyond_us);
        }
    }

    /// Why the run cannot meet its thresholds any more, given `errors` so far.
    pub fn violated(&self, errors: u64) -> Option<String> {
        if self
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
        {
            return Some(CANCELLED.to_string());
        }
        if let Some((limit, label)) = &self.errors {
            if errors as f64 > limit * self.most_messages {
                return Some(format!(
                    "{label} cannot hold: {errors} errors already, of at most {:.0} messages",
                    self.most_messages
                ));
            }
        }
        self.latencies.iter().find_map(|r| {
            (r.beyond as f64 > r.allowed * self.most_messages).then(|| {
                format!(
                    "{} cannot hold: {} answers already beyond it, of at most {:.0}",
                    r.label, r.beyond, self.most_messages
                )
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thresholds(list: &[(&str, &str)]) -> Vec<Threshold> {
        list.iter()
            .map(|(m, c)| Threshold::parse(m.parse().unwrap(), c).unwrap())
            .collect()
    }

    #[test]
    fn error_budget_and_percentiles_fail_once_certain() {
        let t = thresholds(&[("errors.rate", "< 1%"), ("e2e.p99", "< 2s")]);
        let mut s = EarlyStop::new(&t, 10_000.0, None).unwrap();
        // At most 10,000 × 1.01 + 600 + 100 = 10,800 messages: 108 errors are allowed.
        assert!(s.violated(108).is_none());
        assert!(s.violated(109).unwrap().contains("errors.rate"));
        for _ in 0..108 {
            s.answered(2_000_000_000, 0);
        }
        assert!(s.violated(0).is_none());
        s.answered(2_000_000_000, 0);
        assert!(s.violated(0).unwrap().contains("e2e.p99"));
    }

    #[test]
    fn limits_that_cannot_fail_early_are_ignored() {
        let t = thresholds(&[
            ("e2e.mean", "< 1s"),
            ("ttft:manga_jp.p99", "< 1s"),
            ("e2e.p50", "> 10ms"),
        ]);
        assert!(EarlyStop::new(&t, 1e6, None).is_none());
    }

    #[test]
    fn at_most_counts_the_limit_itself() {
        let t = thresholds(&[("ttft.max", "<= 1s")]);
        let mut s = EarlyStop::new(&t, 100.0, None).unwrap();
        s.answered(0, 1_000_000_000);
        assert!(s.violated(0).is_none());
        s.answered(0, 1_000_001_000);
        assert!(s.violated(0).is_some());
    }

    #[test]
    fn a_cancelled_run_stops_whatever_its_thresholds() {
        let flag = Arc::new(AtomicBool::new(false));
        let s = EarlyStop::new(&[], 100.0, Some(flag.clone())).unwrap();
        assert!(s.violated(0).is_none());
        flag.store(true, Ordering::Relaxed);
        assert_eq!(s.violated(0).as_deref(), Some(CANCELLED));
    }
}
