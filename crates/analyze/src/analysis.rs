//! From merged histograms and timeline rows to the [`Report`] data model.
//!
//! Why it exists: this is the one place where figures are computed — percentiles from merged
//! histograms (HdrHistogram's `value_at_quantile`, the same rule summary.json uses), rates over
//! the window, traffic counts, stage / store / model sections, thresholds, infrastructure
//! peaks and chart series. Everything after this only formats numbers it is given.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use surge_record::{Metric, Tag};

use crate::accumulate::{CHARTED_TAGS, TagData};
use crate::counts::Counts;
use crate::load::Loaded;
use crate::model::*;
use crate::thresholds;
use crate::timeline::{self, Slot};
use crate::window::CHART_POINTS;

/// Generator lag p99 above this means the load generator, not the target, set the pace.
pub const LAG_P99_LIMIT_MS: f64 = 10.0;

/// What to put in a report.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Breakdowns to include (default: all that have data).
    pub by: Vec<By>,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            by: By::ALL.to_vec(),
        }
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// The figures of one histogram over `duration_s`: ms from µs, or counts for a token tag.
pub fn latency_row(tag: &str, h: &Histogram<u64>, duration_s: f64) -> LatencyRow {
    let counts = tag.parse::<Tag>().is_ok_and(|t| t.metric().is_count());
    let per = if counts { 1.0 } else { 1000.0 };
    let ms = |v: u64| v as f64 / per;
    let q = |q: f64| ms(h.value_at_quantile(q));
    LatencyRow {
        tag: tag.to_string(),
        count: h.len(),
        rate_per_s: if duration_s > 0.0 {
            h.len() as f64 / duration_s
        } else {
            0.0
        },
        mean: round3(h.mean() / per),
        p50: q(0.50),
        p90: q(0.90),
        p99: q(0.99),
        p999: q(0.999),
        max: ms(h.max()),
    }
}

fn round3(v: f64) -> f64 {
    if v.is_finite() {
        (v * 1000.0).round() / 1000.0
    } else {
        0.0
    }
}

/// The percentile distribution of a histogram (see [`Distribution`]).
pub fn distribution(tag: &str, h: &Histogram<u64>) -> Distribution {
    let mut total = 0u64;
    let points = h
        .iter_quantiles(5)
        .map(|v| {
            total += v.count_since_last_iteration();
            DistPoint {
                value_ms: ms(v.value_iterated_to()),
                quantile: v.quantile_iterated_to(),
                total_count: total,
            }
        })
        .collect();
    let largest = 2 * 10u32.pow(u32::from(h.sigfig()));
    Distribution {
        tag: tag.to_string(),
        count: h.len(),
        mean_ms: h.mean() / 1000.0,
        stdev_ms: h.stdev() / 1000.0,
        max_ms: ms(h.max()),
        buckets: u32::from(h.buckets()),
        sub_buckets: largest.next_power_of_two(),
        points,
    }
}

/// What the qualifier of a tag names.
fn qualifier_kind(q: &str, profile: Option<&serde_json::Value>) -> Option<By> {
    let has = |ptr: &str| {
        profile
            .and_then(|p| p.pointer(ptr))
            .and_then(|m| m.as_object())
            .is_some_and(|m| m.contains_key(q))
    };
    if has("/traffic/stores") {
        Some(By::Store)
    } else if has("/system/bedrock/models") {
        Some(By::Model)
    } else {
        None
    }
}

/// Build the report (see the module docs).
pub fn analyze(loaded: &Loaded, opts: &ReportOptions) -> Report {
    let grid = &loaded.grid;
    let profile = loaded.profile();
    let data_end = data_end(loaded);
    let to = grid.to_s.min(data_end.max(grid.from_s));
    let whole_run = grid.from_s == 0.0 && !grid.to_s.is_finite();
    let duration = if whole_run {
        summary_duration(loaded).unwrap_or(to - grid.from_s)
    } else {
        to - grid.from_s
    }
    .max(0.0);

    let all_slots = timeline::slots(&loaded.rows, &loaded.columns, grid.from_s, grid.to_s);
    let mut warnings: Vec<String> = loaded.warnings.clone();

    // Whole-window rows per tag.
    let mut base_rows = Vec::new();
    let mut qualified: BTreeMap<(By, String), Vec<LatencyRow>> = BTreeMap::new();
    let mut other_tags = Vec::new();
    let mut totals: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    for data in loaded.acc.tags() {
        let total = data.total();
        let row = latency_row(&data.name, &total, duration);
        match data.name.parse::<Tag>() {
            Ok(tag) => match tag.qualifier() {
                None => {
                    base_rows.push((tag.metric(), row));
                    totals.insert(data.name.clone(), total);
                }
                Some(q) => match qualifier_kind(q, profile) {
                    Some(by) => qualified.entry((by, q.to_string())).or_default().push(row),
                    None => other_tags.push(row),
                },
            },
            Err(_) => other_tags.push(LatencyRow {
                tag: if data.name.is_empty() {
                    "(untagged)".to_string()
                } else {
                    data.name.clone()
                },
                ..row
            }),
        }
    }
    base_rows.sort_by_key(|(m, _)| *m);

    let overall_traffic = if whole_run && loaded.runs.iter().all(|r| r.summary.is_some()) {
        summary_traffic(loaded, &all_slots, duration)
    } else {
        window_traffic(loaded, &all_slots, duration)
    };
    let overall = Section {
        name: "all".to_string(),
        duration_s: duration,
        latency: base_rows
            .iter()
            .filter(|(m, _)| *m != Metric::Lag)
            .map(|(_, r)| r.clone())
            .collect(),
        traffic: Some(overall_traffic),
    };
    let lag = base_rows
        .iter()
        .find(|(m, _)| *m == Metric::Lag)
        .map(|(_, r)| r.clone());

    let mut breakdowns = Vec::new();
    if opts.by.contains(&By::Stage) && grid.stages.len() > 1 {
        breakdowns.push(Breakdown {
            by: By::Stage,
            sections: stage_sections(loaded, data_end),
        });
    }
    for by in [By::Store, By::Model] {
        let sections: Vec<Section> = qualified
            .iter()
            .filter(|((b, _), _)| *b == by)
            .map(|((_, name), rows)| {
                let mut rows = rows.clone();
                rows.sort_by_key(|r| r.tag.parse::<Tag>().map(|t| t.metric()).ok());
                Section {
                    name: name.clone(),
                    duration_s: duration,
                    latency: rows,
                    traffic: None,
                }
            })
            .collect();
        if opts.by.contains(&by) && !sections.is_empty() {
            breakdowns.push(Breakdown { by, sections });
        }
    }
    // Qualified rows stay findable for thresholds even when their breakdown is not shown.
    let hidden: Vec<LatencyRow> = qualified
        .iter()
        .filter(|((by, _), _)| !opts.by.contains(by))
        .flat_map(|(_, rows)| rows.iter().cloned())
        .collect();

    let generator = generator(lag);
    let mut report = Report {
        schema: REPORT_SCHEMA,
        runs: loaded.runs.iter().map(run_meta).collect(),
        window: WindowInfo {
            from_s: grid.from_s,
            to_s: grid.to_s.is_finite().then_some(grid.to_s),
            duration_s: duration,
            intervals: loaded.intervals,
        },
        overall,
        breakdowns,
        other_tags: other_tags.iter().chain(&hidden).cloned().collect(),
        generator,
        thresholds: Vec::new(),
        infrastructure: infrastructure(&loaded.columns, &all_slots),
        cost: loaded
            .runs
            .iter()
            .find_map(|r| r.summary.as_ref()?.cost.clone()),
        charts: Charts {
            bucket_s: grid.bucket_s,
            latency: latency_series(loaded),
            timeline: timeline_charts(
                &loaded.columns,
                all_slots,
                grid.bucket_s,
                goodput_judged(loaded),
            ),
            distributions: totals.iter().map(|(t, h)| distribution(t, h)).collect(),
        },
        warnings: Vec::new(),
    };
    if let Some(p) = profile {
        let (parsed, problems) = thresholds::parse(p);
        warnings.extend(problems);
        report.thresholds = thresholds::evaluate(&parsed, &report);
    }
    // Hidden qualified rows were only there for the thresholds.
    report.other_tags = other_tags;
    report.warnings = warnings;
    report
}

fn run_meta(r: &crate::load::RunInput) -> RunMeta {
    let enum_name = |v: serde_json::Value| v.as_str().map(str::to_string);
    RunMeta {
        path: r.path.display().to_string(),
        kind: r
            .info
            .as_ref()
            .and_then(|i| enum_name(serde_json::to_value(i.kind).ok()?)),
        status: r
            .info
            .as_ref()
            .and_then(|i| enum_name(serde_json::to_value(i.status).ok()?)),
        breach: r.info.as_ref().and_then(|i| i.breach.as_ref()).map(|b| {
            format!(
                "{} broken at {:.0} s (measured {})",
                b.guard, b.at_s, b.measured
            )
        }),
        lost_shards: r
            .summary
            .iter()
            .flat_map(|s| &s.lost_shards)
            .map(|l| {
                format!(
                    "shard {} lost at {:.0} s ({:.1}% of the offered load): {}",
                    l.shard,
                    l.lost_at_s,
                    l.offered_share_lost * 100.0,
                    l.why
                )
            })
            .collect(),
        profile: r.info.as_ref().map(|i| i.profile.clone()),
        started_at: r.info.as_ref().map(|i| i.started_at.to_string()),
        shard_logs: r.hlogs.len(),
    }
}

/// The end of the data: last interval end or last timeline row, seconds since run start.
fn data_end(loaded: &Loaded) -> f64 {
    let hlog_end = loaded.span.map_or(0.0, |(_, e)| e);
    let row_end = loaded.rows.iter().map(|r| r.end_s).fold(0.0, f64::max);
    hlog_end.max(row_end)
}

fn summary_duration(loaded: &Loaded) -> Option<f64> {
    loaded
        .runs
        .iter()
        .filter_map(|r| r.summary.as_ref().map(|s| s.duration_s))
        .reduce(f64::max)
}

fn ratio(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

fn per_s(n: f64, duration: f64) -> f64 {
    if duration > 0.0 { n / duration } else { 0.0 }
}

/// Whole-run traffic from summary.json (exact counts), peaks and tokens from the timeline.
fn summary_traffic(loaded: &Loaded, slots: &[Slot], duration: f64) -> Traffic {
    let mut t = slot_traffic(&loaded.columns, slots, duration);
    let summaries: Vec<_> = loaded
        .runs
        .iter()
        .filter_map(|r| r.summary.as_ref())
        .collect();
    t.source = "summary.json".to_string();
    t.sent = summaries.iter().map(|s| s.counts.sent).sum();
    t.completed = summaries.iter().map(|s| s.counts.completed).sum();
    t.late = Some(summaries.iter().map(|s| s.counts.late).sum());
    let judged: Vec<_> = summaries
        .iter()
        .filter_map(|s| s.goodput.as_ref())
        .collect();
    // The `good` column counts only where a `[goodput]` table judged the answers.
    t.good = (!judged.is_empty()).then(|| judged.iter().map(|g| g.good).sum());
    t.errors.clear();
    for s in &summaries {
        for (class, n) in &s.errors {
            *t.errors.entry(class.clone()).or_default() += n;
        }
    }
    t.errors_total = t.errors.values().sum();
    // Counted by measured runs since unsolicited frames and server closes are told apart
    // from errors; older summaries have neither.
    let counted: Vec<_> = summaries
        .iter()
        .filter_map(|s| Some((s.counts.unsolicited, s.connections.as_ref()?)))
        .collect();
    if !counted.is_empty() {
        t.unsolicited = Some(counted.iter().map(|(u, _)| u).sum());
        let mut all = surge_record::Connections::default();
        for (_, c) in &counted {
            all.opened += c.opened;
            all.reconnects += c.reconnects;
            all.keepalives += c.keepalives;
            for (code, n) in &c.closed_by_server {
                *all.closed_by_server.entry(code.clone()).or_default() += n;
            }
        }
        t.connections = Some(all);
    }
    if t.sessions_peak.is_none() {
        t.sessions_peak = summaries
            .iter()
            .map(|s| s.counts.sessions as f64)
            .reduce(|a, b| a + b);
    }
    finish_rates(&mut t, duration);
    t
}

/// Traffic of part of a run from the timeline. Late sends are counted only by a timeline
/// column `late`; without one, a run whose summaries count no late sends at all has none in
/// any part either.
fn window_traffic(loaded: &Loaded, slots: &[Slot], duration: f64) -> Traffic {
    let mut t = slot_traffic(&loaded.columns, slots, duration);
    if !goodput_judged(loaded) && t.good.take().is_some() {
        finish_rates(&mut t, duration);
    }
    let none_late = loaded
        .runs
        .iter()
        .all(|r| r.summary.as_ref().is_some_and(|s| s.counts.late == 0));
    if t.late.is_none() && none_late {
        t.late = Some(0);
        finish_rates(&mut t, duration);
    }
    t
}

/// Whether a `[goodput]` table judged the answers (the `good` column counts only then); a
/// run without a summary is taken at its timeline's word.
fn goodput_judged(loaded: &Loaded) -> bool {
    loaded
        .runs
        .iter()
        .any(|r| r.summary.as_ref().is_none_or(|s| s.goodput.is_some()))
}

/// Traffic of a span from timeline slots.
fn slot_traffic(columns: &[String], slots: &[Slot], duration: f64) -> Traffic {
    let col = |name: &str| columns.iter().position(|c| c == name);
    let count = |name: &str| col(name).map_or(0, |i| timeline::sum(slots, i).round() as u64);
    let mut t = Traffic {
        source: if slots.is_empty() {
            "none"
        } else {
            "timeline.csv"
        }
        .to_string(),
        sessions_peak: col("sessions_open")
            .and_then(|i| timeline::peak_mean(slots, i).map(|p| p.0)),
        sent: count("sent"),
        completed: count("completed"),
        late: col("late")
            .filter(|&i| timeline::present(slots, i))
            .map(|i| timeline::sum(slots, i).round() as u64),
        tokens_per_s: col("tokens")
            .filter(|&i| timeline::present(slots, i))
            .map(|i| per_s(timeline::sum(slots, i), duration)),
        good: col("good")
            .filter(|&i| timeline::present(slots, i))
            .map(|i| timeline::sum(slots, i).round() as u64),
        ..Traffic::default()
    };
    for (i, c) in columns.iter().enumerate() {
        if let Some(class) = c.strip_prefix(surge_record::timeline::ERROR_COLUMN_PREFIX) {
            t.errors
                .insert(class.to_string(), timeline::sum(slots, i).round() as u64);
        }
    }
    t.errors_total = t.errors.values().sum();
    finish_rates(&mut t, duration);
    t
}

fn finish_rates(t: &mut Traffic, duration: f64) {
    t.sent_per_s = per_s(t.sent as f64, duration);
    t.completed_per_s = per_s(t.completed as f64, duration);
    t.error_ratio = ratio(t.errors_total, t.sent);
    t.late_ratio = t.late.and_then(|l| ratio(l, t.sent));
    t.goodput_ratio = t.good.and_then(|g| ratio(g, t.sent));
    t.goodput_per_s = t.good.map(|g| per_s(g as f64, duration));
}

fn stage_sections(loaded: &Loaded, data_end: f64) -> Vec<Section> {
    let grid = &loaded.grid;
    let last = grid.stages.len() - 1;
    let tags: Vec<&TagData> = loaded.acc.tags();
    grid.stages
        .iter()
        .enumerate()
        .map(|(i, stage)| {
            let end = if i == last {
                stage.end_s.max(data_end)
            } else {
                stage.end_s
            };
            let (from, to) = (stage.start_s.max(grid.from_s), end.min(grid.to_s));
            let duration = (to - from).max(0.0);
            let mut latency = tags
                .iter()
                .filter(|d| d.name.parse::<Tag>().is_ok_and(|t| t.qualifier().is_none()))
                .filter_map(|d| d.stage(i).map(|h| latency_row(&d.name, &h, duration)))
                .collect::<Vec<_>>();
            latency.sort_by_key(|r| r.tag.parse::<Tag>().map(|t| t.metric()).ok());
            // The last stage takes the tail (see the window docs).
            let slot_to = if i == last { f64::INFINITY } else { to };
            let slots =
                timeline::slots(&loaded.rows, &loaded.columns, from, slot_to.min(grid.to_s));
            Section {
                name: stage.name.clone(),
                duration_s: duration,
                latency,
                traffic: Some(window_traffic(loaded, &slots, duration)),
            }
        })
        .filter(|s| s.duration_s > 0.0 || !s.latency.is_empty())
        .collect()
}

fn generator(lag: Option<LatencyRow>) -> Generator {
    let (bottleneck, verdict) = match &lag {
        None => (
            false,
            "no lag recorded (simulated run, or a generator that does not record it)".to_string(),
        ),
        Some(l) if l.p99 > LAG_P99_LIMIT_MS => (
            true,
            format!(
                "scheduling lag p99 {:.1} ms exceeds {LAG_P99_LIMIT_MS} ms: the load generator was a bottleneck; latencies include its delay",
                l.p99
            ),
        ),
        Some(l) => (
            false,
            format!(
                "healthy: scheduling lag p99 {:.1} ms (limit {LAG_P99_LIMIT_MS} ms)",
                l.p99
            ),
        ),
    };
    Generator {
        lag,
        bottleneck,
        verdict,
    }
}

fn infrastructure(columns: &[String], slots: &[Slot]) -> Vec<InfraRow> {
    let fixed = surge_record::timeline::FIXED_COLUMNS;
    columns
        .iter()
        .enumerate()
        .filter(|(_, c)| !fixed.contains(&c.as_str()) && !timeline::is_counter(c))
        .filter(|(_, c)| !timeline::is_capacity(c))
        .filter_map(|(i, c)| {
            let (peak, mean) = timeline::peak_mean(slots, i)?;
            let capacity = timeline::capacity_of(c, columns)
                .and_then(|j| timeline::peak_mean(slots, j))
                .map(|p| p.0);
            Some(InfraRow {
                name: c.clone(),
                peak,
                mean,
                capacity,
                peak_use: capacity.filter(|&c| c > 0.0).map(|c| peak / c),
            })
        })
        .collect()
}

fn latency_series(loaded: &Loaded) -> Vec<LatencySeries> {
    let grid = &loaded.grid;
    CHARTED_TAGS
        .iter()
        .filter_map(|tag| loaded.acc.get(tag))
        .map(|data| {
            // More buckets than planned (data past the expected end): merge neighbours.
            let factor = (data.buckets.len() as f64 / (2.0 * CHART_POINTS))
                .ceil()
                .max(1.0) as usize;
            let points = data
                .buckets
                .chunks(factor)
                .enumerate()
                .filter_map(|(i, chunk)| {
                    let mut merged = Counts::default();
                    for b in chunk.iter().flatten() {
                        merged.merge(b);
                    }
                    let h = merged.histogram();
                    (!h.is_empty()).then(|| LatencyPoint {
                        t_s: grid.bucket_start(i * factor),
                        count: h.len(),
                        p50: ms(h.value_at_quantile(0.5)),
                        p99: ms(h.value_at_quantile(0.99)),
                    })
                })
                .collect();
            LatencySeries {
                tag: data.name.clone(),
                points,
            }
        })
        .collect()
}

/// Chart groups over the timeline; columns that are missing are simply not drawn.
fn timeline_charts(
    columns: &[String],
    slots: Vec<Slot>,
    bucket_s: f64,
    goodput: bool,
) -> Vec<TimelineChart> {
    let slots = timeline::rebucket(slots, columns, bucket_s);
    let find = |name: &str| columns.iter().position(|c| c == name);
    let chart = |title: &str, unit: &str, cols: Vec<usize>| TimelineChart {
        title: title.to_string(),
        unit: unit.to_string(),
        series: cols
            .into_iter()
            .map(|i| NamedSeries {
                name: columns[i].clone(),
                points: timeline::series(&slots, columns, i),
            })
            .filter(|s| !s.points.is_empty())
            .collect(),
    };
    let named = |names: &[&str]| names.iter().filter_map(|n| find(n)).collect::<Vec<_>>();
    // Classes that occurred; all classes (as zero lines) when none did.
    let all_errors: Vec<usize> = columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.starts_with(surge_record::timeline::ERROR_COLUMN_PREFIX))
        .map(|(i, _)| i)
        .collect();
    let occurred: Vec<usize> = all_errors
        .iter()
        .copied()
        .filter(|&i| timeline::sum(&slots, i) > 0.0)
        .collect();
    let errors = if occurred.is_empty() {
        all_errors
    } else {
        occurred
    };
    let mut charts = vec![
        chart(
            "Throughput",
            "messages/s",
            named(if goodput {
                &["sent", "completed", "good"]
            } else {
                &["sent", "completed"]
            }),
        ),
        chart("Late sends", "messages/s", named(&["late"])),
        chart("Errors", "errors/s", errors),
        chart("Sessions open", "sessions", named(&["sessions_open"])),
        chart("Tokens", "tokens/s", named(&["tokens"])),
        chart(
            "ECS tasks",
            "tasks",
            named(&["ecs_tasks_running", "ecs_tasks_starting"]),
        ),
        chart("ECS CPU", "fraction", named(&["ecs_cpu"])),
        chart(
            "Lambda concurrency",
            "environments",
            named(&["lambda_concurrency_peak", "lambda_concurrency"]),
        ),
        chart(
            "DynamoDB writes vs capacity",
            "WRU/s",
            named(&["ddb_wru_per_s", "ddb_wru_capacity"]),
        ),
        chart(
            "DynamoDB reads vs capacity",
            "RRU/s",
            named(&["ddb_rru_per_s", "ddb_rru_capacity"]),
        ),
    ];
    for (i, c) in columns.iter().enumerate() {
        if let Some(model) = c.strip_prefix("bedrock_tokens_per_min:") {
            let mut cols = vec![i];
            cols.extend(timeline::capacity_of(c, columns));
            charts.push(chart(
                &format!("Bedrock {model}: tokens/min vs capacity"),
                "tokens/min",
                cols,
            ));
        }
    }
    charts.retain(|c| c.series.iter().any(|s| !s.points.is_empty()));
    charts
}
