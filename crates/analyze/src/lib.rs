//! `surge-analyze`: reads run directories and turns them into reports and comparisons.
//!
//! Why it exists: prediction (`surge simulate`) and measurement (`surge run`) write the same
//! run directory (see `surge_record`), so one analyzer reads both and puts them side by side.
//! It depends on the run directory only — never on the simulator or the load generator.
//!
//! The pipeline, one module per step:
//!
//! | step | module | |
//! |---|---|---|
//! | time layout: window, stages, chart buckets | [`window`] | [`Grid`] |
//! | stream and decode shard logs in parallel | [`load`](mod@load), [`stream`], [`decode`] | [`Loaded`] |
//! | merged counts per tag / stage / bucket (and bootstrap block) | [`accumulate`], [`counts`], [`blocks`] | [`Accumulator`] |
//! | figures, sections, thresholds, chart data | [`analysis`], [`timeline`], [`thresholds`] | [`Report`] |
//! | tables shared by the human formats | [`tables`] | [`Table`] |
//! | writers: text, Markdown, HTML+SVG, JSON, JUnit, `.hgrm` | [`render`], [`charts`], [`svg`] | [`Format`] |
//! | two reports side by side, regression limits | [`compare`](mod@compare) | [`Comparison`] |
//! | run-to-run noise: a confidence interval per delta | [`noise`] | [`Samples`] |
//!
//! ```no_run
//! use surge_analyze::{LoadOptions, ReportOptions, render, Format};
//! # fn main() -> surge_analyze::Result<()> {
//! let report = surge_analyze::report(&["results/local/2026-11-28T13-05-00Z".into()],
//!     &LoadOptions::default(), &ReportOptions::default())?;
//! print!("{}", render::report(&report, Format::Markdown));
//! # Ok(()) }
//! ```

pub mod accumulate;
pub mod analysis;
pub mod blocks;
pub mod charts;
pub mod compare;
pub mod counts;
pub mod decode;
pub mod error;
pub mod fmt;
pub mod load;
pub mod model;
pub mod noise;
pub mod render;
pub mod stream;
pub mod svg;
pub mod tables;
pub mod thresholds;
pub mod timeline;
pub mod window;

use std::path::PathBuf;

pub use accumulate::Accumulator;
pub use analysis::{ReportOptions, analyze};
pub use compare::{Comparison, Limit, compare, parse_limits};
pub use error::{AnalyzeError, Result};
pub use load::{LoadOptions, Loaded, load};
pub use model::{By, Report};
pub use noise::{BootstrapOptions, Samples};
pub use render::Format;
pub use tables::Table;
pub use window::Grid;

/// Load `paths` and build their report in one call.
pub fn report(paths: &[PathBuf], load: &LoadOptions, opts: &ReportOptions) -> Result<Report> {
    let loaded = load::load(paths, load)?;
    Ok(analyze(&loaded, opts))
}
