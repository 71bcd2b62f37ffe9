//! `surge compare BASE CANDIDATE`: side by side, exit 1 on regression beyond the limits.

use std::io::IsTerminal;
use std::path::PathBuf;

use surge_analyze::{Format, LoadOptions, ReportOptions, render};

use super::report::{emit, parse_format};
use crate::{Failure, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The base run directory (e.g. a checked-in baseline).
    pub base: PathBuf,
    /// The candidate run directory.
    pub candidate: PathBuf,
    /// Regression limits, comma-separated: FIGURE=+N% (relative), FIGURE=+50ms (latency),
    /// FIGURE=+0.05pp (rate, percentage points). Figures as in profile thresholds:
    /// e2e.p99, ttft:manga_jp.p99, errors.rate, late.rate.
    #[arg(long, value_name = "LIMITS", allow_hyphen_values = true)]
    pub max_regression: Option<String>,
    /// Output format: text, json, markdown, html or junit (one test case per limit).
    #[arg(long, default_value = "text", value_parser = parse_format)]
    pub format: Format,
    /// Write the comparison to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub fn run(args: &Args) -> Result<Outcome, Failure> {
    let usage = |e: surge_analyze::AnalyzeError| Failure::Usage(e.to_string());
    let limits =
        surge_analyze::parse_limits(args.max_regression.as_deref().unwrap_or("")).map_err(usage)?;
    let load = LoadOptions {
        progress: std::io::stderr().is_terminal(),
        ..LoadOptions::default()
    };
    let opts = ReportOptions::default();
    let base =
        surge_analyze::report(std::slice::from_ref(&args.base), &load, &opts).map_err(usage)?;
    let candidate = surge_analyze::report(std::slice::from_ref(&args.candidate), &load, &opts)
        .map_err(usage)?;
    for w in base.warnings.iter().chain(&candidate.warnings) {
        eprintln!("warning: {w}");
    }
    let comparison = surge_analyze::compare(&base, &candidate, &limits).map_err(usage)?;
    emit(
        &render::comparison(&comparison, args.format),
        args.out.as_ref(),
    )?;
    if comparison.passed {
        Ok(Outcome::Success)
    } else {
        eprintln!("{}", comparison.verdict());
        Ok(Outcome::Failed)
    }
}
