//! Plain text for terminals: aligned columns, ✓/✗ marks.

use crate::compare::Comparison;
use crate::model::Report;
use crate::tables::{self, Table};

/// One table as aligned text (title, header, rows, note), appended to `out`.
pub fn table(t: &Table, out: &mut String) {
    out.push_str(&t.title);
    out.push('\n');
    let cols = t.header.len();
    let width = |c: usize| {
        std::iter::once(&t.header)
            .chain(&t.rows)
            .filter_map(|r| r.get(c))
            .map(|s| s.chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..cols).map(width).collect();
    for row in std::iter::once(&t.header).chain(&t.rows) {
        let mut line = String::from(" ");
        for (c, cell) in row.iter().enumerate() {
            let pad = " ".repeat(
                widths
                    .get(c)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(cell.chars().count()),
            );
            line.push(' ');
            if c < t.text_columns {
                line.push_str(cell);
                line.push_str(&pad);
            } else {
                line.push_str(&pad);
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    for line in t.note.iter().flat_map(|n| n.lines()) {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
}

fn warnings(list: &[String], out: &mut String) {
    if list.is_empty() {
        return;
    }
    out.push_str(&format!("Warnings ({})\n", list.len()));
    for w in list.iter().take(20) {
        out.push_str("  ");
        out.push_str(w);
        out.push('\n');
    }
    if list.len() > 20 {
        out.push_str(&format!("  … and {} more\n", list.len() - 20));
    }
}

/// The headline of a report.
pub fn title(report: &Report) -> String {
    let profiles: Vec<&str> = report
        .runs
        .iter()
        .filter_map(|r| r.profile.as_deref())
        .collect();
    let mut profiles = profiles;
    profiles.dedup();
    let kind = report.kind().unwrap_or("mixed");
    format!(
        "surge report: {} ({kind}), {}",
        if profiles.is_empty() {
            "unknown profile".to_string()
        } else {
            profiles.join(", ")
        },
        tables::window_label(report)
    )
}

pub fn report(report: &Report) -> String {
    let mut out = title(report);
    out.push_str("\n\n");
    for t in tables::report_tables(report) {
        table(&t, &mut out);
    }
    warnings(&report.warnings, &mut out);
    out
}

pub fn comparison(c: &Comparison) -> String {
    let mut out = c.title();
    out.push_str("\n\n");
    for t in c.tables() {
        table(&t, &mut out);
    }
    out.push_str(&c.verdict());
    out.push('\n');
    out
}
