//! What a shard tells its coordinator, one JSON line per message on the worker's stdout.
//!
//! A worker process has exactly one job — drive its share of sessions — and reports once a
//! second: the interval's histograms ([`IntervalSnapshot`], never percentiles, so merging
//! is exact), counter deltas, the sessions it holds open and the CPU it used. The same
//! messages flow over an in-process channel when there is a single shard, so one
//! coordinator path serves both.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use surge_record::{ErrorSample, Histogram, IntervalSnapshot};

use crate::recording::CounterValues;

/// Shard `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardId {
    pub index: u32,
    pub count: u32,
}

impl std::str::FromStr for ShardId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("expected a shard as INDEX/COUNT such as 0/4, found \"{s}\"");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count || count > surge_record::run_dir::MAX_SHARD + 1 {
            return Err(format!(
                "shard {s}: the index must be below the count, and the count between 1 and 1000"
            ));
        }
        Ok(Self { index, count })
    }
}

/// Parses a start time: RFC 3339 (`2026-11-28T14:00:00Z`) or Unix seconds.
pub fn parse_start_at(s: &str) -> Result<std::time::SystemTime, String> {
    if let Ok(secs) = s.trim().parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(secs));
        }
    }
    surge_record::UtcTime::parse_rfc3339(s.trim())
        .map(surge_record::UtcTime::to_system_time)
        .map_err(|_| {
            format!("--start-at \"{s}\": expected RFC 3339 (2026-11-28T14:00:00Z) or Unix seconds")
        })
}

/// What a worker process is told on its stdin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerSpec {
    pub profile: PathBuf,
    pub target: String,
    /// Extra upgrade headers (never the token: workers read it from the environment).
    pub headers: Vec<(String, String)>,
    pub token_env: Option<String>,
    pub bind: Vec<IpAddr>,
    pub shard: ShardId,
    /// Time zero of the run, milliseconds since the Unix epoch.
    pub start_at_ms: i64,
}

/// One interval of one shard.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IntervalReport {
    /// 1 for the interval ending one second after the start, and so on.
    pub index: u64,
    pub snapshot: IntervalSnapshot,
    pub sessions_open: u64,
    pub counts: CounterValues,
    /// CPU seconds the shard's thread used during the interval (it may use one core).
    pub cpu_s: f64,
    /// Seconds the shard's thread was ready to run but waited for a CPU (a busy host).
    #[serde(default)]
    pub wait_s: f64,
}

/// A shard's closing figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardFinal {
    #[serde(with = "histogram_b64")]
    pub tokens_per_s: Histogram<u64>,
    /// Rejected upgrades by HTTP status (string keys: JSON objects have no number keys).
    pub upgrade_status: BTreeMap<String, u64>,
    /// Connections the server closed, by close code (string keys, as above).
    #[serde(default)]
    pub closed_by_server: BTreeMap<String, u64>,
    /// Goodput per store and model (`store:NAME`, `model:NAME`): (good answers, answers).
    #[serde(default)]
    pub goodput_by_scope: BTreeMap<String, (u64, u64)>,
    pub interrupted: bool,
}

/// A message from a shard.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ShardMessage {
    Interval(IntervalReport),
    Error(ErrorSample),
    Finished(ShardFinal),
}

mod histogram_b64 {
    use serde::{Deserialize, Deserializer, Serializer};
    use surge_record::Histogram;
    use surge_record::hlog::{decode_histogram, encode_histogram};

    pub fn serialize<S: Serializer>(h: &Histogram<u64>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode_histogram(h).map_err(serde::ser::Error::custom)?)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Histogram<u64>, D::Error> {
        let s = String::deserialize(d)?;
        decode_histogram(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_ids_parse_and_messages_round_trip() {
        assert_eq!(
            "1/4".parse::<ShardId>().unwrap(),
            ShardId { index: 1, count: 4 }
        );
        assert!("4/4".parse::<ShardId>().is_err());
        assert!("x".parse::<ShardId>().is_err());
        let t = parse_start_at("2026-11-28T14:00:00Z").unwrap();
        assert_eq!(t, parse_start_at("1795874400").unwrap());
        assert!(parse_start_at("soon").is_err());
        let mut h = surge_record::new_histogram();
        h.record(42).unwrap();
        let m = ShardMessage::Finished(ShardFinal {
            tokens_per_s: h,
            upgrade_status: BTreeMap::from([("503".into(), 2)]),
            closed_by_server: BTreeMap::from([("1001".into(), 3)]),
            goodput_by_scope: BTreeMap::from([("store:kindle".into(), (3, 4))]),
            interrupted: false,
        });
        let line = serde_json::to_string(&m).unwrap();
        assert!(!line.contains('\n'));
        let ShardMessage::Finished(back) = serde_json::from_str(&line).unwrap() else {
            panic!("{line}")
        };
        assert_eq!(back.tokens_per_s.len(), 1);
        assert_eq!(back.upgrade_status["503"], 2);
        assert_eq!(back.closed_by_server["1001"], 3);
    }
}
