//! JUnit XML for CI systems: one test case per threshold (or per regression limit).

use crate::compare::Comparison;
use crate::model::Report;
use crate::tables::measured_text;

/// Escape text for XML attributes and content.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

struct Case {
    name: String,
    failure: Option<String>,
    output: String,
}

fn suites(suite: &str, class: &str, cases: &[Case]) -> String {
    let failures = cases.iter().filter(|c| c.failure.is_some()).count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"surge\" tests=\"{}\" failures=\"{failures}\" errors=\"0\">\n",
        cases.len()
    ));
    out.push_str(&format!(
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">\n",
        xml_escape(suite),
        cases.len()
    ));
    for c in cases {
        out.push_str(&format!(
            "    <testcase classname=\"{}\" name=\"{}\">\n",
            xml_escape(class),
            xml_escape(&c.name)
        ));
        if let Some(f) = &c.failure {
            out.push_str(&format!(
                "      <failure message=\"{}\" type=\"threshold\">{}</failure>\n",
                xml_escape(f),
                xml_escape(f)
            ));
        }
        out.push_str(&format!(
            "      <system-out>{}</system-out>\n",
            xml_escape(&c.output)
        ));
        out.push_str("    </testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

pub fn report(report: &Report) -> String {
    let cases: Vec<Case> = report
        .thresholds
        .iter()
        .map(|t| {
            let measured = measured_text(t);
            Case {
                name: format!("{} {}", t.metric, t.condition),
                failure: (!t.passed)
                    .then(|| format!("{} {}: measured {measured}", t.metric, t.condition)),
                output: format!("measured {measured}"),
            }
        })
        .collect();
    suites(&super::text::title(report), "surge.thresholds", &cases)
}

pub fn comparison(c: &Comparison) -> String {
    let cases: Vec<Case> = c
        .limits
        .iter()
        .map(|l| Case {
            name: format!("{} {}", l.figure, l.limit),
            failure: l.exceeded.then(|| l.explanation.clone()),
            output: l.explanation.clone(),
        })
        .collect();
    suites(&c.title(), "surge.regression", &cases)
}
