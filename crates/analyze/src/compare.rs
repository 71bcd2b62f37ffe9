//! `surge compare`: two reports side by side, regression limits, prediction error.
//!
//! Why it exists: the nightly job must fail on a regression and nothing else, so a limit is
//! parsed strictly — figure names go through the profile crate's [`MetricRef`] (an unknown
//! name is an error, never a silent pass) and a figure missing from either run is an error
//! too. When one side is simulated and the other measured, the relative difference is the
//! simulator's prediction error, shown per figure.
//!
//! Given each side's [`Samples`], every delta also gets a confidence interval from a block
//! bootstrap ([`crate::noise`]) and the word *significant* (the interval excludes 0) or
//! *within noise*. A limit written with a trailing `!` (`e2e.p99=+10%!`) is judged on that
//! interval: it fails only when the whole interval lies beyond the allowance — the candidate is
//! worse than allowed with that confidence — so a nightly gate does not fail on noise. A `!`
//! limit whose figure has no interval is an error, never a silent fall-back to the point
//! estimate.

use serde::Serialize;
use surge_profile::metric::{LimitUnit, MetricRef, Stat};

use crate::error::{AnalyzeError, Result};
use crate::fmt;
use crate::model::Report;
use crate::noise::{self, BootstrapOptions, DeltaInterval, Samples};
use crate::tables::{Table, mark};

/// How much worse a figure may get.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Allowance {
    /// `+10%`: candidate ≤ base × 1.10.
    Relative(f64),
    /// `+50ms` (latency, in ms) or `+0.05pp` (rate, as a fraction: 0.0005).
    Absolute(f64),
}

/// One regression limit, `e2e.p99=+10%` (or `e2e.p99=+10%!`).
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    pub metric: MetricRef,
    pub allowance: Allowance,
    /// Written with a trailing `!`: fail only when the regression beyond the allowance is
    /// significant (the whole confidence interval of the delta lies beyond it).
    pub significance: bool,
    /// As written after `=`.
    pub text: String,
}

impl Limit {
    /// True for a figure where more is better (`goodput.ratio`): getting worse is falling.
    pub fn falls_when_worse(&self) -> bool {
        matches!(&self.metric, MetricRef::Ratio(r) if r.higher_is_better())
    }

    /// The worst candidate value that passes, given the base value: the highest, or for a
    /// figure where more is better the lowest.
    pub fn allowed(&self, base: f64) -> f64 {
        let worse = if self.falls_when_worse() { -1.0 } else { 1.0 };
        match self.allowance {
            Allowance::Relative(f) => base * (1.0 + worse * f),
            Allowance::Absolute(a) => base + worse * a,
        }
    }
}

fn limit_error(item: &str, why: impl std::fmt::Display) -> AnalyzeError {
    AnalyzeError::Limit(format!("--max-regression {item:?}: {why}"))
}

/// Parse `e2e.p99=+10%,ttft.p99=+50ms,errors.rate=+0.05pp`.
///
/// `%` is relative to the base value; a duration (`50ms`, `1s`) is an absolute allowance for
/// latency figures; `pp` (percentage points) is an absolute allowance for rates. A trailing
/// `!` (`e2e.p99=+10%!`) asks for significance (see the module docs).
pub fn parse_limits(spec: &str) -> Result<Vec<Limit>> {
    spec.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let (name, value) = item
                .split_once('=')
                .ok_or_else(|| limit_error(item, "expected FIGURE=+ALLOWANCE, e.g. e2e.p99=+10%"))?;
            if name.contains('!') {
                let (name, value) = (name.replace('!', ""), value.replace('!', ""));
                return Err(limit_error(item, format!("`!` goes after the allowance: {}={}!", name.trim(), value.trim())));
            }
            let metric: MetricRef = name.trim().parse().map_err(|e| limit_error(item, e))?;
            let text = value.trim().to_string();
            let (v, significance) = match text.strip_suffix('!') {
                Some(v) => (v, true),
                None => (text.as_str(), false),
            };
            if v.contains('!') {
                return Err(limit_error(item, format!("`!` goes once, at the very end: {metric}={}!", v.replace('!', "").trim())));
            }
            if significance && matches!(metric, MetricRef::Latency { stat: Stat::Max, .. }) {
                return Err(limit_error(item, "a maximum has no confidence interval (no resample exceeds the observed maximum): drop the `!` or use p99.9"));
            }
            let v = v.trim();
            let v = v.strip_prefix('+').unwrap_or(v).trim();
            let number = |s: &str| {
                s.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .ok_or_else(|| limit_error(item, format!("{s:?} is not a non-negative number")))
            };
            let allowance = if let Some(p) = v.strip_suffix("pp") {
                if metric.unit() != LimitUnit::Percent {
                    return Err(limit_error(item, format!("{metric} is a latency: use a duration (+50ms) or a relative limit (+10%), not percentage points")));
                }
                Allowance::Absolute(number(p)? / 100.0)
            } else if let Some(p) = v.strip_suffix('%') {
                Allowance::Relative(number(p)? / 100.0)
            } else {
                if metric.unit() != LimitUnit::Duration {
                    return Err(limit_error(item, format!("{metric} is a rate: use percentage points (+0.05pp) or a relative limit (+10%)")));
                }
                let d: surge_profile::Duration = v
                    .parse()
                    .map_err(|e| limit_error(item, format!("{e}; expected e.g. +10%, +50ms or +0.05pp")))?;
                Allowance::Absolute(d.as_secs_f64() * 1000.0)
            };
            Ok(Limit {
                metric,
                allowance,
                significance,
                text,
            })
        })
        .collect()
}

/// One side of a comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub runs: Vec<String>,
    pub kind: Option<String>,
    pub profile: Option<String>,
}

impl Side {
    fn of(r: &Report) -> Side {
        Side {
            runs: r.runs.iter().map(|m| m.path.clone()).collect(),
            kind: r.kind().map(str::to_string),
            profile: r.runs.iter().find_map(|m| m.profile.clone()),
        }
    }
}

/// What the bootstrap resamples: each side's blocks, and how.
#[derive(Debug, Clone, Copy)]
pub struct Noise<'a> {
    pub base: &'a Samples,
    pub candidate: &'a Samples,
    pub options: BootstrapOptions,
}

/// How the confidence intervals of a comparison were computed.
#[derive(Debug, Clone, Serialize)]
pub struct BootstrapInfo {
    #[serde(flatten)]
    pub options: BootstrapOptions,
    pub base_blocks: usize,
    pub base_block_s: f64,
    pub candidate_blocks: usize,
    pub candidate_block_s: f64,
}

/// One figure side by side.
#[derive(Debug, Clone, Serialize)]
pub struct CompareRow {
    pub figure: String,
    /// `ms`, `ratio` or `per_s`.
    pub unit: &'static str,
    pub base: Option<f64>,
    pub candidate: Option<f64>,
    pub delta: Option<f64>,
    /// delta / base.
    pub relative: Option<f64>,
    /// (simulated − measured) / measured, when one side is simulated and the other measured.
    pub prediction_error: Option<f64>,
    /// Confidence interval of the delta, when bootstrapped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<DeltaInterval>,
    /// The interval excludes 0: a difference beyond run-to-run noise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub significant: Option<bool>,
    /// Why a bootstrapped comparison has no interval for this figure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_interval: Option<String>,
}

/// One regression limit judged.
#[derive(Debug, Clone, Serialize)]
pub struct LimitVerdict {
    pub figure: String,
    pub limit: String,
    pub base: f64,
    pub candidate: f64,
    /// The highest candidate value that passes.
    pub allowed: f64,
    /// Judged on the confidence interval (`!`) rather than the point estimate.
    pub significance: bool,
    /// The delta's interval in the limit's terms: relative for `+N%`, absolute otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<(f64, f64)>,
    /// Where the interval lies against the allowance (with a bootstrap): `beyond` (all of it
    /// beyond: a regression beyond noise), `within` (all of it within) or `overlaps`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci_vs_allowance: Option<&'static str>,
    pub exceeded: bool,
    pub explanation: String,
}

/// The value of the `schema` field of the JSON comparison.
pub const COMPARE_SCHEMA: &str = "surge.compare/v1";

/// A whole comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub schema: &'static str,
    pub base: Side,
    pub candidate: Side,
    /// `base` or `candidate`: the simulated side when the other is measured.
    pub simulated_side: Option<&'static str>,
    /// Present when the deltas have confidence intervals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<BootstrapInfo>,
    pub rows: Vec<CompareRow>,
    pub limits: Vec<LimitVerdict>,
    pub passed: bool,
}

fn unit_of(m: &MetricRef) -> &'static str {
    match m.unit() {
        LimitUnit::Duration => "ms",
        LimitUnit::Percent => "ratio",
        LimitUnit::Count => "count",
    }
}

fn show(unit: &str, v: f64) -> String {
    match unit {
        "ms" => fmt::ms(v),
        "ratio" => fmt::pct(v),
        _ => fmt::num(v),
    }
}

/// `+12.0% … +26.5%`.
fn show_interval((low, high): (f64, f64), f: impl Fn(f64) -> String) -> String {
    format!("{} … {}", fmt::signed(low, &f), fmt::signed(high, &f))
}

/// A value in a limit's terms: relative (`+12.00%`) or in the figure's unit.
fn show_term(relative: bool, unit: &str, v: f64) -> String {
    if relative { fmt::pct(v) } else { show(unit, v) }
}

/// `95%`.
fn show_confidence(c: f64) -> String {
    format!("{}%", (c * 1000.0).round() / 10.0)
}

/// The interval of every figure in `metrics` (by name), or why it has none.
fn intervals(
    noise: &Noise<'_>,
    metrics: &[MetricRef],
    base: &Report,
    candidate: &Report,
) -> Vec<(String, std::result::Result<DeltaInterval, String>)> {
    let figures: Vec<noise::Figure> = metrics
        .iter()
        .map(|m| {
            let (b, c) = (base.figure(m), candidate.figure(m));
            noise::Figure {
                metric: m.clone(),
                delta: b.zip(c).map(|(b, c)| c - b),
                relative: b
                    .zip(c)
                    .filter(|(b, _)| *b != 0.0)
                    .map(|(b, c)| c / b - 1.0),
            }
        })
        .collect();
    let found = noise::delta_intervals(noise.base, noise.candidate, &figures, &noise.options);
    metrics.iter().map(|m| m.to_string()).zip(found).collect()
}

/// Judge one limit; `interval` is its figure's, when bootstrapped.
fn judge(
    l: &Limit,
    b: f64,
    c: f64,
    interval: Option<&std::result::Result<DeltaInterval, String>>,
    confidence: f64,
) -> Result<LimitVerdict> {
    let unit = unit_of(&l.metric);
    let allowed = l.allowed(b);
    let falls = l.falls_when_worse();
    let point_exceeded = if falls {
        c < allowed - allowed.abs() * 1e-12
    } else {
        c > allowed + allowed.abs() * 1e-12
    };
    // The interval in the limit's own terms, and the allowance it is held against.
    let (relative, allowance) = match l.allowance {
        Allowance::Relative(f) => (true, f),
        Allowance::Absolute(a) => (false, a),
    };
    let show_term = |v: f64| show_term(relative, unit, v);
    let terms = match interval {
        Some(Ok(i)) if relative => i.relative_low.zip(i.relative_high),
        Some(Ok(i)) => Some((i.low, i.high)),
        _ => None,
    };
    // How much worse, where more is better: the interval of the fall.
    let worse_terms = terms.map(|(low, high)| if falls { (-high, -low) } else { (low, high) });
    let tolerance = allowance.abs() * 1e-12;
    let ci_vs_allowance = worse_terms.map(|(low, high)| {
        if low > allowance + tolerance {
            "beyond"
        } else if high <= allowance + tolerance {
            "within"
        } else {
            "overlaps"
        }
    });
    if l.significance && ci_vs_allowance.is_none() {
        let why = match interval {
            None => "the comparison was made without a bootstrap (--bootstrap 0)".to_string(),
            Some(Err(why)) => why.clone(),
            Some(Ok(_)) => "the base is 0 in the run or in a resample, so the relative delta has no interval; use an absolute allowance (+50ms, +0.05pp)".to_string(),
        };
        return Err(AnalyzeError::Limit(format!(
            "--max-regression {}={}: `!` needs a confidence interval, and there is none: {why}. Drop the `!` to judge the point estimate",
            l.metric, l.text
        )));
    }
    let beyond = ci_vs_allowance == Some("beyond");
    let exceeded = if l.significance {
        beyond
    } else {
        point_exceeded
    };
    let state = if exceeded && beyond {
        "regressed beyond its limit, beyond noise"
    } else if exceeded && ci_vs_allowance.is_some() {
        "regressed beyond its limit, but within noise"
    } else if exceeded {
        "regressed beyond its limit"
    } else if point_exceeded {
        "above its limit but within noise"
    } else {
        "within its limit"
    };
    let mut explanation = format!(
        "{} {state}: base {}, candidate {}, allowed {} {}",
        l.metric,
        show(unit, b),
        show(unit, c),
        if falls { "down to" } else { "up to" },
        show(unit, allowed)
    );
    if let Some(t) = terms {
        let point = if relative { c / b - 1.0 } else { c - b };
        explanation.push_str(&format!(
            "; Δ {} ({} CI {}) against an allowance of {}",
            fmt::signed(point, show_term),
            show_confidence(confidence),
            show_interval(t, show_term),
            fmt::signed(if falls { -allowance } else { allowance }, show_term)
        ));
    }
    Ok(LimitVerdict {
        figure: l.metric.to_string(),
        limit: format!("+{}", l.text.trim_start_matches('+')),
        base: b,
        candidate: c,
        allowed,
        significance: l.significance,
        interval: terms,
        ci_vs_allowance,
        exceeded,
        explanation,
    })
}

/// Compare `candidate` against `base` under `limits`; with `noise`, every delta also gets a
/// confidence interval and `!` limits are judged on it.
pub fn compare(
    base: &Report,
    candidate: &Report,
    limits: &[Limit],
    noise: Option<&Noise<'_>>,
) -> Result<Comparison> {
    let simulated_side = match (base.kind(), candidate.kind()) {
        (Some("simulated"), Some("measured")) => Some("base"),
        (Some("measured"), Some("simulated")) => Some("candidate"),
        _ => None,
    };
    let mut figures = base.figures();
    for f in candidate.figures() {
        if !figures.contains(&f) {
            figures.push(f);
        }
    }
    let mut asked = figures.clone();
    for l in limits {
        if !asked.contains(&l.metric) {
            asked.push(l.metric.clone());
        }
    }
    let found = noise.map_or_else(Vec::new, |n| intervals(n, &asked, base, candidate));
    let interval_of = |figure: &str| found.iter().find(|(f, _)| f == figure).map(|(_, i)| i);
    let row = |figure: String, unit: &'static str, b: Option<f64>, c: Option<f64>| {
        let delta = b.zip(c).map(|(b, c)| c - b);
        let relative = b.zip(delta).filter(|(b, _)| *b != 0.0).map(|(b, d)| d / b);
        let prediction_error = simulated_side.and_then(|side| {
            let (sim, meas) = if side == "base" { (b?, c?) } else { (c?, b?) };
            (meas != 0.0).then(|| (sim - meas) / meas)
        });
        let interval = interval_of(&figure);
        CompareRow {
            figure,
            unit,
            base: b,
            candidate: c,
            delta,
            relative,
            prediction_error,
            interval: interval.and_then(|i| i.as_ref().ok().copied()),
            significant: interval.and_then(|i| i.as_ref().ok().map(DeltaInterval::significant)),
            no_interval: interval.and_then(|i| i.as_ref().err().cloned()),
        }
    };
    let mut rows: Vec<CompareRow> = figures
        .iter()
        .map(|f| {
            row(
                f.to_string(),
                unit_of(f),
                base.figure(f),
                candidate.figure(f),
            )
        })
        .collect();
    let traffic =
        |r: &Report, pick: fn(&crate::model::Traffic) -> f64| r.overall.traffic.as_ref().map(pick);
    rows.push(row(
        "sent/s".into(),
        "per_s",
        traffic(base, |t| t.sent_per_s),
        traffic(candidate, |t| t.sent_per_s),
    ));
    rows.push(row(
        "completed/s".into(),
        "per_s",
        traffic(base, |t| t.completed_per_s),
        traffic(candidate, |t| t.completed_per_s),
    ));

    let confidence = noise.map_or(0.0, |n| n.options.confidence);
    let mut verdicts = Vec::new();
    for l in limits {
        let missing = |side: &str| {
            AnalyzeError::Limit(format!(
                "--max-regression {}: the {side} run has no data for {} (check the tag and that the run recorded it)",
                l.metric, l.metric
            ))
        };
        let b = base.figure(&l.metric).ok_or_else(|| missing("base"))?;
        let c = candidate
            .figure(&l.metric)
            .ok_or_else(|| missing("candidate"))?;
        verdicts.push(judge(
            l,
            b,
            c,
            interval_of(&l.metric.to_string()),
            confidence,
        )?);
    }
    Ok(Comparison {
        schema: COMPARE_SCHEMA,
        base: Side::of(base),
        candidate: Side::of(candidate),
        simulated_side,
        bootstrap: noise.map(|n| BootstrapInfo {
            options: n.options,
            base_blocks: n.base.blocks,
            base_block_s: n.base.block_s,
            candidate_blocks: n.candidate.blocks,
            candidate_block_s: n.candidate.block_s,
        }),
        passed: verdicts.iter().all(|v| !v.exceeded),
        rows,
        limits: verdicts,
    })
}

impl Comparison {
    pub fn title(&self) -> String {
        let side = |s: &Side| {
            format!(
                "{} ({})",
                s.profile.as_deref().unwrap_or("unknown profile"),
                s.kind.as_deref().unwrap_or("unknown kind")
            )
        };
        format!(
            "surge compare: base {} vs candidate {}",
            side(&self.base),
            side(&self.candidate)
        )
    }

    /// One line: passed or which limits failed.
    pub fn verdict(&self) -> String {
        let failed: Vec<&str> = self
            .limits
            .iter()
            .filter(|l| l.exceeded)
            .map(|l| l.figure.as_str())
            .collect();
        if self.limits.is_empty() {
            "no regression limits given".to_string()
        } else if failed.is_empty() {
            format!("all {} regression limits hold", self.limits.len())
        } else {
            format!("regression beyond limits: {}", failed.join(", "))
        }
    }

    /// How the intervals were made, for the note under the figures.
    fn bootstrap_note(&self) -> Option<String> {
        let b = self.bootstrap.as_ref()?;
        Some(format!(
            "CI: {} confidence interval of the delta from a block bootstrap, {} resamples of the base's {} blocks of {} s and the candidate's {} blocks of {} s (seed {}); significant: the interval excludes 0; – : no interval (maxima, percentiles with fewer than {} values beyond them, runs of fewer than {} blocks; the JSON output says why)",
            show_confidence(b.options.confidence),
            b.options.resamples,
            b.base_blocks,
            b.base_block_s,
            b.candidate_blocks,
            b.candidate_block_s,
            b.options.seed,
            noise::MIN_TAIL,
            noise::MIN_BLOCKS,
        ))
    }

    /// The comparison as tables (shared by text, Markdown and HTML).
    pub fn tables(&self) -> Vec<Table> {
        let mut runs = Table {
            id: "runs".into(),
            title: "Runs".into(),
            header: ["side", "kind", "run directories"]
                .map(String::from)
                .to_vec(),
            rows: Vec::new(),
            text_columns: 3,
            note: None,
        };
        for (name, s) in [("base", &self.base), ("candidate", &self.candidate)] {
            runs.rows.push(vec![
                name.to_string(),
                s.kind.clone().unwrap_or_else(|| "–".into()),
                s.runs.join(", "),
            ]);
        }
        let predict = self.simulated_side.is_some();
        let ci = self
            .bootstrap
            .as_ref()
            .map(|b| format!("{} CI", show_confidence(b.options.confidence)));
        let mut header: Vec<String> = ["figure", "base", "candidate", "Δ", "Δ %"]
            .map(String::from)
            .to_vec();
        if let Some(ci) = &ci {
            header.extend([format!("Δ {ci}"), format!("Δ % {ci}"), "noise".into()]);
        }
        if predict {
            header.push("prediction error".into());
        }
        let notes: Vec<String> = predict
            .then(|| {
                format!(
                    "prediction error = (simulated − measured) / measured; the {} is simulated",
                    self.simulated_side.unwrap_or("base")
                )
            })
            .into_iter()
            .chain(self.bootstrap_note())
            .collect();
        let mut figures = Table {
            id: "figures".into(),
            title: "Figures side by side".into(),
            header,
            rows: Vec::new(),
            text_columns: 1,
            note: (!notes.is_empty()).then(|| notes.join("\n")),
        };
        let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("–".to_string(), f);
        for r in &self.rows {
            let u = r.unit;
            let mut cells = vec![
                r.figure.clone(),
                opt(r.base, &|v| show(u, v)),
                opt(r.candidate, &|v| show(u, v)),
                opt(r.delta, &|v| fmt::signed(v, |x| show(u, x))),
                opt(r.relative, &|v| fmt::signed(v, fmt::pct)),
            ];
            if ci.is_some() {
                let i = r.interval.as_ref();
                let none = || "–".to_string();
                cells.push(i.map_or_else(none, |i| show_interval((i.low, i.high), |x| show(u, x))));
                cells.push(
                    i.and_then(|i| i.relative_low.zip(i.relative_high))
                        .map_or_else(none, |t| show_interval(t, fmt::pct)),
                );
                cells.push(match r.significant {
                    Some(true) => "significant".into(),
                    Some(false) => "within noise".into(),
                    None => none(),
                });
            }
            if predict {
                cells.push(opt(r.prediction_error, &|v| fmt::signed(v, fmt::pct)));
            }
            figures.rows.push(cells);
        }
        let mut header: Vec<String> = ["", "figure", "limit", "base", "candidate", "allowed up to"]
            .map(String::from)
            .to_vec();
        if let Some(ci) = &ci {
            header.extend([format!("Δ {ci}"), "CI vs limit".into()]);
        }
        let mut limits = Table {
            id: "limits".into(),
            title: "Regression limits".into(),
            header,
            rows: Vec::new(),
            text_columns: 3,
            note: self.limits.iter().any(|l| l.significance).then(|| {
                "a limit ending in ! fails only when the whole CI lies beyond its allowance"
                    .to_string()
            }),
        };
        for l in &self.limits {
            let u = if l.figure.ends_with(".rate") {
                "ratio"
            } else {
                "ms"
            };
            let mut cells = vec![
                mark(!l.exceeded).to_string(),
                l.figure.clone(),
                l.limit.clone(),
                show(u, l.base),
                show(u, l.candidate),
                show(u, l.allowed),
            ];
            if ci.is_some() {
                let relative = l.limit.trim_end_matches('!').ends_with('%');
                cells.push(l.interval.map_or("–".into(), |t| {
                    show_interval(t, |x| show_term(relative, u, x))
                }));
                cells.push(l.ci_vs_allowance.unwrap_or("–").to_string());
            }
            limits.rows.push(cells);
        }
        let mut out = vec![runs, figures];
        if !limits.rows.is_empty() {
            out.push(limits);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_kinds_of_limit() {
        let l = parse_limits("e2e.p99=+10%, ttft.p99=+50ms,errors.rate=+0.05pp").unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l[0].allowance, Allowance::Relative(0.1));
        assert_eq!(l[1].allowance, Allowance::Absolute(50.0));
        assert!(matches!(l[2].allowance, Allowance::Absolute(a) if (a - 0.0005).abs() < 1e-12));
        assert!((l[0].allowed(200.0) - 220.0).abs() < 1e-9);
        // More goodput is better: its allowance is a fall.
        let g = parse_limits("goodput.ratio=+2%,goodput.ratio=+0.5pp").unwrap();
        assert!(g[0].falls_when_worse());
        assert!((g[0].allowed(0.9) - 0.882).abs() < 1e-9);
        assert!((g[1].allowed(0.9) - 0.895).abs() < 1e-9);
        assert!(l.iter().all(|l| !l.significance));
    }

    #[test]
    fn a_trailing_bang_asks_for_significance() {
        let l = parse_limits("e2e.p99=+10%!, ttft.p50=+50ms !,errors.rate=+0.05pp!").unwrap();
        assert!(l.iter().all(|l| l.significance));
        assert_eq!(l[0].allowance, Allowance::Relative(0.1));
        assert_eq!(l[1].allowance, Allowance::Absolute(50.0));
        assert_eq!(l[0].text, "+10%!");
    }

    #[test]
    fn unknown_figures_and_wrong_units_are_errors() {
        for (spec, needle) in [
            ("latency.p99=+10%", "unknown metric \"latency.p99\""),
            ("e2e.p98=+10%", "unknown statistic"),
            ("e2e.p99", "expected FIGURE=+ALLOWANCE"),
            ("errors.rate=+50ms", "is a rate"),
            ("e2e.p99=+1pp", "is a latency"),
            ("e2e.p99=+fast", "expected e.g."),
            ("e2e.p99=+-5%", "not a non-negative number"),
            (
                "e2e.p99!=+10%",
                "`!` goes after the allowance: e2e.p99=+10%!",
            ),
            (
                "e2e.p99=+!10%",
                "`!` goes once, at the very end: e2e.p99=+10%!",
            ),
            ("e2e.p99=+10%!!", "`!` goes once, at the very end"),
            ("e2e.p99=!+10%", "`!` goes once, at the very end"),
            ("e2e.max=+10%!", "a maximum has no confidence interval"),
        ] {
            let e = parse_limits(spec).unwrap_err().to_string();
            assert!(e.contains(needle), "{spec}: {e}");
        }
    }
}
