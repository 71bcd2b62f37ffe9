//! Output writers: each turns the one [`Report`] (or [`Comparison`]) into one format.
//!
//! Why it exists: formats differ only in presentation. Text, Markdown and HTML render the
//! same [`crate::tables`]; JSON is the data model itself; JUnit renders the thresholds;
//! `.hgrm` renders the percentile distributions.

pub mod hgrm;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod text;

use crate::compare::Comparison;
use crate::model::Report;

/// The formats of `surge report --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Markdown,
    Html,
    Junit,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::Text,
        Format::Json,
        Format::Markdown,
        Format::Html,
        Format::Junit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Json => "json",
            Format::Markdown => "markdown",
            Format::Html => "html",
            Format::Junit => "junit",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                format!("unknown format {s:?}: expected text, json, markdown, html or junit")
            })
    }
}

/// Render a report in `format`.
pub fn report(report: &Report, format: Format) -> String {
    match format {
        Format::Text => text::report(report),
        Format::Json => json::report(report),
        Format::Markdown => markdown::report(report),
        Format::Html => html::report(report),
        Format::Junit => junit::report(report),
    }
}

/// Render a comparison in `format` (JUnit: one test case per regression limit).
pub fn comparison(c: &Comparison, format: Format) -> String {
    match format {
        Format::Text => text::comparison(c),
        Format::Json => json::comparison(c),
        Format::Markdown => markdown::comparison(c),
        Format::Html => html::comparison(c),
        Format::Junit => junit::comparison(c),
    }
}
