//! Trace replay: the messages of a recorded release, sent again at their own times.
//!
//! `arrival = { trace = "traces/last-release.csv", speed = 2.0 }` replaces the stages' rates
//! by a file of messages: a CSV with a header row, or JSON lines, with the keys
//!
//! | key | |
//! |---|---|
//! | `offset` | required: seconds from the start of the run, a decimal number |
//! | `session` | optional: messages with the same value are one WebSocket session |
//! | `intent` | optional: an intent of `[traffic.intents]` (else drawn from that mix) |
//! | `store` | optional: a store of `[traffic.stores]` (else drawn from that mix) |
//!
//! Rows may come in any order; they are replayed sorted by offset (ties keep file order),
//! at offset / speed. A CSV value may be quoted but may not contain a comma. The trace is
//! read and checked when the profile loads, so a bad row is a profile error naming the
//! file and line; [`Replay`] then resolves it against the rest of the traffic (which
//! session each message belongs to, when each session is open, the schedule it implies),
//! the same way for the simulator and the load generator.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::traffic::{Schedule, Segment, Stage};
use crate::units::Duration;

/// How long before its first message a replayed session connects (a user opens the chat
/// before typing).
pub const LEAD: Duration = Duration::from_millis(1_000);

/// The columns a trace may have.
const COLUMNS: [&str; 4] = ["offset", "session", "intent", "store"];

/// A trace file, read and sorted.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    file: PathBuf,
    speed: f64,
    rows: Arc<[Row]>,
    /// Session values, intents and stores as written; rows refer to them by index.
    sessions: Arc<[String]>,
    intents: Arc<[String]>,
    stores: Arc<[String]>,
}

/// One message of the trace.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Row {
    /// As written (before `speed`).
    offset: Duration,
    /// Line in the file (1-based), for error messages.
    line: usize,
    session: Option<u32>,
    intent: Option<u32>,
    store: Option<u32>,
}

/// Interns names in order of first appearance.
#[derive(Default)]
struct Names {
    index: HashMap<String, u32>,
    names: Vec<String>,
}

impl Names {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.index.insert(name.to_string(), i);
        self.names.push(name.to_string());
        i
    }
}

/// A row before interning: `(line, offset, session, intent, store)`.
type RawRow = (usize, f64, Option<String>, Option<String>, Option<String>);

impl Trace {
    /// Reads `file` (`.csv` or `.jsonl`) to be replayed at `speed` times its pace.
    ///
    /// # Errors
    /// What is wrong with the file, naming it and the line.
    pub fn load(file: &Path, speed: f64) -> Result<Self, String> {
        let shown = file.display();
        if !(speed.is_finite() && speed > 0.0) {
            return Err(format!(
                "speed is how many times faster than recorded the trace is replayed: a number \
                 above zero such as 2.0, found {speed}"
            ));
        }
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read the trace {shown}: {e}"))?;
        let raw = match file.extension().and_then(|e| e.to_str()) {
            Some("csv") => parse_csv(&text),
            Some("jsonl" | "ndjson") => parse_jsonl(&text),
            _ => Err("a trace is a .csv file with a header row or a .jsonl file".to_string()),
        }
        .map_err(|e| format!("trace {shown}: {e}"))?;
        if raw.is_empty() {
            return Err(format!("trace {shown}: no messages"));
        }
        let mut raw = raw;
        raw.sort_by(|a, b| a.1.total_cmp(&b.1));
        let (mut sessions, mut intents, mut stores) =
            (Names::default(), Names::default(), Names::default());
        let rows = raw
            .into_iter()
            .map(|(line, offset, session, intent, store)| Row {
                offset: Duration::from_secs_f64(offset),
                line,
                session: session.map(|s| sessions.id(&s)),
                intent: intent.map(|s| intents.id(&s)),
                store: store.map(|s| stores.id(&s)),
            })
            .collect();
        Ok(Self {
            file: file.to_path_buf(),
            speed,
            rows,
            sessions: sessions.names.into(),
            intents: intents.names.into(),
            stores: stores.names.into(),
        })
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// Messages in the trace.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// When the last message is due (after `speed`).
    pub fn last(&self) -> Duration {
        self.rows.last().map_or(Duration::ZERO, |r| self.at(r))
    }

    fn at(&self, row: &Row) -> Duration {
        Duration::from_nanos((row.offset.as_nanos() as f64 / self.speed).round() as u64)
    }

    /// Intents or stores the trace names that `known` lacks, as (line, name) of their
    /// first use: `intents` chooses intents, else stores.
    pub fn unknown(&self, intents: bool, known: &[&str]) -> Vec<(usize, String)> {
        let names = if intents { &self.intents } else { &self.stores };
        names
            .iter()
            .enumerate()
            .filter(|(_, n)| !known.contains(&n.as_str()))
            .map(|(i, n)| {
                let line = self
                    .rows
                    .iter()
                    .find(|r| (if intents { r.intent } else { r.store }) == Some(i as u32))
                    .map_or(0, |r| r.line);
                (line, n.clone())
            })
            .collect()
    }

    /// Resolves the trace for a run: `intents` and `stores` are the traffic's mixes in order
    /// (messages carry indices into them), `turns` the mean messages per conversation
    /// (rows without a session are dealt round-robin over that many sessions' worth) and
    /// `reply_timeout` how long a session stays after its last message.
    pub fn replay(
        &self,
        intents: &[&str],
        stores: &[&str],
        turns: f64,
        reply_timeout: Duration,
    ) -> Replay {
        let index_of = |names: &[String], known: &[&str], i: Option<u32>| {
            i.and_then(|i| known.iter().position(|k| *k == names[i as usize]))
        };
        let named = self.sessions.len() as u32;
        let anonymous = self.rows.iter().filter(|r| r.session.is_none()).count();
        let pool = ((anonymous as f64 / turns.max(1.0)).ceil() as u32).max(1);
        let mut dealt = 0u32;
        let mut messages = Vec::with_capacity(self.rows.len());
        for row in self.rows.iter() {
            let session = row.session.unwrap_or_else(|| {
                dealt += 1;
                named + (dealt - 1) % pool
            });
            messages.push(Replayed {
                at: self.at(row),
                session,
                intent: index_of(&self.intents, intents, row.intent),
                store: index_of(&self.stores, stores, row.store),
            });
        }
        let count = named + if anonymous > 0 { pool } else { 0 };
        let mut spans: Vec<Option<Span>> = vec![None; count as usize];
        for m in &messages {
            let span = spans[m.session as usize].get_or_insert(Span {
                open: m.at.saturating_sub(LEAD),
                close: m.at,
            });
            span.close = m.at + reply_timeout;
        }
        Replay {
            messages,
            spans: spans
                .into_iter()
                .map(|s| s.expect("every session has a message"))
                .collect(),
            names: self.sessions.clone(),
        }
    }
}

/// When a replayed session is open.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    pub open: Duration,
    pub close: Duration,
}

/// One message to replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Replayed {
    /// When it is due (offset / speed).
    pub at: Duration,
    /// The global index of its session.
    pub session: u32,
    /// Index into the traffic's intents / stores, when the trace names one.
    pub intent: Option<usize>,
    pub store: Option<usize>,
}

/// A trace resolved for a run: messages in time order and when each session is open.
#[derive(Debug, Clone)]
pub struct Replay {
    pub messages: Vec<Replayed>,
    /// Per global session index: from [`LEAD`] before its first message to its last
    /// message plus the reply timeout.
    pub spans: Vec<Span>,
    names: Arc<[String]>,
}

impl Replay {
    /// The trace's own value for session `k`, if it has one.
    pub fn session_name(&self, k: u64) -> Option<&str> {
        self.names.get(k as usize).map(String::as_str)
    }

    /// The schedule the trace implies, second by second: the sessions open during each
    /// second and its messages as the rate, labelled by the stage whose time window the
    /// second starts in (the last stage after the stages end).
    pub fn schedule(&self, stages: &[Stage], duration: Duration) -> Schedule {
        let seconds = duration.as_nanos().div_ceil(1_000_000_000) as usize;
        let mut open = vec![0i64; seconds + 1];
        for s in &self.spans {
            let from = (s.open.as_secs_f64().floor() as usize).min(seconds);
            let to = (s.close.as_secs_f64().ceil() as usize).clamp(from + 1, seconds.max(from + 1));
            open[from] += 1;
            if to <= seconds {
                open[to] -= 1;
            }
        }
        let mut sent = vec![0u64; seconds.max(1)];
        for m in &self.messages {
            let i = (m.at.as_secs_f64().floor() as usize).min(seconds.max(1) - 1);
            sent[i] += 1;
        }
        let mut ends = Vec::with_capacity(stages.len());
        let mut end = Duration::ZERO;
        for s in stages {
            end += s.duration;
            ends.push(end);
        }
        let mut segments = Vec::with_capacity(seconds);
        let mut level = 0i64;
        for (i, &n) in sent.iter().enumerate().take(seconds) {
            level += open[i];
            let start = Duration::from_millis(1_000 * i as u64);
            let stage = ends
                .iter()
                .position(|e| start < *e)
                .unwrap_or(ends.len().saturating_sub(1));
            segments.push(Segment {
                stage,
                start,
                end: (start + Duration::from_millis(1_000)).min(duration),
                sessions_from: level as f64,
                sessions_to: level as f64,
                rate_from: n as f64,
                rate_to: n as f64,
            });
        }
        Schedule::from_segments(segments, duration)
    }
}

/// Splits one CSV line (quotes around a value are dropped; no commas inside values).
fn csv_fields(line: &str) -> Vec<&str> {
    line.split(',')
        .map(|f| {
            let f = f.trim();
            f.strip_prefix('"')
                .and_then(|f| f.strip_suffix('"'))
                .unwrap_or(f)
        })
        .collect()
}

fn parse_csv(text: &str) -> Result<Vec<RawRow>, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Ok(Vec::new());
    };
    let header = csv_fields(header);
    let mut column = [None; 4];
    for (i, name) in header.iter().enumerate() {
        let Some(c) = COLUMNS.iter().position(|c| c == name) else {
            return Err(format!(
                "unknown column \"{name}\" in the header row; the columns are offset \
                 (required), session, intent, store"
            ));
        };
        if column[c].replace(i).is_some() {
            return Err(format!("column \"{name}\" appears twice in the header row"));
        }
    }
    let Some(offset) = column[0] else {
        return Err(format!(
            "the header row has no offset column (found: {}); the first line must name the \
             columns, offset (seconds from the start) required, session, intent, store optional",
            header.join(", ")
        ));
    };
    lines
        .map(|(line, text)| {
            let fields = csv_fields(text);
            if fields.len() != header.len() {
                return Err(format!(
                    "line {line}: {} values for {} columns",
                    fields.len(),
                    header.len()
                ));
            }
            let value = |c: usize| {
                column[c]
                    .map(|i| fields[i])
                    .filter(|v| !v.is_empty())
                    .map(str::to_string)
            };
            let offset = parse_offset(fields[offset], line)?;
            Ok((line, offset, value(1), value(2), value(3)))
        })
        .collect()
}

fn parse_jsonl(text: &str) -> Result<Vec<RawRow>, String> {
    use serde_json::Value;
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let line = i + 1;
        if l.trim().is_empty() {
            continue;
        }
        let v: Value =
            serde_json::from_str(l).map_err(|e| format!("line {line}: not a JSON object: {e}"))?;
        let Value::Object(map) = v else {
            return Err(format!("line {line}: not a JSON object"));
        };
        if let Some(k) = map.keys().find(|k| !COLUMNS.contains(&k.as_str())) {
            return Err(format!(
                "line {line}: unknown key \"{k}\"; the keys are offset (required), session, \
                 intent, store"
            ));
        }
        let offset = match map.get("offset") {
            Some(Value::Number(n)) => {
                let x = n.as_f64().unwrap_or(f64::NAN);
                parse_offset(&x.to_string(), line)?
            }
            Some(Value::String(s)) => parse_offset(s, line)?,
            Some(other) => parse_offset(&other.to_string(), line)?,
            None => {
                return Err(format!(
                    "line {line}: offset is missing (seconds from the start)"
                ));
            }
        };
        let text = |key: &str| -> Result<Option<String>, String> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Number(n)) if key == "session" => Ok(Some(n.to_string())),
                Some(other) => Err(format!(
                    "line {line}: {key} must be a string, found {other}"
                )),
            }
        };
        out.push((
            line,
            offset,
            text("session")?,
            text("intent")?,
            text("store")?,
        ));
    }
    Ok(out)
}

fn parse_offset(text: &str, line: usize) -> Result<f64, String> {
    let x: f64 = text.trim().parse().map_err(|_| {
        format!("line {line}: offset must be seconds from the start such as 12.5, found \"{text}\"")
    })?;
    if !x.is_finite() {
        return Err(format!(
            "line {line}: offset must be a finite number of seconds, found {text}"
        ));
    }
    if x < 0.0 {
        return Err(format!(
            "line {line}: offset must not be negative, found {text}"
        ));
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn csv_and_jsonl_read_the_same_trace() {
        let (_d1, csv) = write(
            "t.csv",
            "offset,session,intent\n0.5,alice,chitchat\n0.25,bob,\n2,alice,order_tracking\n",
        );
        let (_d2, jsonl) = write(
            "t.jsonl",
            concat!(
                r#"{"offset": 0.5, "session": "alice", "intent": "chitchat"}"#,
                "\n",
                r#"{"offset": 0.25, "session": "bob"}"#,
                "\n",
                r#"{"offset": 2, "session": "alice", "intent": "order_tracking"}"#,
                "\n"
            ),
        );
        let a = Trace::load(&csv, 2.0).unwrap();
        let b = Trace::load(&jsonl, 2.0).unwrap();
        let intents = ["chitchat", "order_tracking"];
        let ra = a.replay(&intents, &[], 5.0, Duration::from_millis(3_000));
        let rb = b.replay(&intents, &[], 5.0, Duration::from_millis(3_000));
        assert_eq!(ra.messages, rb.messages);
        // Sorted by offset, halved by speed; bob appears first, so he is session 0.
        let at: Vec<u64> = ra.messages.iter().map(|m| m.at.as_nanos()).collect();
        assert_eq!(at, [125_000_000, 250_000_000, 1_000_000_000]);
        let sessions: Vec<u32> = ra.messages.iter().map(|m| m.session).collect();
        assert_eq!(sessions, [0, 1, 1]);
        assert_eq!(ra.session_name(1), Some("alice"));
        assert_eq!(ra.messages[2].intent, Some(1));
        assert_eq!(ra.messages[0].intent, None);
        assert_eq!(ra.spans[1].open, Duration::ZERO);
        assert_eq!(ra.spans[1].close, Duration::from_millis(4_000));
    }

    #[test]
    fn rows_without_a_session_are_dealt_over_conversations() {
        let rows: String = (0..10).map(|i| format!("{i}\n")).collect();
        let (_d, f) = write("t.csv", &format!("offset\n{rows}"));
        let r = Trace::load(&f, 1.0)
            .unwrap()
            .replay(&[], &[], 5.0, Duration::from_millis(1_000));
        let sessions: Vec<u32> = r.messages.iter().map(|m| m.session).collect();
        assert_eq!(sessions, [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
        assert_eq!(r.spans.len(), 2);
    }

    #[test]
    fn the_schedule_counts_each_seconds_messages_and_sessions() {
        let (_d, f) = write("t.csv", "offset,session\n0.1,a\n0.2,b\n1.5,a\n3.5,c\n");
        let r = Trace::load(&f, 1.0)
            .unwrap()
            .replay(&[], &[], 5.0, Duration::from_millis(500));
        let s = r.schedule(&[], Duration::from_millis(5_000));
        let rate: Vec<f64> = s.segments().iter().map(|g| g.rate_from).collect();
        assert_eq!(rate, [2.0, 1.0, 0.0, 1.0, 0.0]);
        let open: Vec<f64> = s.segments().iter().map(|g| g.sessions_from).collect();
        // a: 0 … 2.0; b: 0 … 0.7; c: 2.5 … 4.0.
        assert_eq!(open, [2.0, 1.0, 1.0, 1.0, 0.0]);
        assert!((s.total_messages() - 4.0).abs() < 1e-9);
    }

    #[test]
    fn bad_traces_say_what_is_wrong_and_where() {
        let cases = [
            ("t.csv", "session,intent\na,chitchat\n", "no offset column"),
            (
                "t.csv",
                "offset,session\n1,a\nsoon,b\n",
                "line 3: offset must be seconds",
            ),
            (
                "t.csv",
                "offset\n-1\n",
                "line 2: offset must not be negative",
            ),
            ("t.csv", "offset,sesion\n1,a\n", "unknown column \"sesion\""),
            (
                "t.csv",
                "offset,session\n1\n",
                "line 2: 1 values for 2 columns",
            ),
            ("t.csv", "offset\n", "no messages"),
            (
                "t.jsonl",
                "{\"session\": \"a\"}\n",
                "line 1: offset is missing",
            ),
            (
                "t.jsonl",
                "{\"offset\": 1, \"user\": \"a\"}\n",
                "unknown key \"user\"",
            ),
            (
                "t.txt",
                "offset\n1\n",
                ".csv file with a header row or a .jsonl",
            ),
        ];
        for (name, text, expected) in cases {
            let (_d, f) = write(name, text);
            let err = Trace::load(&f, 1.0).unwrap_err();
            assert!(err.contains(expected), "{text:?}: {err}");
            assert!(err.contains(name), "{err}");
        }
        let (_d, f) = write("t.csv", "offset\n1\n");
        assert!(Trace::load(&f, 0.0).unwrap_err().contains("above zero"));
    }

    #[test]
    fn unknown_names_are_reported_with_their_line() {
        let (_d, f) = write("t.csv", "offset,intent\n1,chitchat\n2,smalltalk\n");
        let t = Trace::load(&f, 1.0).unwrap();
        assert_eq!(
            t.unknown(true, &["chitchat"]),
            [(3, "smalltalk".to_string())]
        );
        assert!(t.unknown(false, &[]).is_empty());
    }
}
