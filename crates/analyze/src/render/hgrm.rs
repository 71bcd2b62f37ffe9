//! `.hgrm` percentile-distribution files, as HdrHistogram's `outputPercentileDistribution`
//! writes them (values in milliseconds, 5 ticks per half distance), for the HdrHistogram
//! plotter and for anyone used to wrk2's output.

use std::path::{Path, PathBuf};

use crate::model::{Distribution, Report};

/// Decimal places of values: the histograms' significant digits (surge records 3).
const DIGITS: usize = 3;

/// One distribution as `.hgrm` text.
pub fn distribution(d: &Distribution) -> String {
    let mut out = format!(
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    for p in &d.points {
        if p.quantile < 1.0 {
            out.push_str(&format!(
                "{:12.DIGITS$} {:2.12} {:10} {:14.2}\n",
                p.value_ms,
                p.quantile,
                p.total_count,
                1.0 / (1.0 - p.quantile)
            ));
        } else {
            out.push_str(&format!(
                "{:12.DIGITS$} {:2.12} {:10}\n",
                p.value_ms, p.quantile, p.total_count
            ));
        }
    }
    out.push_str(&format!(
        "#[Mean    = {:12.DIGITS$}, StdDeviation   = {:12.DIGITS$}]\n",
        d.mean_ms, d.stdev_ms
    ));
    out.push_str(&format!(
        "#[Max     = {:12.DIGITS$}, Total count    = {:12}]\n",
        d.max_ms, d.count
    ));
    out.push_str(&format!(
        "#[Buckets = {:12}, SubBuckets     = {:12}]\n",
        d.buckets, d.sub_buckets
    ));
    out
}

/// File name for a tag: `e2e.hgrm`.
pub fn file_name(tag: &str) -> String {
    format!("{}.hgrm", tag.replace([':', '/'], "_"))
}

/// Write one `.hgrm` per distribution of the report into `dir` (created if needed).
pub fn write_dir(report: &Report, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    report
        .charts
        .distributions
        .iter()
        .map(|d| {
            let path = dir.join(file_name(&d.tag));
            std::fs::write(&path, distribution(d))?;
            Ok(path)
        })
        .collect()
}
