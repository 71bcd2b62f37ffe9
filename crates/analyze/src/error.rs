//! The analyzer's error type.
//!
//! Why it exists: every way a report can fail is bad input from the caller's point of view (a
//! path that is not a run directory, a log that is not a log, a limit naming an unknown
//! figure), and each message names the file — and line, where there is one — so the CLI can
//! print it as is and exit 2.

use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = AnalyzeError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnalyzeError {
    /// Reading the run directory failed (the message names file and line).
    #[error(transparent)]
    Record(#[from] surge_record::Error),
    /// A directory has neither run.json nor any shard log.
    #[error("{}: not a run directory (no run.json and no shard-NNN.hlog)", path.display())]
    NotARun { path: PathBuf },
    /// No run directory was given.
    #[error("no run directory given")]
    NoRuns,
    /// A window that ends before it starts.
    #[error("--from {from_s}s is not before --to {to_s}s")]
    EmptyWindow { from_s: f64, to_s: f64 },
    /// A regression limit or figure that cannot be used.
    #[error("{0}")]
    Limit(String),
    /// A reading thread panicked (a bug).
    #[error("a log-reading thread panicked")]
    ThreadPanicked,
}
