//! Streaming interval-log parser: one pass over the bytes, one callback per interval line.
//!
//! Why it exists: `surge_record::hlog::read_file` returns every interval as a decoded
//! histogram, which is right for tests and small logs but holds (and allocates) hundreds of
//! thousands of histograms for a long sharded run. This parser follows the same rules — the
//! StartTime/BaseTime rules of Java's `HistogramLogReader` as documented in
//! `surge_record::hlog`, tolerant of damaged lines (a [`Warning`] naming file and line), an
//! error when no header precedes the first interval — but hands each line's payload to the
//! caller undecoded, so the caller decides what to decode and where to add it.

use std::ops::ControlFlow;
use std::path::Path;

use surge_record::{Error, Warning};

/// Java's heuristic: timestamps more than a year before StartTime are relative to it.
const ONE_YEAR_S: f64 = 365.0 * 24.0 * 3600.0;

/// One interval line, not yet decoded.
#[derive(Debug, Clone, Copy)]
pub struct RawInterval<'a> {
    /// The tag as written (`""` for an untagged line).
    pub tag: &'a str,
    /// Absolute start, seconds since the Unix epoch (timestamp + BaseTime).
    pub start_s: f64,
    /// Interval length, seconds.
    pub length_s: f64,
    /// Base64 histogram payload.
    pub payload: &'a str,
    /// 1-based line number.
    pub line: usize,
}

/// What a pass over a log found besides its intervals.
#[derive(Debug, Clone, Default)]
pub struct LogInfo {
    /// Effective StartTime (seconds since epoch), if known.
    pub start_time_s: Option<f64>,
    /// Lines that were skipped, with file and line.
    pub warnings: Vec<Warning>,
}

/// Parse `bytes` (the log at `path`, used in messages), calling `each` for every well-formed
/// interval line until it returns `Break`. Damaged lines become warnings; a data line before
/// any header line is [`Error::HlogHeader`].
pub fn scan<'a>(
    path: &Path,
    bytes: &'a [u8],
    mut each: impl FnMut(RawInterval<'a>) -> ControlFlow<()>,
) -> Result<LogInfo, Error> {
    let mut info = LogInfo::default();
    let mut start_time: Option<f64> = None;
    let mut base_time: Option<f64> = None;
    let mut seen_header = false;
    let mut last_line = 0;
    let header_error = |line| Error::HlogHeader {
        path: path.to_path_buf(),
        line,
    };
    for (idx, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = idx + 1;
        last_line = line;
        let mut warn = |message: String| {
            info.warnings.push(Warning {
                path: path.to_path_buf(),
                line,
                message,
            })
        };
        let Ok(text) = std::str::from_utf8(raw) else {
            if !seen_header {
                return Err(header_error(line));
            }
            warn("line is not UTF-8; skipped".to_string());
            continue;
        };
        let text = text.strip_suffix('\r').unwrap_or(text);
        if text.trim().is_empty() {
            continue;
        }
        if let Some(rest) = text.strip_prefix('#') {
            if rest.starts_with("[Histogram log format version ") {
                seen_header = true;
            } else if let Some(r) = rest.strip_prefix("[StartTime:") {
                match leading_number(r) {
                    Some(v) => (start_time, seen_header) = (Some(v), true),
                    None => warn("unreadable #[StartTime: …] line; ignored".to_string()),
                }
            } else if let Some(r) = rest.strip_prefix("[BaseTime:") {
                match leading_number(r) {
                    Some(v) => (base_time, seen_header) = (Some(v), true),
                    None => warn("unreadable #[BaseTime: …] line; ignored".to_string()),
                }
            }
            continue;
        }
        if text.starts_with("\"StartTimestamp\"") {
            seen_header = true;
            continue;
        }
        if !seen_header {
            return Err(header_error(line));
        }
        let p = match surge_record::hlog::parse_interval_line(text) {
            Ok(p) => p,
            Err(msg) => {
                warn(format!("{msg}; line skipped"));
                continue;
            }
        };
        let implied_start = start_time.is_none();
        let java_start = start_time.unwrap_or(p.timestamp);
        let base = *base_time.get_or_insert(if p.timestamp < java_start - ONE_YEAR_S {
            java_start
        } else {
            0.0
        });
        let start_s = p.timestamp + base;
        if implied_start {
            start_time = Some(start_s);
        }
        let flow = each(RawInterval {
            tag: p.tag.unwrap_or(""),
            start_s,
            length_s: p.length,
            payload: p.payload,
            line,
        });
        if flow.is_break() {
            break;
        }
    }
    if !seen_header {
        return Err(header_error(last_line.max(1)));
    }
    info.start_time_s = start_time;
    Ok(info)
}

/// The run start a log implies: its StartTime, or its first interval's start.
pub fn start_time(path: &Path, bytes: &[u8]) -> Result<Option<f64>, Error> {
    let mut first = None;
    let info = scan(path, bytes, |iv| {
        first = Some(iv.start_s);
        ControlFlow::Break(())
    })?;
    Ok(info.start_time_s.or(first))
}

fn leading_number(r: &str) -> Option<f64> {
    let r = r.trim_start();
    let end = r
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+')))
        .unwrap_or(r.len());
    r[..end].parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(log: &str) -> (Vec<(String, f64, usize)>, LogInfo) {
        let mut out = Vec::new();
        let info = scan(Path::new("m.hlog"), log.as_bytes(), |iv| {
            out.push((iv.tag.to_string(), iv.start_s, iv.line));
            ControlFlow::Continue(())
        })
        .unwrap();
        (out, info)
    }

    #[test]
    fn follows_the_java_time_rules() {
        let (iv, _) = collect("#[BaseTime: 1000.000 (x)]\nTag=e2e,2.500,1.000,0.0,P\n");
        assert_eq!(iv, vec![("e2e".to_string(), 1002.5, 2)]);
        let (iv, info) = collect("#[StartTime: 1700000000.000 (x), y]\n3.000,1.000,0.0,P\n");
        assert_eq!(iv[0].1, 1_700_000_003.0);
        assert_eq!(info.start_time_s, Some(1_700_000_000.0));
        let (iv, _) = collect("#[StartTime: 1700000000.000 (x), y]\n1700000004.0,1,0,P\n");
        assert_eq!(iv[0].1, 1_700_000_004.0);
        // StartTime and BaseTime differ: timestamps are relative to BaseTime.
        let (iv, info) = collect(
            "#[StartTime: 1700000010.000 (x)]\n#[BaseTime: 1700000000.000 (x)]\n12.0,1,0,P\n",
        );
        assert_eq!(iv[0].1, 1_700_000_012.0);
        assert_eq!(info.start_time_s, Some(1_700_000_010.0));
    }

    #[test]
    fn damaged_lines_warn_with_file_and_line() {
        let (iv, info) = collect(
            "#[BaseTime: 0 (x)]\nTag=e2e,1,1,0,P\nTag=e2e,2,1\nTag=e2e,x,1,0,P\nTag=e2e\n3,1,0,P\n",
        );
        assert_eq!(iv.len(), 2);
        let w: Vec<String> = info.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].starts_with("m.hlog:3: missing Interval_Max"), "{w:?}");
        assert!(
            w[1].starts_with("m.hlog:4: StartTimestamp field \"x\""),
            "{w:?}"
        );
        assert!(w[2].starts_with("m.hlog:5: `Tag=` without"), "{w:?}");
    }

    #[test]
    fn no_header_is_an_error() {
        let e = scan(Path::new("d/s.hlog"), b"1,1,0,P\n", |_| {
            ControlFlow::Continue(())
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("d/s.hlog:1: not an HdrHistogram interval log"),
            "{e}"
        );
    }
}
