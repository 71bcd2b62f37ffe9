//! The Grafana dashboard (scripts/grafana/surge-dashboard.json) queries only metrics the
//! code registers: the generator's exporter (crates/loadgen) and the mock's /metrics
//! (crates/mock). A renamed or removed metric fails here instead of leaving an empty panel.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use surge_profile::LatencyMetric;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `"surge_…"` string literal of a source file.
fn literals(path: &Path) -> BTreeSet<String> {
    let src = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    src.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.starts_with("surge_")
                && s.len() > "surge_".len()
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        .map(str::to_string)
        .collect()
}

/// The metric names the generator and the mock register.
fn registered() -> BTreeSet<String> {
    let exporter = repo().join("crates/loadgen/src/exporter.rs");
    let mut names = literals(&exporter);
    names.extend(literals(&repo().join("crates/mock/src/metrics.rs")));
    // The generator's latency histograms are named from the run's metrics at scrape time.
    let src = std::fs::read_to_string(&exporter).unwrap();
    assert!(
        src.contains(r#"format!("surge_{}_seconds", metric.name())"#),
        "the exporter no longer names its histograms surge_<metric>_seconds: update this test"
    );
    for m in LatencyMetric::ALL {
        names.insert(format!("surge_{}_seconds", m.name()));
    }
    names
}

/// Every `expr` of the dashboard, with the panel title it belongs to.
fn exprs(v: &serde_json::Value, title: &str, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(map) => {
            let title = map.get("title").and_then(|t| t.as_str()).unwrap_or(title);
            for (k, child) in map {
                if k == "expr" {
                    out.push((title.to_string(), child.as_str().unwrap().to_string()));
                } else {
                    exprs(child, title, out);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| exprs(i, title, out)),
        _ => {}
    }
}

/// Identifiers starting with `surge_` in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(pos) = expr[i..].find("surge_") {
        let start = i + pos;
        let boundary = start == 0 || {
            let c = bytes[start - 1] as char;
            !(c.is_ascii_alphanumeric() || c == '_')
        };
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        if boundary {
            names.push(expr[start..end].to_string());
        }
        i = end;
    }
    names
}

#[test]
fn every_dashboard_query_names_a_registered_metric() {
    let path = repo().join("scripts/grafana/surge-dashboard.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).expect("valid JSON");
    let known = registered();
    assert!(known.contains("surge_sessions_open") && known.contains("surge_mock_requests_total"));

    let mut all = Vec::new();
    exprs(&dashboard["panels"], "", &mut all);
    assert!(
        all.len() >= 10,
        "the dashboard has too few queries: {all:?}"
    );
    let mut used = BTreeSet::new();
    let mut unknown = Vec::new();
    for (title, expr) in &all {
        let names = metric_names(expr);
        assert!(
            !names.is_empty(),
            "panel \"{title}\": no surge_ metric in {expr}"
        );
        for name in names {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|b| known.contains(*b)))
                .unwrap_or(&name)
                .to_string();
            if known.contains(&base) {
                used.insert(base);
            } else {
                unknown.push(format!("panel \"{title}\": {name}"));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "the dashboard queries metrics the code does not register:\n  {}\nregistered: {known:?}",
        unknown.join("\n  ")
    );
    // Both sides are on the dashboard.
    assert!(used.iter().any(|n| n.starts_with("surge_mock_")));
    assert!(used.iter().any(|n| !n.starts_with("surge_mock_")));
    // Template variables query real metrics too.
    let mut vars = Vec::new();
    for v in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["definition"].as_str() {
            vars.extend(metric_names(q));
        }
    }
    for name in vars {
        assert!(known.contains(&name), "template variable queries {name}");
    }
}

#[test]
fn metric_names_are_found_in_promql() {
    assert_eq!(
        metric_names(
            r#"histogram_quantile(0.99, sum by (le) (rate(surge_ttft_seconds_bucket{job=~"$g"}[1m]))) / x_surge_no"#
        ),
        ["surge_ttft_seconds_bucket"]
    );
}
