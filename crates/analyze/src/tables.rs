//! The report as titled tables of formatted cells — the shape text, Markdown and HTML share.
//!
//! Why it exists: three writers print the same tables. Choosing what goes in each table,
//! in what order and with what formatting happens here once; a writer only decides how a
//! table looks (aligned columns, pipes, `<table>`).

use crate::fmt;
use crate::model::*;

/// One table: a title, a header row and body rows of formatted cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Stable identifier (used as an HTML anchor), e.g. `latency`.
    pub id: String,
    pub title: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Number of leading text columns (left-aligned); the rest are numbers.
    pub text_columns: usize,
    /// A sentence printed under the table.
    pub note: Option<String>,
}

impl Table {
    /// An empty table; `text_columns` leading columns are text, the rest numbers.
    pub fn new(id: &str, title: impl Into<String>, header: &[&str], text_columns: usize) -> Table {
        Table {
            id: id.to_string(),
            title: title.into(),
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
            text_columns,
            note: None,
        }
    }
}

/// `✓` or `✗`.
pub fn mark(passed: bool) -> &'static str {
    if passed { "✓" } else { "✗" }
}

const LATENCY_HEADER: [&str; 9] = [
    "count", "rate/s", "mean", "p50", "p90", "p99", "p99.9", "max", "",
];

fn latency_cells(r: &LatencyRow) -> Vec<String> {
    vec![
        fmt::count(r.count),
        fmt::num(r.rate_per_s),
        fmt::ms(r.mean),
        fmt::ms(r.p50),
        fmt::ms(r.p90),
        fmt::ms(r.p99),
        fmt::ms(r.p999),
        fmt::ms(r.max),
    ]
}

fn latency_table(
    id: &str,
    title: String,
    first: &[&str],
    rows: Vec<(Vec<String>, &LatencyRow)>,
) -> Table {
    let header: Vec<&str> = first
        .iter()
        .copied()
        .chain(LATENCY_HEADER[..8].iter().copied())
        .collect();
    let mut t = Table::new(id, title, &header, first.len());
    for (lead, r) in rows {
        t.rows
            .push(lead.into_iter().chain(latency_cells(r)).collect());
    }
    t
}

/// A one-line description of the window.
pub fn window_label(report: &Report) -> String {
    let w = &report.window;
    match w.to_s {
        Some(to) => format!(
            "window {}–{} since start",
            fmt::secs(w.from_s),
            fmt::secs(to)
        ),
        None if w.from_s > 0.0 => format!("window from {} since start", fmt::secs(w.from_s)),
        None => format!("whole run, {}", fmt::secs(w.duration_s)),
    }
}

/// Every table of a report, in reading order.
pub fn report_tables(report: &Report) -> Vec<Table> {
    let mut out = Vec::new();
    out.push(runs_table(report));
    out.push(latency_table(
        "latency",
        format!("Latency (ms), {}", window_label(report)),
        &["metric"],
        report
            .overall
            .latency
            .iter()
            .map(|r| (vec![r.tag.clone()], r))
            .collect(),
    ));
    if let Some(t) = &report.overall.traffic {
        out.push(traffic_table(t));
        if t.errors_total > 0 {
            let mut e = Table::new(
                "errors",
                "Errors by class",
                &["class", "count", "share of sent"],
                1,
            );
            for (class, n) in t.errors.iter().filter(|(_, n)| **n > 0) {
                let share = if t.sent > 0 {
                    *n as f64 / t.sent as f64
                } else {
                    0.0
                };
                e.rows
                    .push(vec![class.clone(), fmt::count(*n), fmt::pct(share)]);
            }
            out.push(e);
        }
    }
    out.push(thresholds_table(report));
    out.push(generator_table(report));
    for b in &report.breakdowns {
        out.push(latency_table(
            &format!("by-{}", b.by.name()),
            format!("Latency (ms) by {}", b.by.name()),
            &[b.by.name(), "metric"],
            b.sections
                .iter()
                .flat_map(|s| {
                    s.latency
                        .iter()
                        .map(move |r| (vec![s.name.clone(), r.tag.clone()], r))
                })
                .collect(),
        ));
        if b.by == By::Stage {
            out.push(stage_traffic_table(b));
        }
    }
    if !report.other_tags.is_empty() {
        out.push(latency_table(
            "other-tags",
            "Other tags (ms)".to_string(),
            &["tag"],
            report
                .other_tags
                .iter()
                .map(|r| (vec![r.tag.clone()], r))
                .collect(),
        ));
    }
    if !report.infrastructure.is_empty() {
        out.push(infra_table(report));
    }
    if let Some(cost) = &report.cost {
        out.push(cost_table(cost));
    }
    out.retain(|t| !t.rows.is_empty());
    out
}

fn runs_table(report: &Report) -> Table {
    let mut t = Table::new(
        "runs",
        "Runs",
        &[
            "run directory",
            "kind",
            "status",
            "profile",
            "started",
            "shard logs",
        ],
        5,
    );
    for r in &report.runs {
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "–".to_string());
        t.rows.push(vec![
            r.path.clone(),
            opt(&r.kind),
            match (&r.status, &r.breach) {
                (Some(status), Some(breach)) => format!("{status}: {breach}"),
                (Some(status), None) if !r.lost_shards.is_empty() => {
                    format!("{status}: {}", r.lost_shards.join("; "))
                }
                (status, _) => opt(status),
            },
            opt(&r.profile),
            opt(&r.started_at),
            r.shard_logs.to_string(),
        ]);
    }
    t
}

fn traffic_table(tr: &Traffic) -> Table {
    let mut t = Table::new(
        "traffic",
        format!("Traffic (from {})", tr.source),
        &["figure", "value"],
        1,
    );
    let mut row = |k: &str, v: String| t.rows.push(vec![k.to_string(), v]);
    if let Some(p) = tr.sessions_peak {
        row("sessions open, peak", fmt::num(p));
    }
    row("messages sent", fmt::count(tr.sent));
    row("messages completed", fmt::count(tr.completed));
    row("sent per second", fmt::num(tr.sent_per_s));
    row("completed per second", fmt::num(tr.completed_per_s));
    row("errors", fmt::count(tr.errors_total));
    row(
        "error rate",
        tr.error_ratio.map_or("–".to_string(), fmt::pct),
    );
    row(
        "late sends",
        tr.late.map_or("not recorded".to_string(), fmt::count),
    );
    row("late rate", tr.late_ratio.map_or("–".to_string(), fmt::pct));
    if let Some(tok) = tr.tokens_per_s {
        row("tokens per second", fmt::num(tok));
    }
    if let (Some(good), Some(ratio)) = (tr.good, tr.goodput_ratio) {
        row("good answers (met every [goodput] SLO)", fmt::count(good));
        row("goodput (share of messages sent)", fmt::pct(ratio));
    }
    if let Some(per_s) = tr.goodput_per_s {
        row("good answers per second", fmt::num(per_s));
    }
    if let Some(n) = tr.unsolicited {
        row("unsolicited frames (not errors)", fmt::count(n));
    }
    if let Some(c) = &tr.connections {
        row("connections opened", fmt::count(c.opened));
        row("reconnects", fmt::count(c.reconnects));
        if c.keepalives > 0 {
            row("keepalives sent", fmt::count(c.keepalives));
        }
        let closed: Vec<String> = c
            .closed_by_server
            .iter()
            .map(|(code, n)| format!("{code} ×{}", fmt::count(*n)))
            .collect();
        row(
            "closed by the server (by close code)",
            if closed.is_empty() {
                "none".to_string()
            } else {
                closed.join(", ")
            },
        );
    }
    t
}

fn stage_traffic_table(b: &Breakdown) -> Table {
    let mut t = Table::new(
        "stage-traffic",
        "Traffic by stage (from timeline.csv)",
        &[
            "stage",
            "duration",
            "sent",
            "sent/s",
            "completed",
            "errors",
            "error rate",
        ],
        1,
    );
    for s in &b.sections {
        let Some(tr) = &s.traffic else { continue };
        t.rows.push(vec![
            s.name.clone(),
            fmt::secs(s.duration_s),
            fmt::count(tr.sent),
            fmt::num(tr.sent_per_s),
            fmt::count(tr.completed),
            fmt::count(tr.errors_total),
            tr.error_ratio.map_or("–".to_string(), fmt::pct),
        ]);
    }
    t
}

/// A threshold's measured value in its unit.
pub fn measured_text(t: &ThresholdRow) -> String {
    match (t.measured, t.unit) {
        (None, _) => "no data".to_string(),
        (Some(m), "ratio") => fmt::pct(m),
        (Some(m), _) => format!("{} ms", fmt::ms(m)),
    }
}

fn thresholds_table(report: &Report) -> Table {
    let mut t = Table::new(
        "thresholds",
        "Thresholds (re-evaluated on this data)",
        &["", "figure", "limit", "measured"],
        3,
    );
    for th in &report.thresholds {
        t.rows.push(vec![
            mark(th.passed).to_string(),
            th.metric.clone(),
            th.condition.clone(),
            measured_text(th),
        ]);
    }
    t
}

fn generator_table(report: &Report) -> Table {
    let g = &report.generator;
    let mut t = latency_table(
        "generator",
        "Generator health (scheduling lag, ms)".to_string(),
        &["metric"],
        g.lag.iter().map(|r| (vec![r.tag.clone()], r)).collect(),
    );
    t.note = Some(g.verdict.clone());
    if t.rows.is_empty() {
        // Keep the verdict visible even without a lag histogram.
        t.header = vec!["generator".to_string()];
        t.rows.push(vec![g.verdict.clone()]);
        t.note = None;
        t.text_columns = 1;
    }
    t
}

fn infra_table(report: &Report) -> Table {
    let mut t = Table::new(
        "infrastructure",
        "Infrastructure (timeline peaks)",
        &["column", "peak", "mean", "capacity", "peak use"],
        1,
    );
    for r in &report.infrastructure {
        t.rows.push(vec![
            r.name.clone(),
            fmt::num(r.peak),
            fmt::num(r.mean),
            r.capacity.map_or(String::new(), fmt::num),
            r.peak_use.map_or(String::new(), fmt::pct),
        ]);
    }
    t
}

fn cost_table(cost: &serde_json::Value) -> Table {
    let mut t = Table::new("cost", "Cost (summary.json)", &["item", "value"], 1);
    flatten(cost, String::new(), &mut t.rows);
    t
}

fn flatten(v: &serde_json::Value, prefix: String, rows: &mut Vec<Vec<String>>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(v, key, rows);
            }
        }
        serde_json::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                flatten(v, format!("{prefix}[{i}]"), rows);
            }
        }
        serde_json::Value::Number(n) => rows.push(vec![
            prefix,
            n.as_f64().map_or_else(
                || n.to_string(),
                |v| {
                    if v == v.trunc() {
                        fmt::num(v)
                    } else {
                        fmt::decimal(v)
                    }
                },
            ),
        ]),
        serde_json::Value::Null => {}
        other => rows.push(vec![
            prefix,
            other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_string),
        ]),
    }
}
