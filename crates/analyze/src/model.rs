//! The report data model: plain numbers, no histograms, serializable as the JSON output.
//!
//! Why it exists: every output format (text, Markdown, HTML, JSON, JUnit, `.hgrm`) and
//! `surge compare` render this one structure, so a figure is computed once and can never
//! differ between formats. Latencies are milliseconds; times are seconds since the run start.

use std::collections::BTreeMap;

use serde::Serialize;
use surge_profile::metric::{MetricRef, RatioMetric, Stat};
use surge_record::ThresholdOp;

/// The value of the `schema` field of the JSON report.
pub const REPORT_SCHEMA: &str = "surge.report/v1";

/// A whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub runs: Vec<RunMeta>,
    pub window: WindowInfo,
    /// Whole window, unqualified metrics (`e2e`, `ttft`, …).
    pub overall: Section,
    /// Per stage, store or model, as asked for.
    pub breakdowns: Vec<Breakdown>,
    /// Tags that are neither a base metric nor a known store or model (e.g. from other tools).
    pub other_tags: Vec<LatencyRow>,
    pub generator: Generator,
    pub thresholds: Vec<ThresholdRow>,
    /// Peaks of the timeline's extra columns (simulated runs: ECS, Lambda, DynamoDB, Bedrock…).
    pub infrastructure: Vec<InfraRow>,
    /// summary.json's `cost`, when a run has one.
    pub cost: Option<serde_json::Value>,
    pub charts: Charts,
    /// Problems stepped over while reading (file:line: message).
    pub warnings: Vec<String>,
}

/// One run directory that went into the report.
#[derive(Debug, Clone, Serialize)]
pub struct RunMeta {
    pub path: String,
    /// `simulated` or `measured` (absent without run.json).
    pub kind: Option<String>,
    pub status: Option<String>,
    /// Why an `aborted` run stopped itself: the guard, what it measured, when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breach: Option<String>,
    /// Shards a multi-machine run lost (status `degraded`): which, when, what share of the
    /// offered load went with them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lost_shards: Vec<String>,
    pub profile: Option<String>,
    pub started_at: Option<String>,
    pub shard_logs: usize,
}

/// The time span the report covers.
#[derive(Debug, Clone, Serialize)]
pub struct WindowInfo {
    pub from_s: f64,
    /// `None` when open-ended.
    pub to_s: Option<f64>,
    /// Seconds the rates are computed over.
    pub duration_s: f64,
    /// Interval histograms read inside the window.
    pub intervals: u64,
}

/// Latency and traffic over one span (the window, a stage) or one store / model.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    pub name: String,
    pub duration_s: f64,
    pub latency: Vec<LatencyRow>,
    /// Counts from summary.json or timeline.csv; absent for store and model sections.
    pub traffic: Option<Traffic>,
}

/// The figures of one tag.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencyRow {
    pub tag: String,
    pub count: u64,
    /// Values per second over the section's duration.
    pub rate_per_s: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl LatencyRow {
    /// One statistic, in milliseconds.
    pub fn stat(&self, stat: Stat) -> f64 {
        match stat {
            Stat::P50 => self.p50,
            Stat::P90 => self.p90,
            Stat::P99 => self.p99,
            Stat::P999 => self.p999,
            Stat::Max => self.max,
            Stat::Mean => self.mean,
        }
    }
}

/// Message counts and rates.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Traffic {
    /// Where the counts come from: `summary.json`, `timeline.csv` or `none`.
    pub source: String,
    pub sessions_peak: Option<f64>,
    pub sent: u64,
    pub completed: u64,
    /// Messages sent after their intended time (when recorded).
    pub late: Option<u64>,
    pub errors: BTreeMap<String, u64>,
    pub errors_total: u64,
    pub sent_per_s: f64,
    pub completed_per_s: f64,
    /// errors / sent; `None` when nothing was sent.
    pub error_ratio: Option<f64>,
    /// late / sent; `None` when unknown or nothing was sent.
    pub late_ratio: Option<f64>,
    /// Streamed tokens per second (timeline column `tokens`), when recorded.
    pub tokens_per_s: Option<f64>,
    /// Answers meeting every `[goodput]` SLO (timeline column `good`), when judged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub good: Option<u64>,
    /// good / sent: the share of the traffic served well.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goodput_ratio: Option<f64>,
    /// Good answers per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goodput_per_s: Option<f64>,
    /// Frames that answered no message (measured runs that count them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsolicited: Option<u64>,
    /// Connections opened and how the server ended them (measured runs that count them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections: Option<surge_record::Connections>,
}

/// How the report is broken down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum By {
    Stage,
    Store,
    Model,
}

impl By {
    pub const ALL: [By; 3] = [By::Stage, By::Store, By::Model];

    pub fn name(self) -> &'static str {
        match self {
            By::Stage => "stage",
            By::Store => "store",
            By::Model => "model",
        }
    }
}

/// Sections of one breakdown.
#[derive(Debug, Clone, Serialize)]
pub struct Breakdown {
    pub by: By,
    pub sections: Vec<Section>,
}

/// Was the load generator itself the bottleneck?
#[derive(Debug, Clone, Serialize)]
pub struct Generator {
    /// Scheduling lag (actual − intended send), when recorded.
    pub lag: Option<LatencyRow>,
    /// True when lag p99 exceeds [`crate::analysis::LAG_P99_LIMIT_MS`].
    pub bottleneck: bool,
    pub verdict: String,
}

/// One profile threshold re-evaluated on this report's data.
#[derive(Debug, Clone, Serialize)]
pub struct ThresholdRow {
    /// As the profile names it, e.g. `ttft.p99`.
    pub metric: String,
    /// As the profile writes it, e.g. `< 800ms`.
    pub condition: String,
    pub op: ThresholdOp,
    /// In `unit`.
    pub limit: f64,
    pub measured: Option<f64>,
    /// `ms` for latencies, `ratio` for rates (0.01 = 1 %).
    pub unit: &'static str,
    pub passed: bool,
}

/// Peak (and, when known, capacity) of one timeline column.
#[derive(Debug, Clone, Serialize)]
pub struct InfraRow {
    pub name: String,
    pub peak: f64,
    pub mean: f64,
    pub capacity: Option<f64>,
    /// peak / capacity.
    pub peak_use: Option<f64>,
}

/// Data behind the HTML charts.
#[derive(Debug, Clone, Serialize)]
pub struct Charts {
    /// Width of one point of the latency series, seconds.
    pub bucket_s: f64,
    pub latency: Vec<LatencySeries>,
    /// Groups of timeline series drawn together (throughput, errors, sessions, capacity…).
    pub timeline: Vec<TimelineChart>,
    pub distributions: Vec<Distribution>,
}

/// p50 and p99 of one tag per time bucket.
#[derive(Debug, Clone, Serialize)]
pub struct LatencySeries {
    pub tag: String,
    pub points: Vec<LatencyPoint>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct LatencyPoint {
    pub t_s: f64,
    pub count: u64,
    pub p50: f64,
    pub p99: f64,
}

/// Several timeline columns over time, drawn on one chart.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineChart {
    pub title: String,
    pub unit: String,
    pub series: Vec<NamedSeries>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NamedSeries {
    pub name: String,
    /// `(seconds since run start, value)`.
    pub points: Vec<(f64, f64)>,
}

/// The percentile distribution of one tag, as HdrHistogram's `outputPercentileDistribution`
/// iterates it (5 ticks per half distance); also the content of its `.hgrm` file.
#[derive(Debug, Clone, Serialize)]
pub struct Distribution {
    pub tag: String,
    pub count: u64,
    pub mean_ms: f64,
    pub stdev_ms: f64,
    pub max_ms: f64,
    pub buckets: u32,
    pub sub_buckets: u32,
    pub points: Vec<DistPoint>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct DistPoint {
    pub value_ms: f64,
    /// 0–1.
    pub quantile: f64,
    pub total_count: u64,
}

impl Report {
    /// Every section whose rows are whole-window figures: overall, stores, models.
    fn whole_window_rows(&self) -> impl Iterator<Item = &LatencyRow> {
        let by_tag = self
            .breakdowns
            .iter()
            .filter(|b| b.by != By::Stage)
            .flat_map(|b| b.sections.iter())
            .flat_map(|s| s.latency.iter());
        self.overall
            .latency
            .iter()
            .chain(&self.generator.lag)
            .chain(by_tag)
            .chain(&self.other_tags)
    }

    /// The latency row of a tag over the whole window (`e2e`, `ttft:manga_jp`).
    pub fn row(&self, tag: &str) -> Option<&LatencyRow> {
        self.whole_window_rows().find(|r| r.tag == tag)
    }

    /// The value of a figure (ms for latencies, a fraction for rates); `None` without data.
    pub fn figure(&self, metric: &MetricRef) -> Option<f64> {
        match metric {
            MetricRef::Latency { stat, .. } => {
                let tag = metric.tag()?;
                self.row(&tag)
                    .filter(|r| r.count > 0)
                    .map(|r| r.stat(*stat))
            }
            MetricRef::Ratio(RatioMetric::Errors) => self.overall.traffic.as_ref()?.error_ratio,
            MetricRef::Ratio(RatioMetric::Late) => self.overall.traffic.as_ref()?.late_ratio,
            MetricRef::Ratio(RatioMetric::Goodput) => self.overall.traffic.as_ref()?.goodput_ratio,
        }
    }

    /// Every figure this report can be compared on, in display order.
    pub fn figures(&self) -> Vec<MetricRef> {
        let mut out = Vec::new();
        for row in self.whole_window_rows() {
            let Ok(probe) = format!("{}.p50", row.tag).parse::<MetricRef>() else {
                continue;
            };
            for stat in [Stat::P50, Stat::P90, Stat::P99, Stat::P999, Stat::Max] {
                if let MetricRef::Latency {
                    metric, qualifier, ..
                } = &probe
                {
                    out.push(MetricRef::Latency {
                        metric: *metric,
                        qualifier: qualifier.clone(),
                        stat,
                    });
                }
            }
        }
        out.push(MetricRef::Ratio(RatioMetric::Errors));
        out.push(MetricRef::Ratio(RatioMetric::Late));
        if self
            .figure(&MetricRef::Ratio(RatioMetric::Goodput))
            .is_some()
        {
            out.push(MetricRef::Ratio(RatioMetric::Goodput));
        }
        out
    }

    /// True when every threshold passed.
    pub fn passed(&self) -> bool {
        self.thresholds.iter().all(|t| t.passed)
    }

    /// The kind shared by all runs (`simulated`/`measured`), if they agree.
    pub fn kind(&self) -> Option<&str> {
        let first = self.runs.first()?.kind.as_deref()?;
        self.runs
            .iter()
            .all(|r| r.kind.as_deref() == Some(first))
            .then_some(first)
    }
}
