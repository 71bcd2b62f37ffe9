//! JSON for machines: the data model itself (`schema: surge.report/v1` / `surge.compare/v1`).

use crate::compare::Comparison;
use crate::model::Report;

fn pretty<T: serde::Serialize>(v: &T) -> String {
    // The model holds only strings, numbers and maps with string keys: cannot fail.
    let mut s = serde_json::to_string_pretty(v).expect("the report model serializes");
    s.push('\n');
    s
}

pub fn report(report: &Report) -> String {
    pretty(report)
}

pub fn comparison(c: &Comparison) -> String {
    pretty(c)
}
