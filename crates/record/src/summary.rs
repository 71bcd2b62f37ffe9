//! `summary.json`: the headline numbers of one run, versioned `surge.summary/v1`.
//!
//! Why it exists: CI gates, `surge compare` and people read this one small file instead of
//! re-aggregating hlogs. Its shape is fixed by `schema/summary.v1.schema.json` (checked by a
//! test against real writer output); latency is always derived from histograms through
//! [`LatencyStats::from_histogram`], so no percentile in it is ever an average of percentiles.

use std::collections::BTreeMap;
use std::path::Path;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use surge_profile::metric::{MetricRef, RatioMetric, Stat, Threshold};

use crate::error::{Error, Result};
use crate::tag::Tag;

/// The value of the `schema` field of summary.json.
pub const SUMMARY_SCHEMA: &str = "surge.summary/v1";

/// Latency figures of one tag, in **milliseconds** (recorded µs / 1000).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    /// Mean in ms (absent from summaries written before it was added: read as 0).
    #[serde(default)]
    pub mean: f64,
}

/// The quantiles every summary reports, ascending.
const QUANTILES: [f64; 4] = [0.50, 0.90, 0.99, 0.999];

/// HdrHistogram's `value_at_quantile` of each of [`QUANTILES`] and its `mean`, to the bit,
/// in one pass over the recorded buckets instead of five over every bucket (each quantile
/// scans from the first; a summary of many series spent most of its time there).
fn quantiles_and_mean(h: &Histogram<u64>) -> ([u64; 4], f64) {
    let total = h.len();
    let mut at = [0u64; 4];
    if total == 0 {
        return (at, 0.0);
    }
    // The rank each quantile asks for, as `value_at_quantile` computes it.
    let ranks = QUANTILES.map(|q| ((q * total as f64).ceil() as u64).max(1));
    let (mut next, mut seen, mut mean) = (0, 0u64, 0.0_f64);
    for v in h.iter_recorded() {
        let count = v.count_at_value();
        seen += count;
        while next < ranks.len() && seen >= ranks[next] {
            at[next] = v.value_iterated_to();
            next += 1;
        }
        // The same terms in the same order as `Histogram::mean`.
        mean += h.median_equivalent(v.value_iterated_to()) as f64 * count as f64 / total as f64;
    }
    (at, mean)
}

impl LatencyStats {
    /// From a histogram of counts (tokens per answer): the same figures, not scaled.
    pub fn from_counts(h: &Histogram<u64>) -> LatencyStats {
        let ([p50, p90, p99, p999], mean) = quantiles_and_mean(h);
        LatencyStats {
            count: h.len(),
            p50: p50 as f64,
            p90: p90 as f64,
            p99: p99 as f64,
            p999: p999 as f64,
            max: h.max() as f64,
            mean,
        }
    }

    /// The figures of a tag's histogram in its unit: ms for latencies, counts for tokens.
    pub fn of(tag: &Tag, h: &Histogram<u64>) -> LatencyStats {
        if tag.metric().is_count() {
            Self::from_counts(h)
        } else {
            Self::from_histogram(h)
        }
    }

    /// From a µs histogram. Percentiles are HdrHistogram's `value_at_quantile` (the highest
    /// value equivalent to the bucket holding that rank), max is the highest equivalent of the
    /// recorded max. An empty histogram gives count 0 and zeros.
    pub fn from_histogram(h: &Histogram<u64>) -> LatencyStats {
        let ms = |us: u64| us as f64 / 1000.0;
        let ([p50, p90, p99, p999], mean) = quantiles_and_mean(h);
        LatencyStats {
            count: h.len(),
            p50: ms(p50),
            p90: ms(p90),
            p99: ms(p99),
            p999: ms(p999),
            max: ms(h.max()),
            mean: mean / 1000.0,
        }
    }
}

/// Message and session counts over the whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Sessions opened.
    pub sessions: u64,
    /// Messages sent.
    pub sent: u64,
    /// Messages answered completely (done frame received).
    pub completed: u64,
    /// Messages that were due while the previous answer was still streaming.
    pub late: u64,
    /// Frames that answered no message (greetings, typing indicators, pushes, pongs):
    /// counted, not errors (absent from summaries written before it was added: read as 0).
    #[serde(default)]
    pub unsolicited: u64,
    /// Messages whose user gave up waiting (`traffic.abandon_after` from the intended
    /// time): user behaviour, not an error, and not in the latencies (absent before it was
    /// added: read as 0).
    #[serde(default)]
    pub abandoned: u64,
    /// Messages sent again after an error or a throttle (`traffic.retry_after_error`);
    /// also counted in `sent`.
    #[serde(default)]
    pub retries: u64,
}

/// The connections of a measured run: how many, and how the server ended them.
///
/// A session may connect several times in one window: after the server closed an idle
/// connection (API Gateway's idle timeout closes with 1001) or after a failure.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connections {
    /// Connections opened (first connections and reconnects).
    pub opened: u64,
    /// Connections opened by a session that had already connected in the same window.
    pub reconnects: u64,
    /// Keepalive frames or pings sent (`[protocol] keepalive`).
    #[serde(default)]
    pub keepalives: u64,
    /// Connections the server ended, by close code (`"1001"`; `"1006"`: dropped without a
    /// close frame, `"1005"`: a close frame without a code). Only codes seen are listed.
    pub closed_by_server: BTreeMap<String, u64>,
}

/// Rates over the run's duration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    pub sent_per_s: f64,
    pub completed_per_s: f64,
    pub errors_per_s: f64,
    /// errors / sent (0 when nothing was sent).
    pub error_ratio: f64,
    /// late / sent (0 when nothing was sent).
    pub late_ratio: f64,
}

impl Rates {
    /// Derive the rates; a zero or negative duration gives zero per-second rates.
    pub fn from_counts(counts: &Counts, errors_total: u64, duration_s: f64) -> Rates {
        let per_s = |n: u64| {
            if duration_s > 0.0 && duration_s.is_finite() {
                n as f64 / duration_s
            } else {
                0.0
            }
        };
        let ratio = |n: u64| {
            if counts.sent == 0 {
                0.0
            } else {
                n as f64 / counts.sent as f64
            }
        };
        Rates {
            sent_per_s: per_s(counts.sent),
            completed_per_s: per_s(counts.completed),
            errors_per_s: per_s(errors_total),
            error_ratio: ratio(errors_total),
            late_ratio: ratio(counts.late),
        }
    }
}

/// A shard that stopped reporting mid-run: which, when, and what the run lost with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LostShard {
    pub shard: u32,
    /// Run time of the end of its last interval report, seconds.
    pub last_report_s: f64,
    /// Run time at which the coordinator declared it lost, seconds.
    pub lost_at_s: f64,
    /// Why: the connection ended without its closing report, or it fell silent.
    pub why: String,
    /// Share of the whole run's offered load (messages due) that was this shard's after its
    /// last report: load the rehearsal did not send.
    pub offered_share_lost: f64,
}

/// How much of the traffic was served well: answers meeting every `[goodput]` SLO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Goodput {
    /// Good answers / messages sent (an error or a timeout is not a good answer).
    pub ratio: f64,
    /// Good answers per second of the run.
    pub per_s: f64,
    pub good: u64,
    /// The SLOs judged, in ms, by name (`ttft`, `e2e`, `tpot`).
    pub slo_ms: BTreeMap<String, f64>,
    /// Per store and per model (`store:manga_jp`, `model:sonnet`): good answers among that
    /// scope's answers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_scope: BTreeMap<String, ScopeGoodput>,
}

/// Goodput of one store or model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScopeGoodput {
    /// Good answers / this scope's answers.
    pub ratio: f64,
    pub per_s: f64,
    pub good: u64,
    pub answers: u64,
}

impl Goodput {
    /// From counts: `good` of `sent` messages over `duration_s`, and per scope (good, answers).
    pub fn from_counts(
        good: u64,
        sent: u64,
        duration_s: f64,
        slo_ms: &[(&str, f64)],
        scopes: impl IntoIterator<Item = (String, (u64, u64))>,
    ) -> Goodput {
        let share = |n: u64, of: u64| if of == 0 { 0.0 } else { n as f64 / of as f64 };
        let per_s = |n: u64| {
            if duration_s > 0.0 {
                n as f64 / duration_s
            } else {
                0.0
            }
        };
        Goodput {
            ratio: share(good, sent),
            per_s: per_s(good),
            good,
            slo_ms: slo_ms.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            by_scope: scopes
                .into_iter()
                .map(|(scope, (good, answers))| {
                    let s = ScopeGoodput {
                        ratio: share(good, answers),
                        per_s: per_s(good),
                        good,
                        answers,
                    };
                    (scope, s)
                })
                .collect(),
        }
    }
}

/// Comparison operator of a threshold: the profile's, serialized as `<`, `<=`, `>`, `>=`.
pub use surge_profile::metric::Comparison as ThresholdOp;

/// One threshold and how the run did against it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdVerdict {
    /// What was measured, as the profile names it (e.g. `latency_ms.ttft.p99`, `error_ratio`).
    pub metric: String,
    pub op: ThresholdOp,
    pub limit: f64,
    /// `None` when the run produced no data for it (which fails the threshold).
    pub measured: Option<f64>,
    pub passed: bool,
}

impl ThresholdVerdict {
    /// Evaluate: passes iff there is a finite measurement and `measured <op> limit`.
    pub fn evaluate(
        metric: impl Into<String>,
        op: ThresholdOp,
        limit: f64,
        measured: Option<f64>,
    ) -> ThresholdVerdict {
        let measured = measured.filter(|m| m.is_finite());
        ThresholdVerdict {
            metric: metric.into(),
            op,
            limit,
            measured,
            passed: measured.is_some_and(|m| op.holds(m, limit)),
        }
    }
}

/// The content of `summary.json`. Build with [`Summary::new`], fill the public fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    #[serde(deserialize_with = "schema_summary")]
    schema: String,
    /// Length of the measured window, seconds: the schedule's, or the part of it run
    /// before a stop. Answers landing after it (the drain) count but do not lengthen it,
    /// so a simulated and a measured run of one profile divide by the same span.
    pub duration_s: f64,
    pub counts: Counts,
    pub rates: Rates,
    /// Per tag (`e2e`, `ttft:manga_jp`, `tpot`, …).
    pub latency_ms: BTreeMap<Tag, LatencyStats>,
    /// Token counts per answer, per tag (`tokens`, `input_tokens:sonnet`): counts, not ms.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tokens: BTreeMap<Tag, LatencyStats>,
    /// Answers meeting the profile's `[goodput]` SLOs (absent without them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goodput: Option<Goodput>,
    /// Error counts by class (e.g. `timeout`, `throttled`, `ws_closed`).
    pub errors: BTreeMap<String, u64>,
    pub thresholds: Vec<ThresholdVerdict>,
    /// Connections opened and how the server ended them (measured runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<Connections>,
    /// Shards of a multi-machine run lost mid-run (run status `degraded`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost_shards: Vec<LostShard>,
    /// Cost model output (simulated runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<serde_json::Value>,
    /// Further headline figures (e.g. simulator peaks), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, serde_json::Value>,
}

fn schema_summary<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if s == SUMMARY_SCHEMA {
        Ok(s)
    } else {
        Err(serde::de::Error::custom(format_args!(
            "unsupported schema {s:?}, expected {SUMMARY_SCHEMA:?}"
        )))
    }
}

impl Summary {
    /// The value of a figure named the profile's way (`ttft.p99`, `e2e:haiku.mean`,
    /// `errors.rate`): milliseconds for latencies, a fraction for ratios; `None` when the
    /// run recorded nothing under that tag.
    pub fn measure(&self, metric: &MetricRef) -> Option<f64> {
        match metric {
            MetricRef::Latency { stat, .. } => {
                let tag: Tag = metric.tag()?.parse().ok()?;
                let s = self.figures_of(&tag)?;
                Some(match stat {
                    Stat::P50 => s.p50,
                    Stat::P90 => s.p90,
                    Stat::P99 => s.p99,
                    Stat::P999 => s.p999,
                    Stat::Max => s.max,
                    Stat::Mean => s.mean,
                })
            }
            MetricRef::Ratio(RatioMetric::Errors) => Some(self.rates.error_ratio),
            MetricRef::Ratio(RatioMetric::Late) => Some(self.rates.late_ratio),
            MetricRef::Ratio(RatioMetric::Goodput) => self.goodput.as_ref().map(|g| g.ratio),
        }
    }

    /// A tag's figures: from `tokens` for token counts, else from `latency_ms`.
    pub fn figures_of(&self, tag: &Tag) -> Option<&LatencyStats> {
        if tag.metric().is_count() {
            self.tokens.get(tag)
        } else {
            self.latency_ms.get(tag)
        }
    }

    /// The lines a printed report gives the LLM measures: output tokens and TPOT per answer,
    /// and goodput overall and per store and model. Empty when the run has none of them.
    pub fn llm_lines(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let tokens = self.tokens.get(&Tag::metric_only(crate::Metric::Tokens));
        let tpot = self.latency_ms.get(&Tag::metric_only(crate::Metric::Tpot));
        if let Some(t) = tokens {
            let _ = write!(
                out,
                "output tokens per answer  p50 {:.0}  p99 {:.0}  mean {:.1}",
                t.p50, t.p99, t.mean
            );
            if let Some(p) = tpot {
                let _ = write!(out, "   TPOT p50 {:.1} ms  p99 {:.1} ms", p.p50, p.p99);
            }
            out.push('\n');
        }
        if let Some(g) = &self.goodput {
            let slos: Vec<String> = g
                .slo_ms
                .iter()
                .map(|(k, v)| format!("{k} ≤ {v} ms"))
                .collect();
            let _ = writeln!(
                out,
                "goodput {:.2}% of messages sent ({:.1} good answers/s) meeting {}",
                g.ratio * 100.0,
                g.per_s,
                slos.join(", ")
            );
            for (scope, s) in &g.by_scope {
                let _ = writeln!(
                    out,
                    "  {scope:<24} {:.2}% of its {} answers",
                    s.ratio * 100.0,
                    s.answers
                );
            }
        }
        out
    }

    /// Fills `latency_ms` and `tokens` from per-tag histograms, each in its unit.
    pub fn set_histograms<'a>(
        &mut self,
        totals: impl IntoIterator<Item = (&'a Tag, &'a Histogram<u64>)>,
    ) {
        for (tag, h) in totals {
            let stats = LatencyStats::of(tag, h);
            if tag.metric().is_count() {
                self.tokens.insert(tag.clone(), stats);
            } else {
                self.latency_ms.insert(tag.clone(), stats);
            }
        }
    }

    /// Evaluates `thresholds` against this summary.
    pub fn evaluate(&self, thresholds: &[Threshold]) -> Vec<ThresholdVerdict> {
        thresholds
            .iter()
            .map(|t| {
                ThresholdVerdict::evaluate(
                    t.metric.to_string(),
                    t.comparison,
                    t.limit.value(),
                    self.measure(&t.metric),
                )
            })
            .collect()
    }

    /// An empty summary for a run of `duration_s` seconds.
    pub fn new(duration_s: f64) -> Summary {
        Summary {
            schema: SUMMARY_SCHEMA.to_string(),
            duration_s,
            counts: Counts::default(),
            rates: Rates::default(),
            latency_ms: BTreeMap::new(),
            tokens: BTreeMap::new(),
            goodput: None,
            errors: BTreeMap::new(),
            thresholds: Vec::new(),
            connections: None,
            lost_shards: Vec::new(),
            cost: None,
            extra: BTreeMap::new(),
        }
    }

    /// The `schema` string (always [`SUMMARY_SCHEMA`]).
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Sum of `errors`.
    pub fn errors_total(&self) -> u64 {
        self.errors.values().fold(0u64, |a, &b| a.saturating_add(b))
    }

    /// Recompute `rates` from `counts`, `errors` and `duration_s`.
    pub fn compute_rates(&mut self) {
        self.rates = Rates::from_counts(&self.counts, self.errors_total(), self.duration_s);
    }

    /// True when every threshold passed (and vacuously when there are none).
    pub fn passed(&self) -> bool {
        self.thresholds.iter().all(|t| t.passed)
    }

    /// Reject NaN/∞ in typed float fields (JSON cannot hold them; serde_json would write
    /// `null` and the file would not read back). `path` is for the message.
    pub(crate) fn check_finite(&self, path: &Path) -> Result<()> {
        let r = &self.rates;
        let mut fields: Vec<(String, f64)> = vec![
            ("duration_s".into(), self.duration_s),
            ("rates.sent_per_s".into(), r.sent_per_s),
            ("rates.completed_per_s".into(), r.completed_per_s),
            ("rates.errors_per_s".into(), r.errors_per_s),
            ("rates.error_ratio".into(), r.error_ratio),
            ("rates.late_ratio".into(), r.late_ratio),
        ];
        for (tag, s) in &self.latency_ms {
            for (name, v) in [
                ("p50", s.p50),
                ("p90", s.p90),
                ("p99", s.p99),
                ("p999", s.p999),
                ("max", s.max),
            ] {
                fields.push((format!("latency_ms.{tag}.{name}"), v));
            }
        }
        for (i, t) in self.thresholds.iter().enumerate() {
            fields.push((format!("thresholds[{i}].limit"), t.limit));
            if let Some(m) = t.measured {
                fields.push((format!("thresholds[{i}].measured"), m));
            }
        }
        match fields.into_iter().find(|(_, v)| !v.is_finite()) {
            None => Ok(()),
            Some((field, value)) => Err(Error::NonFinite {
                path: path.to_path_buf(),
                field,
                value,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One pass gives what hdrhistogram's own `value_at_quantile` and `mean` give, to the
    /// bit: on histograms of one value, of a few, of many spread over six decades, and empty.
    #[test]
    fn one_pass_agrees_with_hdrhistogram_to_the_bit() {
        let mut next = crate::xorshift(0x2545_f491_4f6c_dd1d_u64);
        let mut cases = vec![crate::recorder::new_histogram()];
        for (values, spread) in [
            (1, 1),
            (3, 1_000),
            (1_000, 1_000_000),
            (200_000, 3_000_000_000),
        ] {
            let mut h = crate::recorder::new_histogram();
            for _ in 0..values {
                let v = next() % spread + 1;
                h.record_n(v, next() % 5 + 1).unwrap();
            }
            cases.push(h);
        }
        for h in &cases {
            let (at, mean) = quantiles_and_mean(h);
            let theirs = QUANTILES.map(|q| h.value_at_quantile(q));
            assert_eq!(at, theirs, "{} values", h.len());
            assert_eq!(mean.to_bits(), h.mean().to_bits(), "{} values", h.len());
        }
    }

    #[test]
    fn latency_stats_from_histogram() {
        let mut h = crate::recorder::new_histogram();
        for v in 1..=10_000u64 {
            h.record(v * 100).unwrap(); // 0.1 ms .. 1000 ms
        }
        let s = LatencyStats::from_histogram(&h);
        assert_eq!(s.count, 10_000);
        assert!((s.p50 - 500.0).abs() / 500.0 < 0.001, "{s:?}");
        assert!((s.p99 - 990.0).abs() / 990.0 < 0.001, "{s:?}");
        assert!((s.max - 1000.0).abs() / 1000.0 < 0.001, "{s:?}");
        let empty = LatencyStats::from_histogram(&crate::recorder::new_histogram());
        assert_eq!(empty.count, 0);
        assert_eq!(empty.max, 0.0);
    }

    #[test]
    fn thresholds_evaluate() {
        let t = ThresholdVerdict::evaluate(
            "latency_ms.e2e.p99",
            ThresholdOp::Less,
            2000.0,
            Some(1500.0),
        );
        assert!(t.passed);
        let t = ThresholdVerdict::evaluate("x", ThresholdOp::Less, 1.0, None);
        assert!(!t.passed);
        let t = ThresholdVerdict::evaluate("x", ThresholdOp::GreaterOrEqual, 1.0, Some(f64::NAN));
        assert!(!t.passed && t.measured.is_none());
        assert_eq!(
            serde_json::to_string(&ThresholdOp::LessOrEqual).unwrap(),
            "\"<=\""
        );
    }

    #[test]
    fn rates_never_nan() {
        let c = Counts {
            sessions: 1,
            sent: 0,
            completed: 0,
            late: 0,
            unsolicited: 0,
            abandoned: 0,
            retries: 0,
        };
        let r = Rates::from_counts(&c, 0, 0.0);
        assert_eq!(r, Rates::default());
    }

    #[test]
    fn wrong_schema_is_rejected() {
        let mut v = serde_json::to_value(Summary::new(1.0)).unwrap();
        v["schema"] = "surge.summary/v2".into();
        let e = serde_json::from_value::<Summary>(v)
            .unwrap_err()
            .to_string();
        assert!(e.contains("surge.summary/v2"), "{e}");
    }
}
