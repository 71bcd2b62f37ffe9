//! HdrHistogram interval logs (`shard-NNN.hlog`): writer and tolerant reader.
//!
//! Why it exists: latency is kept as full histograms per one-second interval, so any time range
//! of any run can be re-aggregated exactly (merge with `add`, never average percentiles), and
//! so the HdrHistogram ecosystem (HistogramLogProcessor, HdrLogProcessing, the Python
//! `hdrhistogram` package, HdrHistogram_c) can read surge's logs. The `hdrhistogram` crate has
//! the serializer but its log writer emits neither the version line nor the legend (which
//! HdrHistogram_c requires), cannot add the human-readable date to `#[StartTime: …]`, and its
//! parser stops at the first damaged line; hence this module.
//!
//! # File format as written
//!
//! ```text
//! #[Histogram log format version 1.3]
//! #[StartTime: 1795871100.000 (seconds since epoch), 2026-11-28T13:05:00.000Z]
//! #[BaseTime: 1795871100.000 (seconds since epoch)]
//! "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
//! Tag=e2e,0.000,1.000,0.250,HISTFAAAAC...
//! Tag=ttft:manga_jp,0.000,1.000,0.081,HISTFAAAAC...
//! 1.000,1.000,0.300,HISTFAAAAC...          <- an untagged interval (allowed)
//! ```
//!
//! * StartTime and BaseTime are the same instant (the run start, truncated to milliseconds);
//!   interval start timestamps are seconds since BaseTime, with 3 decimals, like Java's
//!   `HistogramLogWriter` (`%.3f`).
//! * Values are **microseconds**. The `Interval_Max` column is informational only (readers
//!   take the max from the histogram); by the usual convention it is written in seconds, i.e.
//!   the histogram max divided by a max-value divisor of 1,000,000 ([`MAX_VALUE_DIVISOR`]).
//! * The histogram is V2 + DEFLATE ("compressed", cookie `0x1c849314`), base64 with padding,
//!   produced by [`CompressedV2`] (one reused zlib stream). Python `hdrhistogram` and
//!   HdrHistogram_c decode only this form.
//! * The writer flushes after every interval line, so a crash keeps every finished interval.
//!
//! # Reading: StartTime / BaseTime rules
//!
//! [`read_file`] follows Java's `HistogramLogReader` (and the Python port):
//!
//! * `#[StartTime: S …]` sets the start time; `#[BaseTime: B …]` sets the base time. A later
//!   line of either kind replaces the earlier value for the intervals that follow it.
//! * An interval's timestamp `t` is absolute `t + base`. If no BaseTime was seen before the
//!   first interval, the base is deduced once from that first interval: if `t` is more than a
//!   year (365 × 86,400 s) before StartTime, the timestamps are taken as relative to StartTime
//!   (`base = StartTime`); otherwise they are absolute Unix times (`base = 0`). If no StartTime
//!   was seen either, StartTime is the first interval's timestamp (so `base = 0`).
//! * Deliberate difference: when a BaseTime is present but no StartTime, Java stores the first
//!   interval's *relative* timestamp as StartTime (a known quirk); here StartTime becomes that
//!   interval's *absolute* time, so [`Interval::offset_s`] stays meaningful.
//! * Interval payloads may be V2 compressed or uncompressed V2; padding in base64 is optional.
//! * A line that cannot be parsed or decoded becomes a [`Warning`] naming the file and line,
//!   and reading continues, so a crash-truncated last line costs only that interval. A file
//!   with no header line (version, StartTime, BaseTime or legend) before its first data line
//!   is an [`Error::HlogHeader`].

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hdrhistogram::Histogram;

use crate::compress::CompressedV2;
use crate::error::{Error, Result, Warning};
use crate::tag::Tag;
use crate::time::UtcTime;

/// First line of every log surge writes.
pub const FORMAT_VERSION_LINE: &str = "#[Histogram log format version 1.3]";
/// Legend line, written after the time headers.
pub const LEGEND_LINE: &str =
    "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"";
/// The `Interval_Max` column is the histogram max (µs) divided by this, i.e. seconds.
pub const MAX_VALUE_DIVISOR: f64 = 1_000_000.0;

/// Java's heuristic: timestamps more than a year before StartTime are relative.
const ONE_YEAR_S: f64 = 365.0 * 24.0 * 3600.0;

const B64_WRITE: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const B64_READ: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Writes one interval log. Created by [`HlogWriter::create`] (or `RunDir::create_hlog`).
pub struct HlogWriter {
    path: PathBuf,
    out: BufWriter<File>,
    base: UtcTime,
    serializer: CompressedV2,
    ser_buf: Vec<u8>,
    line_buf: String,
    /// Lines written so far (for error messages).
    lines: usize,
}

impl std::fmt::Debug for HlogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HlogWriter")
            .field("path", &self.path)
            .field("base", &self.base)
            .field("lines", &self.lines)
            .finish_non_exhaustive()
    }
}

impl HlogWriter {
    /// Create `path` (which must not exist) and write the four header lines.
    ///
    /// `start` becomes both StartTime and BaseTime, truncated to whole milliseconds; interval
    /// offsets passed to [`write_interval`](Self::write_interval) are relative to it.
    pub fn create(path: &Path, start: impl Into<UtcTime>) -> Result<HlogWriter> {
        let base: UtcTime = start.into();
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
                    Error::io(path, "create hlog", e)
                }
            })?;
        let mut w = HlogWriter {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
            base,
            serializer: CompressedV2::default(),
            ser_buf: Vec::with_capacity(4096),
            line_buf: String::with_capacity(8192),
            lines: 0,
        };
        let secs = format_unix_seconds(base);
        let header = format!(
            "{FORMAT_VERSION_LINE}\n\
             #[StartTime: {secs} (seconds since epoch), {base}]\n\
             #[BaseTime: {secs} (seconds since epoch)]\n\
             {LEGEND_LINE}\n"
        );
        w.out
            .write_all(header.as_bytes())
            .and_then(|()| w.out.flush())
            .map_err(|e| Error::io(path, "write hlog header", e))?;
        w.lines = 4;
        Ok(w)
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// StartTime = BaseTime of this log.
    pub fn base_time(&self) -> UtcTime {
        self.base
    }

    /// Append one interval line and flush it to the OS.
    ///
    /// `start` is the interval start as an offset from [`base_time`](Self::base_time);
    /// `length` its duration. `tag: None` writes an untagged line. Values are microseconds.
    pub fn write_interval(
        &mut self,
        tag: Option<&Tag>,
        start: Duration,
        length: Duration,
        histogram: &Histogram<u64>,
    ) -> Result<()> {
        let line_no = self.lines + 1;
        self.ser_buf.clear();
        self.serializer
            .encode(histogram, &mut self.ser_buf)
            .map_err(|message| Error::HlogSerialize {
                path: self.path.clone(),
                line: line_no,
                tag: tag.map(|t| t.to_string()).unwrap_or_default(),
                message,
            })?;
        self.line_buf.clear();
        if let Some(tag) = tag {
            // Writing into a String cannot fail.
            let _ = write!(self.line_buf, "Tag={tag},");
        }
        let _ = write!(
            self.line_buf,
            "{:.3},{:.3},{:.3},",
            start.as_secs_f64(),
            length.as_secs_f64(),
            histogram.max() as f64 / MAX_VALUE_DIVISOR
        );
        B64_WRITE.encode_string(&self.ser_buf, &mut self.line_buf);
        self.line_buf.push('\n');
        self.out
            .write_all(self.line_buf.as_bytes())
            .and_then(|()| self.out.flush())
            .map_err(|e| Error::io(&self.path, "write hlog interval", e))?;
        self.lines += 1;
        Ok(())
    }

    /// Flush and fsync the file, then close it.
    pub fn finish(mut self) -> Result<()> {
        self.out
            .flush()
            .map_err(|e| Error::io(&self.path, "flush hlog", e))?;
        self.out
            .get_ref()
            .sync_all()
            .map_err(|e| Error::io(&self.path, "fsync hlog", e))
    }
}

fn format_unix_seconds(t: UtcTime) -> String {
    let ms = t.unix_millis();
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}

/// Serialize a histogram as base64 of its V2 compressed form (the hlog payload encoding).
///
/// Useful for sending interval histograms between processes (shard → coordinator).
pub fn encode_histogram(histogram: &Histogram<u64>) -> Result<String> {
    thread_local! {
        static ENCODER: std::cell::RefCell<CompressedV2> = Default::default();
    }
    let mut buf = Vec::new();
    ENCODER
        .with_borrow_mut(|enc| enc.encode(histogram, &mut buf))
        .map_err(|message| Error::HistogramDecode {
            context: "for encoding".to_string(),
            message,
        })?;
    Ok(B64_WRITE.encode(buf))
}

/// Decode base64 V2 (compressed or not) into a histogram with auto-resize enabled.
pub fn decode_histogram(encoded: &str) -> Result<Histogram<u64>> {
    decode_payload(encoded).map_err(|message| Error::HistogramDecode {
        context: "from base64".to_string(),
        message,
    })
}

fn decode_payload(encoded: &str) -> std::result::Result<Histogram<u64>, String> {
    let bytes = B64_READ
        .decode(encoded.trim())
        .map_err(|e| format!("bad base64: {e}"))?;
    let mut h =
        crate::compress::decode(&bytes).map_err(|e| format!("bad histogram payload: {e}"))?;
    h.auto(true);
    Ok(h)
}

/// serde adapter: a histogram as its base64 V2 compressed string.
pub(crate) mod serde_histogram {
    use hdrhistogram::Histogram;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(h: &Histogram<u64>, s: S) -> Result<S::Ok, S::Error> {
        let text = super::encode_histogram(h).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Histogram<u64>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        super::decode_histogram(&s).map_err(serde::de::Error::custom)
    }
}

/// The tag of an interval as found in a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntervalTag {
    /// The line had no `Tag=` prefix.
    Untagged,
    /// A tag surge understands (`e2e`, `ttft:manga_jp`, …).
    Surge(Tag),
    /// Any other tag, e.g. from a log written by another tool; kept verbatim.
    Other(String),
}

impl IntervalTag {
    /// The surge tag, if this is one.
    pub fn surge(&self) -> Option<&Tag> {
        match self {
            IntervalTag::Surge(t) => Some(t),
            _ => None,
        }
    }
}

impl std::fmt::Display for IntervalTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IntervalTag::Untagged => Ok(()),
            IntervalTag::Surge(t) => t.fmt(f),
            IntervalTag::Other(s) => f.write_str(s),
        }
    }
}

/// One decoded interval.
#[derive(Debug, Clone)]
pub struct Interval {
    pub tag: IntervalTag,
    /// Absolute start, seconds since the Unix epoch (timestamp + BaseTime).
    pub start_s: f64,
    /// Start relative to the log's StartTime, seconds (Java's "offset" timestamps).
    pub offset_s: f64,
    /// Interval length, seconds.
    pub length_s: f64,
    /// The `Interval_Max` column as written (its unit depends on the writer's divisor; surge
    /// writes seconds). Informational: use `histogram.max()`.
    pub logged_max: f64,
    /// The decoded histogram (auto-resize enabled, so it can be merged into freely).
    pub histogram: Histogram<u64>,
    /// 1-based line number in the file.
    pub line: usize,
}

/// A whole interval log as read by [`read_file`] / [`read_bytes`].
#[derive(Debug, Clone)]
pub struct HlogFile {
    pub path: PathBuf,
    /// `"1.3"` from `#[Histogram log format version 1.3]`, if present.
    pub format_version: Option<String>,
    /// Effective StartTime (seconds since epoch) after reading, per the module rules.
    pub start_time_s: Option<f64>,
    /// Effective BaseTime (seconds since epoch) after reading, per the module rules.
    pub base_time_s: Option<f64>,
    pub intervals: Vec<Interval>,
    /// Lines that were skipped, with file and line.
    pub warnings: Vec<Warning>,
}

/// Read and decode a whole interval log from disk.
pub fn read_file(path: &Path) -> Result<HlogFile> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "read hlog", e))?;
    read_bytes(path, &bytes)
}

/// Parse a whole interval log held in memory; `path` is used in messages only.
pub fn read_bytes(path: &Path, bytes: &[u8]) -> Result<HlogFile> {
    let mut out = HlogFile {
        path: path.to_path_buf(),
        format_version: None,
        start_time_s: None,
        base_time_s: None,
        intervals: Vec::new(),
        warnings: Vec::new(),
    };
    let mut seen_header = false;
    let mut lines = bytes.split(|&b| b == b'\n').enumerate().peekable();
    let mut last_line = 0;
    while let Some((idx, raw)) = lines.next() {
        let line_no = idx + 1;
        last_line = line_no;
        // `split` yields a final empty piece after a trailing '\n'.
        if raw.is_empty() && lines.peek().is_none() {
            break;
        }
        let warn = |out: &mut HlogFile, message: String| {
            out.warnings.push(Warning {
                path: path.to_path_buf(),
                line: line_no,
                message,
            })
        };
        let Ok(text) = std::str::from_utf8(raw) else {
            if !seen_header {
                return Err(Error::HlogHeader {
                    path: path.to_path_buf(),
                    line: line_no,
                });
            }
            warn(&mut out, "line is not UTF-8; skipped".to_string());
            continue;
        };
        let text = text.strip_suffix('\r').unwrap_or(text);
        if text.trim().is_empty() {
            continue;
        }
        if let Some(rest) = text.strip_prefix('#') {
            if let Some(v) = rest
                .strip_prefix("[Histogram log format version ")
                .and_then(|r| r.strip_suffix(']'))
            {
                out.format_version = Some(v.trim().to_string());
                seen_header = true;
            } else if let Some(r) = rest.strip_prefix("[StartTime:") {
                match leading_number(r) {
                    Some(v) => {
                        out.start_time_s = Some(v);
                        seen_header = true;
                    }
                    None => warn(&mut out, "unreadable #[StartTime: …] line; ignored".into()),
                }
            } else if let Some(r) = rest.strip_prefix("[BaseTime:") {
                match leading_number(r) {
                    Some(v) => {
                        out.base_time_s = Some(v);
                        seen_header = true;
                    }
                    None => warn(&mut out, "unreadable #[BaseTime: …] line; ignored".into()),
                }
            }
            continue;
        }
        if text.starts_with("\"StartTimestamp\"") {
            seen_header = true;
            continue;
        }
        if !seen_header {
            return Err(Error::HlogHeader {
                path: path.to_path_buf(),
                line: line_no,
            });
        }
        match parse_interval_line(text) {
            Ok(p) => {
                let payload = match decode_payload(p.payload) {
                    Ok(h) => h,
                    Err(msg) => {
                        warn(&mut out, format!("{msg}; interval skipped"));
                        continue;
                    }
                };
                // Java HistogramLogReader rules (see module docs).
                let implied_start = out.start_time_s.is_none();
                let java_start = out.start_time_s.unwrap_or(p.timestamp);
                let base = match out.base_time_s {
                    Some(b) => b,
                    None => {
                        let b = if p.timestamp < java_start - ONE_YEAR_S {
                            java_start
                        } else {
                            0.0
                        };
                        out.base_time_s = Some(b);
                        b
                    }
                };
                let start_s = p.timestamp + base;
                // Deliberate fix of Java's BaseTime-without-StartTime quirk: an implied
                // StartTime is the first interval's absolute time, not its relative timestamp.
                let start_time = if implied_start { start_s } else { java_start };
                out.start_time_s = Some(start_time);
                out.intervals.push(Interval {
                    tag: match p.tag {
                        None => IntervalTag::Untagged,
                        Some(t) => t
                            .parse::<Tag>()
                            .map(IntervalTag::Surge)
                            .unwrap_or_else(|_| IntervalTag::Other(t.to_string())),
                    },
                    start_s,
                    offset_s: start_s - start_time,
                    length_s: p.length,
                    logged_max: p.max,
                    histogram: payload,
                    line: line_no,
                });
            }
            Err(msg) => warn(&mut out, format!("{msg}; line skipped")),
        }
    }
    if !seen_header {
        return Err(Error::HlogHeader {
            path: path.to_path_buf(),
            line: last_line.max(1),
        });
    }
    Ok(out)
}

/// The number at the start of `#[StartTime: 1795871100.000 (seconds since epoch), …]`.
fn leading_number(r: &str) -> Option<f64> {
    let r = r.trim_start();
    let end = r
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(r.len());
    r[..end].parse::<f64>().ok().filter(|v| v.is_finite())
}

/// The fields of one interval line, unparsed beyond the numbers: readers that decode the
/// payload their own way (the analyzer's streaming scan) share this one line grammar.
pub struct ParsedLine<'a> {
    /// The text after `Tag=`, if the line has one.
    pub tag: Option<&'a str>,
    /// StartTimestamp as written (relative or absolute; the caller applies the header rules).
    pub timestamp: f64,
    pub length: f64,
    pub max: f64,
    /// Base64 of the compressed histogram.
    pub payload: &'a str,
}

/// Splits an interval line into its fields, or says what is wrong with it.
pub fn parse_interval_line(text: &str) -> std::result::Result<ParsedLine<'_>, String> {
    let (tag, rest) = match text.strip_prefix("Tag=") {
        Some(r) => match r.split_once(',') {
            Some((t, rest)) => (Some(t), rest),
            None => return Err("`Tag=` without a following ','".to_string()),
        },
        None => (None, text),
    };
    let mut fields = rest.splitn(4, ',');
    let mut num = |name: &str| -> std::result::Result<f64, String> {
        let f = fields
            .next()
            .ok_or_else(|| format!("missing {name} field (line truncated?)"))?;
        f.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("{name} field {f:?} is not a number"))
    };
    let timestamp = num("StartTimestamp")?;
    let length = num("Interval_Length")?;
    let max = num("Interval_Max")?;
    let payload = fields
        .next()
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| "missing histogram payload (line truncated?)".to_string())?;
    Ok(ParsedLine {
        tag,
        timestamp,
        length,
        max,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tag::Metric;

    fn hist(values: &[u64]) -> Histogram<u64> {
        let mut h = crate::recorder::new_histogram();
        for &v in values {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn header_and_line_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.hlog");
        let base = UtcTime::from_unix_millis(1_795_871_100_250);
        let mut w = HlogWriter::create(&path, base).unwrap();
        let tag = Tag::qualified(Metric::Ttft, "manga_jp").unwrap();
        w.write_interval(
            Some(&tag),
            Duration::from_millis(1000),
            Duration::from_millis(1000),
            &hist(&[1500, 250_000]),
        )
        .unwrap();
        w.write_interval(
            None,
            Duration::from_secs(2),
            Duration::from_secs(1),
            &hist(&[7]),
        )
        .unwrap();
        // Flushed without finish(): the bytes are already in the file.
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "#[Histogram log format version 1.3]");
        assert_eq!(
            lines[1],
            "#[StartTime: 1795871100.250 (seconds since epoch), 2026-11-28T13:05:00.250Z]"
        );
        assert_eq!(
            lines[2],
            "#[BaseTime: 1795871100.250 (seconds since epoch)]"
        );
        assert_eq!(
            lines[3],
            "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
        );
        assert!(
            lines[4].starts_with("Tag=ttft:manga_jp,1.000,1.000,0.250,HISTF"),
            "{}",
            lines[4]
        );
        assert!(
            lines[5].starts_with("2.000,1.000,0.000,HISTF"),
            "{}",
            lines[5]
        );
        w.finish().unwrap();
        // Refuses to overwrite.
        let e = HlogWriter::create(&path, base).unwrap_err();
        assert!(matches!(e, Error::AlreadyExists { .. }), "{e}");
    }

    #[test]
    fn encode_decode_helpers() {
        let h = hist(&[1, 10, 100, 1_000_000]);
        let s = encode_histogram(&h).unwrap();
        let back = decode_histogram(&s).unwrap();
        assert_eq!(h, back, "original on the left (see compress's tests)");
        let e = decode_histogram("not base64!").unwrap_err().to_string();
        assert!(e.contains("bad base64"), "{e}");
    }

    #[test]
    fn timestamp_rules_follow_java() {
        let h = encode_histogram(&hist(&[5])).unwrap();
        let p = Path::new("mem.hlog");
        // BaseTime present: relative.
        let log = format!("#[BaseTime: 1000.000 (x)]\n2.500,1.000,0.0,{h}\n");
        let f = read_bytes(p, log.as_bytes()).unwrap();
        assert_eq!(f.intervals[0].start_s, 1002.5);
        assert_eq!(f.intervals[0].offset_s, 0.0);
        // StartTime only, small timestamps (> 1 year before StartTime): relative to StartTime.
        let log = format!("#[StartTime: 1700000000.000 (x), y]\n3.000,1.000,0.0,{h}\n");
        let f = read_bytes(p, log.as_bytes()).unwrap();
        assert_eq!(f.intervals[0].start_s, 1_700_000_003.0);
        assert_eq!(f.intervals[0].offset_s, 3.0);
        // StartTime only, absolute timestamps.
        let log = format!("#[StartTime: 1700000000.000 (x), y]\n1700000004.000,1.000,0.0,{h}\n");
        let f = read_bytes(p, log.as_bytes()).unwrap();
        assert_eq!(f.intervals[0].start_s, 1_700_000_004.0);
        assert_eq!(f.intervals[0].offset_s, 4.0);
        // Neither: absolute, StartTime = first interval.
        let log =
            format!("{LEGEND_LINE}\n1700000004.000,1.000,0.0,{h}\n1700000005.000,1.000,0.0,{h}\n");
        let f = read_bytes(p, log.as_bytes()).unwrap();
        assert_eq!(f.start_time_s, Some(1_700_000_004.0));
        assert_eq!(f.intervals[1].offset_s, 1.0);
    }

    #[test]
    fn no_header_is_an_error_naming_the_file() {
        let h = encode_histogram(&hist(&[5])).unwrap();
        let p = Path::new("dir/shard-007.hlog");
        for log in [
            String::new(),
            format!("1.000,1.000,0.0,{h}\n"),
            "hello\n".to_string(),
        ] {
            let e = read_bytes(p, log.as_bytes()).unwrap_err();
            let msg = e.to_string();
            assert!(matches!(e, Error::HlogHeader { .. }), "{msg}");
            assert!(msg.starts_with("dir/shard-007.hlog:1:"), "{msg}");
        }
    }
}
