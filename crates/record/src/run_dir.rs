//! The run directory `results/<profile>/<UTC timestamp>/`: creation, file names, safe writes.
//!
//! Why it exists: it is the one contract between the simulator, the load generator and the
//! analyzer. This module owns its layout so no other crate builds paths by hand, and it
//! enforces the safety rules: an existing run is never overwritten (directories are created
//! with an atomic `mkdir`, files with `create_new`), and `run.json` / `summary.json` are
//! written to a temporary file in the same directory, fsynced and renamed over, so a reader
//! sees the old content or the new, never half.
//!
//! Layout:
//!
//! ```text
//! results/<profile>/2026-11-28T13-05-00Z/
//!   run.json                 RunInfo           (atomic)
//!   shard-000.hlog …         HdrHistogram interval logs, one per shard (000–999)
//!   timeline.csv             one row per interval
//!   summary.json             Summary           (atomic)
//!   errors/samples-000.jsonl error samples, one file per shard
//! ```

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::error_samples::ErrorSampleWriter;
use crate::hlog::{self, HlogFile, HlogWriter};
use crate::run_info::{RUN_SCHEMA, RunInfo};
use crate::summary::{SUMMARY_SCHEMA, Summary};
use crate::time::UtcTime;
use crate::timeline::{Timeline, TimelineColumns, TimelineWriter};

/// `run.json`
pub const RUN_JSON: &str = "run.json";
/// `summary.json`
pub const SUMMARY_JSON: &str = "summary.json";
/// `timeline.csv`
pub const TIMELINE_CSV: &str = "timeline.csv";
/// `errors/`
pub const ERRORS_DIR: &str = "errors";
/// Highest shard index that fits `shard-NNN.hlog`.
pub const MAX_SHARD: u32 = 999;
/// Highest `-N` suffix tried when the timestamped directory name is taken.
pub const MAX_NAME_SUFFIX: u32 = 1000;

/// A run directory on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
}

fn validate_profile_name(name: &str) -> Result<()> {
    let bad = |reason| Error::InvalidName {
        what: "profile name",
        value: name.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("empty"));
    }
    if name.starts_with('.') {
        return Err(bad("may not start with '.'"));
    }
    if name
        .chars()
        .any(|c| c == '/' || c == '\\' || c == ':' || c.is_control())
    {
        return Err(bad("may not contain '/', '\\', ':' or control characters"));
    }
    Ok(())
}

/// The shard number of `PREFIX` + three digits + `SUFFIX`, the form every per-shard file
/// of a run directory is named in.
fn numbered(name: &str, prefix: &str, suffix: &str) -> Option<u32> {
    name.strip_prefix(prefix)?
        .strip_suffix(suffix)
        .filter(|n| n.len() == 3 && n.bytes().all(|b| b.is_ascii_digit()))?
        .parse()
        .ok()
}

fn check_shard(shard: u32) -> Result<()> {
    if shard > MAX_SHARD {
        Err(Error::ShardOutOfRange { shard })
    } else {
        Ok(())
    }
}

/// Create exactly `path` (parents as needed); error if it already exists.
fn mkdir_new(path: &Path) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    fs::create_dir(path)
}

impl RunDir {
    /// Create `results_root/<profile_name>/<started_at as 2026-11-28T13-05-00Z>/`.
    ///
    /// If that directory exists, `-2`, `-3`, … up to `-1000` are tried; existing directories
    /// are never reused. Creation is an atomic `mkdir`, so two processes cannot get the same
    /// directory.
    pub fn create(
        results_root: &Path,
        profile_name: &str,
        started_at: impl Into<UtcTime>,
    ) -> Result<RunDir> {
        validate_profile_name(profile_name)?;
        let parent = results_root.join(profile_name);
        let stamp = started_at.into().dir_name();
        let first = parent.join(&stamp);
        for n in 1..=MAX_NAME_SUFFIX {
            let candidate = if n == 1 {
                first.clone()
            } else {
                parent.join(format!("{stamp}-{n}"))
            };
            match mkdir_new(&candidate) {
                Ok(()) => return RunDir::finish_create(candidate),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io(&candidate, "create run directory", e)),
            }
        }
        Err(Error::NoFreeRunDir {
            path: first,
            last: MAX_NAME_SUFFIX,
        })
    }

    /// Create exactly `path` (e.g. `--out DIR`); an existing path is an error.
    pub fn create_at(path: &Path) -> Result<RunDir> {
        match mkdir_new(path) {
            Ok(()) => RunDir::finish_create(path.to_path_buf()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::AlreadyExists {
                path: path.to_path_buf(),
            }),
            Err(e) => Err(Error::io(path, "create run directory", e)),
        }
    }

    fn finish_create(path: PathBuf) -> Result<RunDir> {
        let errors = path.join(ERRORS_DIR);
        fs::create_dir(&errors).map_err(|e| Error::io(&errors, "create errors directory", e))?;
        Ok(RunDir { path })
    }

    /// Open an existing run directory for reading (or for a shard to add its files).
    pub fn open(path: &Path) -> Result<RunDir> {
        let meta = fs::metadata(path).map_err(|e| Error::io(path, "open run directory", e))?;
        if !meta.is_dir() {
            return Err(Error::NotARunDir {
                path: path.to_path_buf(),
                reason: "not a directory",
            });
        }
        Ok(RunDir {
            path: path.to_path_buf(),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn run_json_path(&self) -> PathBuf {
        self.path.join(RUN_JSON)
    }

    pub fn summary_path(&self) -> PathBuf {
        self.path.join(SUMMARY_JSON)
    }

    pub fn timeline_path(&self) -> PathBuf {
        self.path.join(TIMELINE_CSV)
    }

    pub fn errors_dir(&self) -> PathBuf {
        self.path.join(ERRORS_DIR)
    }

    /// `shard-NNN.hlog` for shard 0–999.
    pub fn hlog_path(&self, shard: u32) -> Result<PathBuf> {
        check_shard(shard)?;
        Ok(self.path.join(format!("shard-{shard:03}.hlog")))
    }

    /// `errors/samples-NNN.jsonl` for shard 0–999.
    pub fn error_samples_path(&self, shard: u32) -> Result<PathBuf> {
        check_shard(shard)?;
        Ok(self.errors_dir().join(format!("samples-{shard:03}.jsonl")))
    }

    /// Create this shard's hlog (error if it exists). `start` is its StartTime/BaseTime;
    /// use the run's `started_at` for every shard so offsets line up.
    pub fn create_hlog(&self, shard: u32, start: impl Into<UtcTime>) -> Result<HlogWriter> {
        HlogWriter::create(&self.hlog_path(shard)?, start)
    }

    /// The shard hlogs present, sorted by name (`shard-000.hlog`, `shard-001.hlog`, …).
    pub fn list_hlogs(&self) -> Result<Vec<PathBuf>> {
        self.list_matching(&self.path, "shard-", ".hlog")
    }

    /// The shard whose hlog `path` is ([`hlog_path`](Self::hlog_path)'s name), if it is one.
    pub fn hlog_shard(path: &Path) -> Option<u32> {
        numbered(path.file_name()?.to_str()?, "shard-", ".hlog")
    }

    /// Read every shard hlog (see [`hlog::read_file`] for the warning/error rules).
    pub fn read_hlogs(&self) -> Result<Vec<HlogFile>> {
        self.list_hlogs()?
            .iter()
            .map(|p| hlog::read_file(p))
            .collect()
    }

    /// The error-sample files present, sorted by name.
    pub fn list_error_samples(&self) -> Result<Vec<PathBuf>> {
        let dir = self.errors_dir();
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        self.list_matching(&dir, "samples-", ".jsonl")
    }

    fn list_matching(&self, dir: &Path, prefix: &str, suffix: &str) -> Result<Vec<PathBuf>> {
        let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, "list directory", e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(dir, "list directory", e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if numbered(name, prefix, suffix).is_some() {
                out.push(entry.path());
            }
        }
        out.sort();
        Ok(out)
    }

    /// Create `timeline.csv` with a fixed header (error if it exists).
    pub fn create_timeline(&self, columns: &TimelineColumns) -> Result<TimelineWriter> {
        TimelineWriter::create(&self.timeline_path(), columns)
    }

    /// Read `timeline.csv`.
    pub fn read_timeline(&self) -> Result<Timeline> {
        Timeline::read(&self.timeline_path())
    }

    /// Create this shard's error-sample file (see [`ErrorSampleWriter::create`]).
    pub fn create_error_samples(
        &self,
        shard: u32,
        per_class: u32,
        total: u32,
    ) -> Result<ErrorSampleWriter> {
        ErrorSampleWriter::create(&self.error_samples_path(shard)?, per_class, total)
    }

    /// Write `run.json` atomically (replacing a previous version, e.g. `running` → `complete`).
    pub fn write_run_info(&self, info: &RunInfo) -> Result<()> {
        self.write_json_atomic(RUN_JSON, info)
    }

    /// Read `run.json`; a different `schema` is [`Error::Schema`].
    pub fn read_run_info(&self) -> Result<RunInfo> {
        read_json(&self.run_json_path(), RUN_SCHEMA)
    }

    /// Write `summary.json` atomically. NaN/∞ in typed fields is rejected.
    pub fn write_summary(&self, summary: &Summary) -> Result<()> {
        summary.check_finite(&self.summary_path())?;
        self.write_json_atomic(SUMMARY_JSON, summary)
    }

    /// Read `summary.json`; a different `schema` is [`Error::Schema`].
    pub fn read_summary(&self) -> Result<Summary> {
        read_json(&self.summary_path(), SUMMARY_SCHEMA)
    }

    fn write_json_atomic<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        let target = self.path.join(name);
        let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| Error::Json {
            path: target.clone(),
            source,
        })?;
        bytes.push(b'\n');
        write_atomic(&target, &bytes)
    }
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Write `bytes` to `target` via a temp file in the same directory + fsync + rename.
pub(crate) fn write_atomic(target: &Path, bytes: &[u8]) -> Result<()> {
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("file");
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| Error::io(&tmp, "create temp file", e))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io(&tmp, "write temp file", e))?;
        drop(f);
        fs::rename(&tmp, target).map_err(|e| Error::io(target, "rename temp file into place", e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // Persist the rename itself (best effort: not every platform can fsync a directory).
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn read_json<T: DeserializeOwned>(path: &Path, expected: &'static str) -> Result<T> {
    let bytes = fs::read(path).map_err(|e| Error::io(path, "read", e))?;
    let json_err = |source| Error::Json {
        path: path.to_path_buf(),
        source,
    };
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(json_err)?;
    let found = value.get("schema").and_then(|s| s.as_str()).unwrap_or("");
    if found != expected {
        return Err(Error::Schema {
            path: path.to_path_buf(),
            expected,
            found: found.to_string(),
        });
    }
    // Parse again from bytes (not from `value`) so type errors carry line and column.
    serde_json::from_slice(&bytes).map_err(json_err)
}
