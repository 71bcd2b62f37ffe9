//! One self-contained HTML file: the report's tables plus inline SVG charts, no network.
//!
//! A few lines of inline script only *measure* the page after it rendered (how many charts
//! have a non-empty bounding box) and store that on `<body data-charts-rendered>`, so a
//! headless browser check (scripts/check-html.sh) can tell a drawn page from a broken one.

use crate::charts;
use crate::compare::Comparison;
use crate::model::Report;
use crate::render::junit::xml_escape as esc;
use crate::tables::{self, Table};

const STYLE: &str = "body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:1100px;color:#222;padding:0 16px}\
h1{font-size:20px}h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;margin:8px 0 4px}td,th{padding:3px 10px;border-bottom:1px solid #eee}\
th{background:#f6f6f6;text-align:left}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}\
.note{color:#555;margin:2px 0 10px}.pass{color:#1a7f37}.fail{color:#cf222e;font-weight:bold}\
svg.chart{display:block;margin:10px 0;max-width:100%;height:auto}\
svg .chart-title{font-size:14px;font-weight:600}svg text{font-size:11px;fill:#333}\
svg .grid{stroke:#eee}svg .axis{stroke:#888}svg .mark circle{fill:#000}\
.warnings{color:#9a6700}";

const SELF_CHECK: &str = "<script>(function(){var n=0;\
document.querySelectorAll('svg.chart').forEach(function(s){var b=s.getBBox();if(b.width>0&&b.height>0){n++;}});\
document.body.setAttribute('data-charts-rendered',String(n));})();</script>\n";

fn table(t: &Table, out: &mut String) {
    out.push_str(&format!(
        "<h2 id=\"{}\">{}</h2>\n<table>\n<tr>",
        esc(&t.id),
        esc(&t.title)
    ));
    let class = |c: usize| {
        if c < t.text_columns {
            ""
        } else {
            " class=\"n\""
        }
    };
    for (c, h) in t.header.iter().enumerate() {
        out.push_str(&format!("<th{}>{}</th>", class(c), esc(h)));
    }
    out.push_str("</tr>\n");
    for r in &t.rows {
        out.push_str("<tr>");
        for (c, cell) in r.iter().enumerate() {
            let mark = match cell.as_str() {
                "✓" => " class=\"pass\"",
                "✗" => " class=\"fail\"",
                _ => class(c),
            };
            out.push_str(&format!("<td{mark}>{}</td>", esc(cell)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    if let Some(n) = &t.note {
        out.push_str(&format!("<p class=\"note\">{}</p>\n", esc(n)));
    }
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body data-charts-rendered=\"pending\">\n<h1>{}</h1>\n{body}{SELF_CHECK}</body>\n</html>\n",
        esc(title),
        esc(title)
    )
}

/// A page of other tables and SVG charts (a sweep's step table and its curves), styled
/// and self-checked like the report.
pub fn tables_and_charts(title: &str, tables: &[Table], charts: &[String]) -> String {
    let mut body = String::new();
    for t in tables {
        table(t, &mut body);
    }
    for c in charts {
        body.push_str(c);
    }
    page(title, &body)
}

fn warnings(list: &[String], out: &mut String) {
    if list.is_empty() {
        return;
    }
    out.push_str(&format!(
        "<h2 id=\"warnings\">Warnings ({})</h2>\n<ul class=\"warnings\">\n",
        list.len()
    ));
    for w in list {
        out.push_str(&format!("<li><code>{}</code></li>\n", esc(w)));
    }
    out.push_str("</ul>\n");
}

pub fn report(report: &Report) -> String {
    let all = tables::report_tables(report);
    let (head, rest): (Vec<&Table>, Vec<&Table>) = all
        .iter()
        .partition(|t| matches!(t.id.as_str(), "latency" | "thresholds" | "traffic"));
    let mut body = String::new();
    for t in head {
        table(t, &mut body);
    }
    body.push_str("<h2 id=\"charts\">Charts</h2>\n");
    for svg in charts::all(report) {
        body.push_str(&svg);
    }
    for t in rest {
        table(t, &mut body);
    }
    warnings(&report.warnings, &mut body);
    page(&super::text::title(report), &body)
}

pub fn comparison(c: &Comparison) -> String {
    let mut body = String::new();
    for t in c.tables() {
        table(&t, &mut body);
    }
    body.push_str(&format!("<p><strong>{}</strong></p>\n", esc(&c.verdict())));
    page(&c.title(), &body)
}
