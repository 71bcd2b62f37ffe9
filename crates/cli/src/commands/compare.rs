//! `surge compare BASE CANDIDATE`: side by side, exit 1 on regression beyond the limits.
//! Either may be `s3://BUCKET/PREFIX`, read through a temporary download.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use surge_analyze::compare::Noise;
use surge_analyze::{
    BootstrapOptions, Format, LoadOptions, Report, ReportOptions, Samples, render,
};

use super::report::{emit, parse_format};
use crate::{Failure, Outcome};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Every delta gets a confidence interval from a block bootstrap over the \
runs' one-second intervals (blocks of a few seconds, resampled with replacement, histograms \
merged exactly) and is marked significant when the interval excludes 0. A limit ending in ! \
(e2e.p99=+10%!) fails only when the whole interval lies beyond its allowance, so a nightly \
job does not fail on run-to-run noise; such a limit on a figure without an interval (a maximum, \
a run of under ten blocks, too few values beyond a percentile) is a usage error (exit 2)."
)]
pub struct Args {
    /// The base run directory (e.g. a checked-in baseline), or s3://BUCKET/PREFIX where
    /// `surge run --upload` put one.
    pub base: PathBuf,
    /// The candidate run directory, or s3://BUCKET/PREFIX.
    pub candidate: PathBuf,
    /// Regression limits, comma-separated: FIGURE=+N% (relative), FIGURE=+50ms (latency),
    /// FIGURE=+0.05pp (rate, percentage points); a trailing ! (e2e.p99=+10%!) fails only
    /// when the regression beyond the allowance is significant. Figures as in profile
    /// thresholds: e2e.p99, ttft:manga_jp.p99, errors.rate, late.rate.
    #[arg(long, value_name = "LIMITS", allow_hyphen_values = true)]
    pub max_regression: Option<String>,
    /// Bootstrap resamples per run for the confidence intervals (0: no intervals, and no
    /// limit may end in !).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub bootstrap: usize,
    /// Confidence of the intervals, in percent.
    #[arg(long, value_name = "PCT", default_value_t = 95.0, value_parser = parse_confidence)]
    pub confidence: f64,
    /// Seed of the bootstrap (the same seed gives the same intervals).
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,
    /// Output format: text, json, markdown, html or junit (one test case per limit).
    #[arg(long, default_value = "text", value_parser = parse_format)]
    pub format: Format,
    /// Write the comparison to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

fn parse_confidence(s: &str) -> Result<f64, String> {
    s.trim()
        .trim_end_matches('%')
        .parse::<f64>()
        .ok()
        .filter(|p| *p > 50.0 && *p < 100.0)
        .ok_or_else(|| format!("{s:?}: expected a percentage above 50 and below 100, e.g. 95"))
}

/// One side's report, and its bootstrap blocks when asked for.
fn side(
    path: &Path,
    load: &LoadOptions,
    opts: &ReportOptions,
) -> surge_analyze::Result<(Report, Samples)> {
    let loaded = surge_analyze::load(std::slice::from_ref(&path.to_path_buf()), load)?;
    Ok((surge_analyze::analyze(&loaded, opts), Samples::of(&loaded)))
}

pub async fn run(args: &Args) -> Result<Outcome, Failure> {
    let runs = crate::s3::fetch(&[args.base.clone(), args.candidate.clone()]).await?;
    let usage = |e: surge_analyze::AnalyzeError| Failure::Usage(runs.unmask(&e.to_string()));
    let limits =
        surge_analyze::parse_limits(args.max_regression.as_deref().unwrap_or("")).map_err(usage)?;
    let load = LoadOptions {
        progress: std::io::stderr().is_terminal(),
        blocks: args.bootstrap > 0,
        ..LoadOptions::default()
    };
    let opts = ReportOptions::default();
    let (mut base, base_samples) = side(&runs.paths[0], &load, &opts).map_err(usage)?;
    let (mut candidate, candidate_samples) = side(&runs.paths[1], &load, &opts).map_err(usage)?;
    runs.rename(&mut base);
    runs.rename(&mut candidate);
    for w in base.warnings.iter().chain(&candidate.warnings) {
        eprintln!("warning: {w}");
    }
    let noise = (args.bootstrap > 0).then_some(Noise {
        base: &base_samples,
        candidate: &candidate_samples,
        options: BootstrapOptions {
            resamples: args.bootstrap,
            confidence: args.confidence / 100.0,
            seed: args.seed,
        },
    });
    let comparison =
        surge_analyze::compare(&base, &candidate, &limits, noise.as_ref()).map_err(usage)?;
    emit(
        &runs.unmask(&render::comparison(&comparison, args.format)),
        args.out.as_ref(),
    )?;
    if comparison.passed {
        Ok(Outcome::Success)
    } else {
        eprintln!("{}", comparison.verdict());
        Ok(Outcome::Failed)
    }
}
