//! GitHub-flavoured Markdown, for CI step summaries and pull-request comments.

use crate::compare::Comparison;
use crate::model::Report;
use crate::tables::{self, Table};

fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn table(t: &Table, out: &mut String) {
    out.push_str(&format!("### {}\n\n", t.title));
    let row = |cells: &[String]| {
        let inner: Vec<String> = cells.iter().map(|c| cell(c)).collect();
        format!("| {} |\n", inner.join(" | "))
    };
    out.push_str(&row(&t.header));
    let align: Vec<String> = (0..t.header.len())
        .map(|c| if c < t.text_columns { ":--" } else { "--:" }.to_string())
        .collect();
    out.push_str(&format!("|{}|\n", align.join("|")));
    for r in &t.rows {
        out.push_str(&row(r));
    }
    if let Some(note) = &t.note {
        out.push_str(&format!("\n{}\n", note.replace('\n', "\n\n")));
    }
    out.push('\n');
}

fn warnings(list: &[String], out: &mut String) {
    if list.is_empty() {
        return;
    }
    out.push_str(&format!(
        "<details><summary>{} warnings</summary>\n\n",
        list.len()
    ));
    for w in list {
        out.push_str(&format!("- `{w}`\n"));
    }
    out.push_str("\n</details>\n");
}

pub fn report(report: &Report) -> String {
    let mut out = format!("## {}\n\n", super::text::title(report));
    for t in tables::report_tables(report) {
        table(&t, &mut out);
    }
    warnings(&report.warnings, &mut out);
    out
}

pub fn comparison(c: &Comparison) -> String {
    let mut out = format!("## {}\n\n", c.title());
    for t in c.tables() {
        table(&t, &mut out);
    }
    out.push_str(&format!("**{}**\n", c.verdict()));
    out
}
