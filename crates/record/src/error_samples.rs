//! `errors/samples-NNN.jsonl`: a bounded sample of individual failures per shard.
//!
//! Why it exists: `summary.json` and the timeline only count errors by class; to fix one you
//! need a few real examples (the close code, the server's message, the frame that broke the
//! protocol). The sampler keeps the first N per class and a hard total, so a run with a
//! million timeouts still writes a small file. One file per shard, so processes never share
//! a file; each line is flushed as written.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, Warning};

/// One sampled error (one JSON line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorSample {
    /// Seconds since the run start.
    pub t_s: f64,
    /// Error class, as counted in summary.json `errors`.
    pub class: String,
    /// Human-readable message.
    pub message: String,
    /// Anything else worth keeping (frame text, HTTP status, session id …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

/// Writes a capped sample of errors to one JSON-lines file.
#[derive(Debug)]
pub struct ErrorSampleWriter {
    path: PathBuf,
    out: BufWriter<File>,
    per_class: u32,
    total_cap: u32,
    written: u32,
    by_class: HashMap<String, u32>,
}

impl ErrorSampleWriter {
    /// Create `path` (which must not exist), keeping at most `per_class` samples of each class
    /// and `total` samples overall.
    pub fn create(path: &Path, per_class: u32, total: u32) -> Result<ErrorSampleWriter> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    Error::AlreadyExists {
                        path: path.to_path_buf(),
                    }
                } else {
                    Error::io(path, "create error samples", e)
                }
            })?;
        Ok(ErrorSampleWriter {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
            per_class,
            total_cap: total,
            written: 0,
            by_class: HashMap::new(),
        })
    }

    /// Write `sample` unless its class or the total is at its cap. Returns whether it was
    /// written.
    pub fn sample(&mut self, sample: &ErrorSample) -> Result<bool> {
        if self.written >= self.total_cap {
            return Ok(false);
        }
        let n = self.by_class.get(&sample.class).copied().unwrap_or(0);
        if n >= self.per_class {
            return Ok(false);
        }
        let mut line = serde_json::to_vec(sample).map_err(|source| Error::Json {
            path: self.path.clone(),
            source,
        })?;
        line.push(b'\n');
        self.out
            .write_all(&line)
            .and_then(|()| self.out.flush())
            .map_err(|e| Error::io(&self.path, "write error sample", e))?;
        self.by_class.insert(sample.class.clone(), n + 1);
        self.written += 1;
        Ok(true)
    }

    /// Flush and close.
    pub fn finish(mut self) -> Result<()> {
        self.out
            .flush()
            .map_err(|e| Error::io(&self.path, "flush error samples", e))
    }
}

/// Read a samples file; unreadable lines become warnings.
pub fn read_error_samples(path: &Path) -> Result<(Vec<ErrorSample>, Vec<Warning>)> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::io(path, "read error samples", e))?;
    let mut samples = Vec::new();
    let mut warnings = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(s) => samples.push(s),
            Err(e) => warnings.push(Warning {
                path: path.to_path_buf(),
                line: i + 1,
                message: format!("invalid error sample: {e}; skipped"),
            }),
        }
    }
    Ok((samples, warnings))
}
