//! `surge compare`: two reports side by side, regression limits, prediction error.
//!
//! Why it exists: the nightly job must fail on a regression and nothing else, so a limit is
//! parsed strictly — figure names go through the profile crate's [`MetricRef`] (an unknown
//! name is an error, never a silent pass) and a figure missing from either run is an error
//! too. When one side is simulated and the other measured, the relative difference is the
//! simulator's prediction error, shown per figure.

use serde::Serialize;
use surge_profile::metric::{LimitUnit, MetricRef};

use crate::error::{AnalyzeError, Result};
use crate::fmt;
use crate::model::Report;
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

/// One regression limit, `e2e.p99=+10%`.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    pub metric: MetricRef,
    pub allowance: Allowance,
    /// As written after `=`.
    pub text: String,
}

impl Limit {
    /// The highest candidate value that passes, given the base value.
    pub fn allowed(&self, base: f64) -> f64 {
        match self.allowance {
            Allowance::Relative(f) => base * (1.0 + f),
            Allowance::Absolute(a) => base + a,
        }
    }
}

fn limit_error(item: &str, why: impl std::fmt::Display) -> AnalyzeError {
    AnalyzeError::Limit(format!("--max-regression {item:?}: {why}"))
}

/// Parse `e2e.p99=+10%,ttft.p99=+50ms,errors.rate=+0.05pp`.
///
/// `%` is relative to the base value; a duration (`50ms`, `1s`) is an absolute allowance for
/// latency figures; `pp` (percentage points) is an absolute allowance for rates.
pub fn parse_limits(spec: &str) -> Result<Vec<Limit>> {
    spec.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let (name, value) = item
                .split_once('=')
                .ok_or_else(|| limit_error(item, "expected FIGURE=+ALLOWANCE, e.g. e2e.p99=+10%"))?;
            let metric: MetricRef = name.trim().parse().map_err(|e| limit_error(item, e))?;
            let text = value.trim().to_string();
            let v = text.strip_prefix('+').unwrap_or(&text).trim();
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

/// Compare `candidate` against `base` under `limits`.
pub fn compare(base: &Report, candidate: &Report, limits: &[Limit]) -> Result<Comparison> {
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
    let row = |figure: String, unit: &'static str, b: Option<f64>, c: Option<f64>| {
        let delta = b.zip(c).map(|(b, c)| c - b);
        let relative = b.zip(delta).filter(|(b, _)| *b != 0.0).map(|(b, d)| d / b);
        let prediction_error = simulated_side.and_then(|side| {
            let (sim, meas) = if side == "base" { (b?, c?) } else { (c?, b?) };
            (meas != 0.0).then(|| (sim - meas) / meas)
        });
        CompareRow {
            figure,
            unit,
            base: b,
            candidate: c,
            delta,
            relative,
            prediction_error,
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
        let allowed = l.allowed(b);
        let exceeded = c > allowed + allowed.abs() * 1e-12;
        let unit = unit_of(&l.metric);
        verdicts.push(LimitVerdict {
            figure: l.metric.to_string(),
            limit: format!("+{}", l.text.trim_start_matches('+')),
            base: b,
            candidate: c,
            allowed,
            exceeded,
            explanation: format!(
                "{} {}: base {}, candidate {}, allowed up to {}",
                l.metric,
                if exceeded {
                    "regressed beyond its limit"
                } else {
                    "within its limit"
                },
                show(unit, b),
                show(unit, c),
                show(unit, allowed)
            ),
        });
    }
    Ok(Comparison {
        schema: COMPARE_SCHEMA,
        base: Side::of(base),
        candidate: Side::of(candidate),
        simulated_side,
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
        let mut header = vec!["figure", "base", "candidate", "Δ", "Δ %"];
        if predict {
            header.push("prediction error");
        }
        let mut figures = Table {
            id: "figures".into(),
            title: "Figures side by side".into(),
            header: header.into_iter().map(String::from).collect(),
            rows: Vec::new(),
            text_columns: 1,
            note: predict.then(|| {
                format!(
                    "prediction error = (simulated − measured) / measured; the {} is simulated",
                    self.simulated_side.unwrap_or("base")
                )
            }),
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
            if predict {
                cells.push(opt(r.prediction_error, &|v| fmt::signed(v, fmt::pct)));
            }
            figures.rows.push(cells);
        }
        let mut limits = Table {
            id: "limits".into(),
            title: "Regression limits".into(),
            header: ["", "figure", "limit", "base", "candidate", "allowed up to"]
                .map(String::from)
                .to_vec(),
            rows: Vec::new(),
            text_columns: 3,
            note: None,
        };
        for l in &self.limits {
            let u = if l.figure.ends_with(".rate") {
                "ratio"
            } else {
                "ms"
            };
            limits.rows.push(vec![
                mark(!l.exceeded).to_string(),
                l.figure.clone(),
                l.limit.clone(),
                show(u, l.base),
                show(u, l.candidate),
                show(u, l.allowed),
            ]);
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
        ] {
            let e = parse_limits(spec).unwrap_err().to_string();
            assert!(e.contains(needle), "{spec}: {e}");
        }
    }
}
