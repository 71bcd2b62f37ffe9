//! `timeline.csv`: one row per interval of gauges and counters, for charts over time.
//!
//! Why it exists: latency lives in the hlogs, but a spike rehearsal is read as a story over
//! time — sessions open, messages sent, errors by class, and for simulated runs ECS tasks, CPU,
//! Lambda concurrency, DynamoDB and Bedrock usage vs capacity, queue depths. The header is
//! fixed when the file is created and every row is checked against it, so a column can never
//! silently shift; each row is flushed so a crash keeps every finished interval.
//!
//! # Format
//!
//! ```text
//! t_s,sessions_open,sent,completed,errors_timeout,errors_throttled,ecs_tasks,cpu_util
//! 1,250,4100,4052,0,3,12,0.41
//! ```
//!
//! * `t_s`: seconds since the run start at the **end** of the interval (when gauges were
//!   sampled).
//! * `sessions_open` is a gauge at `t_s`; `sent`, `completed` and every `errors_<class>` column
//!   count events **during** the interval (not cumulative).
//! * Then caller-defined numeric columns, gauges or per-interval values as the caller documents.
//! * Integers are written as integers, floats in Rust's shortest round-trip form; a NaN or
//!   infinite float is written as an empty cell and read back as NaN.
//! * Column names: ASCII letters, digits, `_ - . :`; no duplicates; only error columns start
//!   with `errors_`.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, Warning};

/// The leading columns of every timeline, in order.
pub const FIXED_COLUMNS: [&str; 4] = ["t_s", "sessions_open", "sent", "completed"];
/// Prefix of the error-class columns.
pub const ERROR_COLUMN_PREFIX: &str = "errors_";

/// The column layout of a timeline: error classes and caller-defined extra columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineColumns {
    error_classes: Vec<String>,
    extra: Vec<String>,
}

fn check_name(what: &'static str, name: &str) -> Result<()> {
    let bad = |reason| Error::InvalidName {
        what,
        value: name.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("empty"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
    {
        return Err(bad("only ASCII letters, digits and _ - . : are allowed"));
    }
    Ok(())
}

impl TimelineColumns {
    /// Validate the layout: error classes become `errors_<class>` columns after the fixed
    /// ones, then `extra` columns in the given order.
    pub fn new<E, X>(error_classes: E, extra: X) -> Result<TimelineColumns>
    where
        E: IntoIterator,
        E::Item: AsRef<str>,
        X: IntoIterator,
        X::Item: AsRef<str>,
    {
        let error_classes: Vec<String> = error_classes
            .into_iter()
            .map(|s| s.as_ref().to_string())
            .collect();
        let extra: Vec<String> = extra.into_iter().map(|s| s.as_ref().to_string()).collect();
        for c in &error_classes {
            check_name("timeline error class", c)?;
        }
        for x in &extra {
            check_name("timeline column", x)?;
            if x.starts_with(ERROR_COLUMN_PREFIX) {
                return Err(Error::InvalidName {
                    what: "timeline column",
                    value: x.clone(),
                    reason: "only error-class columns may start with `errors_`",
                });
            }
        }
        let cols = TimelineColumns {
            error_classes,
            extra,
        };
        let header = cols.header();
        let mut seen = std::collections::HashSet::new();
        for h in &header {
            if !seen.insert(h.as_str()) {
                return Err(Error::InvalidName {
                    what: "timeline column",
                    value: h.clone(),
                    reason: "duplicate column",
                });
            }
        }
        Ok(cols)
    }

    /// The full header, in order.
    pub fn header(&self) -> Vec<String> {
        FIXED_COLUMNS
            .iter()
            .map(|s| s.to_string())
            .chain(
                self.error_classes
                    .iter()
                    .map(|c| format!("{ERROR_COLUMN_PREFIX}{c}")),
            )
            .chain(self.extra.iter().cloned())
            .collect()
    }

    pub fn error_classes(&self) -> &[String] {
        &self.error_classes
    }

    pub fn extra(&self) -> &[String] {
        &self.extra
    }
}

/// One timeline row; `errors` and `extra` must match the layout's lengths.
#[derive(Debug, Clone, Copy)]
pub struct TimelineRow<'a> {
    pub t_s: f64,
    pub sessions_open: u64,
    pub sent: u64,
    pub completed: u64,
    /// One count per error class, in layout order.
    pub errors: &'a [u64],
    /// One value per extra column, in layout order.
    pub extra: &'a [f64],
}

/// Appends rows to a `timeline.csv` whose header was fixed at creation.
#[derive(Debug)]
pub struct TimelineWriter {
    path: PathBuf,
    out: BufWriter<File>,
    n_errors: usize,
    n_extra: usize,
    lines: usize,
    buf: String,
}

fn push_f64(buf: &mut String, v: f64) {
    if v.is_finite() {
        let _ = write!(buf, "{v}");
    }
}

impl TimelineWriter {
    /// Create `path` (which must not exist) and write the header.
    pub fn create(path: &Path, columns: &TimelineColumns) -> Result<TimelineWriter> {
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
                    Error::io(path, "create timeline", e)
                }
            })?;
        let mut w = TimelineWriter {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
            n_errors: columns.error_classes.len(),
            n_extra: columns.extra.len(),
            lines: 1,
            buf: String::with_capacity(256),
        };
        let mut header = columns.header().join(",");
        header.push('\n');
        w.out
            .write_all(header.as_bytes())
            .and_then(|()| w.out.flush())
            .map_err(|e| Error::io(path, "write timeline header", e))?;
        Ok(w)
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one row and flush it. Rejects a row whose `errors` or `extra` length differs
    /// from the header (naming the line it would have been written to).
    pub fn write_row(&mut self, row: &TimelineRow<'_>) -> Result<()> {
        let line = self.lines + 1;
        for (group, expected, got) in [
            ("error", self.n_errors, row.errors.len()),
            ("extra", self.n_extra, row.extra.len()),
        ] {
            if expected != got {
                return Err(Error::TimelineRowWidth {
                    path: self.path.clone(),
                    line,
                    group,
                    expected,
                    got,
                });
            }
        }
        self.buf.clear();
        push_f64(&mut self.buf, row.t_s);
        let _ = write!(
            self.buf,
            ",{},{},{}",
            row.sessions_open, row.sent, row.completed
        );
        for e in row.errors {
            let _ = write!(self.buf, ",{e}");
        }
        for &x in row.extra {
            self.buf.push(',');
            push_f64(&mut self.buf, x);
        }
        self.buf.push('\n');
        self.out
            .write_all(self.buf.as_bytes())
            .and_then(|()| self.out.flush())
            .map_err(|e| Error::io(&self.path, "write timeline row", e))?;
        self.lines = line;
        Ok(())
    }

    /// Flush, fsync and close.
    pub fn finish(mut self) -> Result<()> {
        self.out
            .flush()
            .map_err(|e| Error::io(&self.path, "flush timeline", e))?;
        self.out
            .get_ref()
            .sync_all()
            .map_err(|e| Error::io(&self.path, "fsync timeline", e))
    }
}

/// A timeline read back, column by column.
#[derive(Debug, Clone)]
pub struct Timeline {
    pub path: PathBuf,
    columns: Vec<String>,
    data: Vec<Vec<f64>>,
    /// Rows that were skipped (wrong width, not a number), with file and line.
    pub warnings: Vec<Warning>,
}

impl Timeline {
    /// Read `timeline.csv`.
    pub fn read(path: &Path) -> Result<Timeline> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::io(path, "read timeline", e))?;
        Timeline::parse(path, &text)
    }

    /// Parse timeline text; `path` is for messages. The header must start with
    /// [`FIXED_COLUMNS`]. Damaged rows are skipped with a warning.
    pub fn parse(path: &Path, text: &str) -> Result<Timeline> {
        let mut lines = text.lines().enumerate();
        let header_err = |reason: String| Error::TimelineHeader {
            path: path.to_path_buf(),
            line: 1,
            reason,
        };
        let (_, header) = lines
            .next()
            .ok_or_else(|| header_err("file is empty".to_string()))?;
        let columns: Vec<String> = header.split(',').map(|s| s.trim().to_string()).collect();
        if columns.len() < FIXED_COLUMNS.len()
            || columns[..FIXED_COLUMNS.len()]
                .iter()
                .zip(FIXED_COLUMNS)
                .any(|(a, b)| a != b)
        {
            return Err(header_err(format!(
                "expected it to start with {}, found {header:?}",
                FIXED_COLUMNS.join(",")
            )));
        }
        let mut data: Vec<Vec<f64>> = vec![Vec::new(); columns.len()];
        let mut warnings = Vec::new();
        let mut row: Vec<f64> = Vec::with_capacity(columns.len());
        for (idx, line) in lines {
            if line.trim().is_empty() {
                continue;
            }
            let line_no = idx + 1;
            row.clear();
            let mut problem = None;
            for cell in line.split(',') {
                let cell = cell.trim();
                if cell.is_empty() {
                    row.push(f64::NAN);
                } else if let Ok(v) = cell.parse::<f64>() {
                    row.push(v);
                } else {
                    problem = Some(format!("cell {cell:?} is not a number; row skipped"));
                    break;
                }
            }
            if problem.is_none() && row.len() != columns.len() {
                problem = Some(format!(
                    "row has {} cells, the header has {} (truncated?); row skipped",
                    row.len(),
                    columns.len()
                ));
            }
            if let Some(message) = problem {
                warnings.push(Warning {
                    path: path.to_path_buf(),
                    line: line_no,
                    message,
                });
                continue;
            }
            for (col, &v) in data.iter_mut().zip(&row) {
                col.push(v);
            }
        }
        Ok(Timeline {
            path: path.to_path_buf(),
            columns,
            data,
            warnings,
        })
    }

    /// All column names, in file order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The values of one column, by name.
    pub fn column(&self, name: &str) -> Option<&[f64]> {
        self.columns
            .iter()
            .position(|c| c == name)
            .map(|i| self.data[i].as_slice())
    }

    /// Error classes (column names without the `errors_` prefix).
    pub fn error_classes(&self) -> impl Iterator<Item = &str> {
        self.columns
            .iter()
            .filter_map(|c| c.strip_prefix(ERROR_COLUMN_PREFIX))
    }

    /// Caller-defined columns (neither fixed nor error columns).
    pub fn extra_columns(&self) -> impl Iterator<Item = &str> {
        self.columns[FIXED_COLUMNS.len()..]
            .iter()
            .map(String::as_str)
            .filter(|c| !c.starts_with(ERROR_COLUMN_PREFIX))
    }

    /// Number of rows read.
    pub fn len(&self) -> usize {
        self.data.first().map_or(0, Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
