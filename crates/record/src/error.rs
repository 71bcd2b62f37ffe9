//! The one error type of `surge-record`, and the warning type used by tolerant readers.
//!
//! Why it exists: the run directory is read by people and by CI. Every failure names what it
//! was working on (the file, and the line or row where there is one), so a message alone is
//! enough to find the problem. Readers that can keep going after damage (a crash-truncated
//! hlog or timeline) return [`Warning`]s instead of failing.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while writing or reading a run directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O call failed on `path`.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        /// What was being done, e.g. "create file", "rename".
        action: &'static str,
        #[source]
        source: io::Error,
    },

    /// A JSON file could not be parsed or written (serde_json's message carries line/column).
    #[error("{}: invalid JSON: {source}", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// A JSON file declares a schema this version of surge does not read.
    #[error("{}: `schema` is {found:?}, expected {expected:?}", path.display())]
    Schema {
        path: PathBuf,
        expected: &'static str,
        found: String,
    },

    /// A metric tag is malformed (bad character, unknown metric, empty qualifier).
    #[error("invalid tag {input:?}: {reason}")]
    InvalidTag { input: String, reason: String },

    /// A name used in a path or a CSV header is unusable.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        what: &'static str,
        value: String,
        reason: &'static str,
    },

    /// A timestamp string is not `YYYY-MM-DDTHH:MM:SS[.fff]Z`.
    #[error("invalid UTC timestamp {input:?}: {reason}")]
    InvalidTimestamp { input: String, reason: &'static str },

    /// The run directory (or file) already exists: surge never overwrites a run.
    #[error("{}: already exists; refusing to overwrite a run", path.display())]
    AlreadyExists { path: PathBuf },

    /// Every suffixed name `-2` … `-N` for a timestamped run directory was taken.
    #[error("{}: already exists, and so do suffixes -2 to -{last}; refusing to overwrite a run", path.display())]
    NoFreeRunDir { path: PathBuf, last: u32 },

    /// `RunDir::open` was given something that is not a directory.
    #[error("{}: not a run directory ({reason})", path.display())]
    NotARunDir { path: PathBuf, reason: &'static str },

    /// A shard index does not fit the three-digit `shard-NNN.hlog` name.
    #[error("shard index {shard} out of range: a run directory holds shards 000 to 999")]
    ShardOutOfRange { shard: u32 },

    /// An hlog file has no recognised header before its first interval (or at all).
    #[error(
        "{}:{line}: not an HdrHistogram interval log: no `#[Histogram log format version …]`, \
         `#[StartTime: …]`, `#[BaseTime: …]` or legend line before this line",
        path.display()
    )]
    HlogHeader { path: PathBuf, line: usize },

    /// A histogram could not be serialized into an hlog line.
    #[error("{}:{line}: cannot serialize histogram for tag {tag:?}: {message}", path.display())]
    HlogSerialize {
        path: PathBuf,
        line: usize,
        tag: String,
        message: String,
    },

    /// A base64 histogram blob (outside a file, e.g. a shard message) could not be decoded.
    #[error("cannot decode histogram {context}: {message}")]
    HistogramDecode { context: String, message: String },

    /// Adding one histogram into another failed (only on absurd value ranges).
    #[error("cannot merge histogram for tag {tag:?}: {message}")]
    HistogramMerge { tag: String, message: String },

    /// An interval was closed before it started.
    #[error("interval end {end_s:.3}s is before its start {start_s:.3}s")]
    IntervalOrder { start_s: f64, end_s: f64 },

    /// A timeline row has the wrong number of values in one of its groups.
    #[error(
        "{}:{line}: timeline row has {got} {group} values, the header declares {expected}",
        path.display()
    )]
    TimelineRowWidth {
        path: PathBuf,
        line: usize,
        group: &'static str,
        expected: usize,
        got: usize,
    },

    /// A timeline header is missing or malformed.
    #[error("{}:{line}: bad timeline header: {reason}", path.display())]
    TimelineHeader {
        path: PathBuf,
        line: usize,
        reason: String,
    },

    /// A float in summary.json / run.json is NaN or infinite (JSON cannot hold it).
    #[error("{}: field `{field}` is {value}, which JSON cannot represent", path.display())]
    NonFinite {
        path: PathBuf,
        field: String,
        value: f64,
    },
}

impl Error {
    pub(crate) fn io(path: &Path, action: &'static str, source: io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }
}

/// A problem a tolerant reader stepped over: the file and 1-based line, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub path: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
    }
}
