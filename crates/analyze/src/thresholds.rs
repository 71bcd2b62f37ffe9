//! Profile thresholds, re-evaluated on the report's own data.
//!
//! Why it exists: summary.json's verdicts are for the whole run of one directory. A report
//! over a window, a stage or merged shards must judge the thresholds on the figures it shows,
//! so it reads them from run.json's resolved profile (`"ttft.p99" = "< 800ms"`) with the
//! profile crate's parser and looks the figures up in the [`Report`].

use surge_profile::metric::{LimitUnit, MetricRef, Threshold};

use crate::model::{Report, ThresholdRow};

/// Parse the `thresholds` table of a resolved profile; unparsable entries are returned as
/// messages (a run.json written by surge never has any).
pub fn parse(resolved_profile: &serde_json::Value) -> (Vec<Threshold>, Vec<String>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let Some(map) = resolved_profile
        .get("thresholds")
        .and_then(|t| t.as_object())
    else {
        return (out, problems);
    };
    for (name, cond) in map {
        let cond = cond.as_str().unwrap_or_default();
        match name
            .parse::<MetricRef>()
            .and_then(|m| Threshold::parse(m, cond))
        {
            Ok(t) => out.push(t),
            Err(e) => problems.push(format!("run.json threshold {name:?} = {cond:?}: {e}")),
        }
    }
    (out, problems)
}

/// Judge each threshold on the report's figures; no data fails.
pub fn evaluate(thresholds: &[Threshold], report: &Report) -> Vec<ThresholdRow> {
    thresholds
        .iter()
        .map(|t| {
            let measured = report.figure(&t.metric).filter(|m| m.is_finite());
            ThresholdRow {
                metric: t.metric.to_string(),
                condition: format!("{} {}", t.comparison.symbol(), t.limit),
                op: t.comparison,
                limit: t.limit.value(),
                measured,
                unit: match t.metric.unit() {
                    LimitUnit::Duration => "ms",
                    LimitUnit::Percent => "ratio",
                    LimitUnit::Count => "count",
                },
                passed: measured.is_some_and(|m| t.passes(m)),
            }
        })
        .collect()
}
