//! `surge report RUN_DIR...`: merge shard logs and print or write a report. A RUN_DIR
//! may be `s3://BUCKET/PREFIX`, read through a temporary download.

use std::io::IsTerminal;
use std::path::PathBuf;

use surge_analyze::{By, Format, LoadOptions, ReportOptions, render};

use crate::{Failure, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run directories (results/<profile>/<timestamp>/); all their shard logs are merged.
    /// s3://BUCKET/PREFIX reads a directory that `surge run --upload` put there (AWS
    /// credentials from the usual chain; AWS_ENDPOINT_URL_S3 for an S3-compatible store).
    #[arg(required = true, value_name = "RUN_DIR")]
    pub runs: Vec<PathBuf>,
    /// Output format: text, json, markdown, html or junit.
    #[arg(long, default_value = "text", value_parser = parse_format)]
    pub format: Format,
    /// Write the report to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Window start, seconds since the run start (or a duration such as 90s, 2m).
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub from: Option<f64>,
    /// Window end (exclusive), seconds since the run start (or a duration).
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub to: Option<f64>,
    /// Break down by stage, store or model (repeat or comma-separate; default: all).
    #[arg(long, value_name = "stage|store|model", value_delimiter = ',', value_parser = parse_by)]
    pub by: Vec<By>,
    /// Also write one .hgrm percentile-distribution file per metric into DIR.
    #[arg(long, value_name = "DIR")]
    pub hgrm: Option<PathBuf>,
}

pub(crate) fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}

fn parse_by(s: &str) -> Result<By, String> {
    By::ALL
        .into_iter()
        .find(|b| b.name() == s)
        .ok_or_else(|| format!("unknown breakdown {s:?}: expected stage, store or model"))
}

/// Seconds as a plain number (`90`, `12.5`) or a duration as profiles write it (`90s`, `2m`).
fn parse_time(s: &str) -> Result<f64, String> {
    if let Ok(v) = s.parse::<f64>() {
        return if v.is_finite() && v >= 0.0 {
            Ok(v)
        } else {
            Err(format!("{s:?} is not a time ≥ 0"))
        };
    }
    s.parse::<surge_profile::Duration>()
        .map(|d| d.as_secs_f64())
        .map_err(|e| format!("{s:?}: {e}; expected seconds (90) or a duration (90s, 2m)"))
}

/// Write `text` to `out` or stdout.
pub(crate) fn emit(text: &str, out: Option<&PathBuf>) -> Result<(), Failure> {
    match out {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| Failure::could_not_run(format!("cannot write {}: {e}", path.display()))),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

pub async fn run(args: &Args) -> Result<Outcome, Failure> {
    let runs = crate::s3::fetch(&args.runs).await?;
    let load = LoadOptions {
        from_s: args.from,
        to_s: args.to,
        progress: std::io::stderr().is_terminal(),
        ..LoadOptions::default()
    };
    let opts = ReportOptions {
        by: if args.by.is_empty() {
            By::ALL.to_vec()
        } else {
            args.by.clone()
        },
    };
    let mut report = surge_analyze::report(&runs.paths, &load, &opts)
        .map_err(|e| Failure::Usage(runs.unmask(&e.to_string())))?;
    runs.rename(&mut report);
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    emit(
        &runs.unmask(&render::report(&report, args.format)),
        args.out.as_ref(),
    )?;
    if let Some(dir) = &args.hgrm {
        let files = render::hgrm::write_dir(&report, dir).map_err(|e| {
            Failure::could_not_run(format!(
                "cannot write .hgrm files to {}: {e}",
                dir.display()
            ))
        })?;
        eprintln!("wrote {} .hgrm files to {}", files.len(), dir.display());
    }
    for t in report.thresholds.iter().filter(|t| !t.passed) {
        eprintln!(
            "threshold failed: {} {} (measured {})",
            t.metric,
            t.condition,
            surge_analyze::tables::measured_text(t)
        );
    }
    Ok(if report.passed() {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}
