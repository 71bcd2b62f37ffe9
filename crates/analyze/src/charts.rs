//! Which charts a report has, built from its [`Charts`](crate::model::Charts) data.
//!
//! Why it exists: the SVG module knows how to draw; this module knows what to draw —
//! latency percentiles over time, the percentile distributions, timeline groups, and
//! per-store / per-model comparisons — and which figures each chart labels.

use crate::fmt;
use crate::model::{By, Report};
use crate::svg::{BarChart, Line, LineChart, Mark, XAxis};

/// Every chart of the report, as SVG elements, in page order.
pub fn all(report: &Report) -> Vec<String> {
    let mut out = Vec::new();
    let c = &report.charts;
    let w = &report.window;
    let time_range = Some((w.from_s, w.to_s.unwrap_or(w.from_s + w.duration_s)));
    if !c.latency.is_empty() {
        let lines = c
            .latency
            .iter()
            .flat_map(|s| {
                [
                    Line {
                        name: format!("{} p50", s.tag),
                        points: s.points.iter().map(|p| (p.t_s, p.p50)).collect(),
                    },
                    Line {
                        name: format!("{} p99", s.tag),
                        points: s.points.iter().map(|p| (p.t_s, p.p99)).collect(),
                    },
                ]
            })
            .collect();
        out.push(
            LineChart {
                id: "latency-over-time".into(),
                title: format!("Latency over time (p50 and p99 per {} s)", c.bucket_s),
                y_unit: "ms".into(),
                x_axis: XAxis::Time,
                lines,
                marks: Vec::new(),
                x_range: time_range,
            }
            .render(),
        );
    }
    let charted: Vec<_> = c
        .distributions
        .iter()
        .filter(|d| matches!(d.tag.as_str(), "e2e" | "ttft" | "service"))
        .collect();
    if !charted.is_empty() {
        let mut marks = Vec::new();
        for d in &charted {
            if let Some(row) = report.row(&d.tag) {
                for (q, v, name) in [
                    (0.5, row.p50, "p50"),
                    (0.99, row.p99, "p99"),
                    (0.999, row.p999, "p99.9"),
                ] {
                    marks.push(Mark {
                        x: q,
                        y: v,
                        label: format!("{} {name} {} ms", d.tag, fmt::ms(v)),
                    });
                }
            }
        }
        out.push(
            LineChart {
                id: "distribution".into(),
                title: "Latency by percentile (whole window)".into(),
                y_unit: "ms".into(),
                x_axis: XAxis::InverseQuantile,
                x_range: None,
                lines: charted
                    .iter()
                    .map(|d| Line {
                        name: d.tag.clone(),
                        points: d.points.iter().map(|p| (p.quantile, p.value_ms)).collect(),
                    })
                    .collect(),
                marks,
            }
            .render(),
        );
    }
    for (i, t) in c.timeline.iter().enumerate() {
        out.push(
            LineChart {
                id: format!("timeline-{i}"),
                title: t.title.clone(),
                y_unit: t.unit.clone(),
                x_axis: XAxis::Time,
                lines: t
                    .series
                    .iter()
                    .map(|s| Line {
                        name: s.name.clone(),
                        points: s.points.clone(),
                    })
                    .collect(),
                marks: Vec::new(),
                x_range: time_range,
            }
            .render(),
        );
    }
    for b in report.breakdowns.iter().filter(|b| b.by != By::Stage) {
        let categories: Vec<String> = b.sections.iter().map(|s| s.name.clone()).collect();
        let mut series = Vec::new();
        for tag in ["e2e", "ttft"] {
            for (stat, pick) in [("p50", 0usize), ("p99", 1)] {
                let values: Vec<f64> = b
                    .sections
                    .iter()
                    .map(|s| {
                        s.latency
                            .iter()
                            .find(|r| r.tag.split(':').next() == Some(tag))
                            .map_or(0.0, |r| if pick == 0 { r.p50 } else { r.p99 })
                    })
                    .collect();
                if values.iter().any(|&v| v > 0.0) {
                    series.push((format!("{tag} {stat}"), values));
                }
            }
        }
        if !series.is_empty() {
            out.push(
                BarChart {
                    id: format!("by-{}", b.by.name()),
                    title: format!("Latency by {}", b.by.name()),
                    y_unit: "ms".into(),
                    categories,
                    series,
                }
                .render(),
            );
        }
    }
    out
}
