//! Many machines, one run: the start barrier and the live link between shards.
//!
//! `surge run --shard I/N --rendezvous HOST:PORT` on N machines makes one run. Shard 0 is
//! the coordinator: it listens on PORT, and the others connect to it (retrying, for pods
//! start in any order). Each says hello with its shard index and a fingerprint of the
//! profile and target, so machines briefed differently cannot make one run; the
//! coordinator probes each connection's round trip and clock offset NTP-style, and once
//! all have joined (or `--min-shards` after `--join-timeout`) it sends every shard one
//! start delay, corrected by half its round trip. Time zero is then the same instant on
//! every machine to within a few milliseconds of network jitter, with no agreement of
//! clocks needed — the offsets are measured and reported, never relied on.
//!
//! During the run each shard streams the same [`ShardMessage`]s its own run directory is
//! written from (closed intervals with their histograms, error samples, the closing
//! figures) to the coordinator, which merges them live into the one run directory
//! ([`hub`]): merged `/metrics` and progress, thresholds and aborts judged on all shards
//! together, and a shard that falls silent for two intervals declared lost. Every shard
//! also keeps its own directory, so a lost coordinator loses nothing ([`link`]).
//!
//! With `SURGE_RENDEZVOUS_KEY` set on every machine, shard and coordinator prove to each
//! other that they hold it before the shard joins ([`key`]); a coordinator with a key turns
//! away shards without it, and a shard with a key will not report to a coordinator without.
//! From the proofs on, every line either way carries a tag under a key of that link (see
//! [`key`]): the reports and orders that follow come from a holder of the run's key, whole
//! and in order.
//!
//! The wire is JSON lines over TCP, one [`Up`] or [`Down`] per line. Lines are bounded (64
//! KiB until a shard is in, then 64 MiB for reports), and the coordinator runs at most 64
//! handshakes at once: whatever reaches its port cannot make it hold more than a few MiB.

mod barrier;
pub mod hub;
pub mod key;
pub mod link;

use std::hash::{Hash, Hasher};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use surge_record::Breach;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

pub use barrier::{Gathered, Joined, check_address, gather, join};
pub use key::Key;
use key::{LinkKey, Role, Seal};

use crate::wire::{ShardId, ShardMessage};

/// A shard that sends nothing for this long is lost: two intervals without a report (the
/// coordinator looks every 100 ms).
pub const SILENCE_LIMIT: Duration = Duration::from_secs(2);
/// How often the coordinator tells shards it is alive.
pub const BEAT_EVERY: Duration = Duration::from_secs(1);
/// A shard that hears nothing from its coordinator for this long stops.
pub const COORDINATOR_SILENCE_LIMIT: Duration = Duration::from_secs(5);

/// `--rendezvous` and its companions.
#[derive(Debug, Clone)]
pub struct Options {
    /// HOST:PORT of shard 0 (shard 0 listens on PORT: on HOST when it is an IP address,
    /// else on every interface).
    pub address: String,
    /// How long to wait for every shard (and a shard for its coordinator).
    pub join_timeout: Duration,
    /// Start with this many shards if not all have joined by the timeout (default: all).
    pub min_shards: Option<u32>,
    /// The run's shared key ([`key`]), from `SURGE_RENDEZVOUS_KEY`.
    pub key: Option<Key>,
}

/// The rendezvous protocol this build speaks: a shard of another is refused at its hello,
/// saying so, before any key is proved. 3: lines sealed after the proofs; surge builds of
/// protocol 2 sent no number (read as 0).
pub const PROTOCOL: u32 = 3;

/// Shard → coordinator.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Up {
    Hello {
        shard: ShardId,
        fingerprint: String,
        version: String,
        /// The shard's challenge to a coordinator with a key (empty from surge versions
        /// before keys, which are refused by version anyway).
        #[serde(default)]
        nonce: String,
        /// [`PROTOCOL`] of the shard's build (0 from builds before it was sent).
        #[serde(default)]
        protocol: u32,
    },
    /// The answer to [`Down::Challenge`]: the shard's proof of the key, over both nonces.
    Proof {
        proof: String,
    },
    /// The answer to a clock probe: this shard's wall clock when it read the probe.
    Pong {
        seq: u32,
        clock_us: i64,
    },
    Report {
        message: Box<ShardMessage>,
    },
}

/// Coordinator → shard.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Down {
    /// A coordinator with a key: its own nonce, for the shard to prove the key over both
    /// ([`Up::Proof`]) before the coordinator proves anything.
    Challenge { nonce: String },
    /// The coordinator's proof of the key over both nonces, sent once the shard's held.
    Proof { proof: String },
    /// A clock probe.
    Ping { seq: u32 },
    /// Joined; wait for the start.
    Welcome,
    /// Not part of this run, and why.
    Refused { why: String },
    /// Time zero is this long after reading this line.
    Start { in_us: u64 },
    /// The coordinator is alive.
    Beat,
    /// Close the sessions and finish: a guard broke on the merged figures, or the
    /// coordinator was interrupted.
    Stop { why: String, breach: Option<Breach> },
}

/// What makes shards of one run: the resolved profile and the shard count. Machines briefed
/// with another profile are refused at the barrier. The target is not part of it: shards in
/// several regions may each load their own regional endpoint of one chatbot.
pub fn fingerprint(resolved_profile: &serde_json::Value, count: u32) -> String {
    let mut h = std::hash::DefaultHasher::new();
    resolved_profile.to_string().hash(&mut h);
    count.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// Longest line before a shard has joined: a hello, a proof or a probe's answer is a few
/// hundred bytes.
const HANDSHAKE_LINE_LIMIT: usize = 64 << 10;
/// Longest line from a shard that joined: an interval's histograms, a run's closing figures.
const REPORT_LINE_LIMIT: usize = 64 << 20;

/// Reads JSON lines of `T`, none longer than its limit; once sealed, each line's tag is
/// checked before its JSON is read.
pub(crate) struct LineReader {
    half: BufReader<OwnedReadHalf>,
    line: Vec<u8>,
    limit: usize,
    seal: Option<Seal>,
}

impl LineReader {
    /// A reader for the handshake: lines of at most [`HANDSHAKE_LINE_LIMIT`].
    pub(crate) fn new(half: OwnedReadHalf) -> Self {
        Self {
            half: BufReader::new(half),
            line: Vec::new(),
            limit: HANDSHAKE_LINE_LIMIT,
            seal: None,
        }
    }

    /// The peer has joined: its reports may be long.
    pub(crate) fn joined(mut self) -> Self {
        self.limit = REPORT_LINE_LIMIT;
        self
    }

    /// The next message; `Ok(None)` at the end of the stream. Cancel-safe: a line read in
    /// part is kept for the next call.
    pub(crate) async fn next<T: serde::de::DeserializeOwned>(
        &mut self,
    ) -> Result<Option<T>, String> {
        loop {
            let buffered = self.half.fill_buf().await.map_err(|e| e.to_string())?;
            if buffered.is_empty() {
                return match self.line.is_empty() {
                    true => Ok(None),
                    false => Err("the connection closed in the middle of a message".into()),
                };
            }
            let (take, done) = match buffered.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buffered.len(), false),
            };
            let tag = if self.seal.is_some() {
                key::SEALED_PREFIX
            } else {
                0
            };
            if self.line.len() + take > self.limit + 1 + tag {
                return Err(format!(
                    "a rendezvous message longer than {} KiB",
                    self.limit >> 10
                ));
            }
            self.line.extend_from_slice(&buffered[..take]);
            self.half.consume(take);
            if done {
                break;
            }
        }
        let body = self.line.strip_suffix(b"\n").unwrap_or(&self.line);
        let message = match &mut self.seal {
            Some(seal) => seal.open(body),
            None => Ok(body),
        }
        .and_then(|json| {
            serde_json::from_slice(json)
                .map(Some)
                .map_err(|e| format!("unreadable rendezvous message: {e}"))
        });
        self.line.clear();
        message
    }
}

/// Writes JSON lines; once sealed, each with its tag in front.
pub(crate) struct LineWriter {
    half: OwnedWriteHalf,
    seal: Option<Seal>,
}

impl LineWriter {
    pub(crate) fn new(half: OwnedWriteHalf) -> Self {
        Self { half, seal: None }
    }

    /// Writes `msg` as one line. Not cancel-safe once sealed (a line tagged but not written
    /// breaks the link), so it is awaited to its end or dropped with its connection.
    pub(crate) async fn send<T: Serialize>(&mut self, msg: &T) -> Result<(), String> {
        let json = serde_json::to_vec(msg).map_err(|e| e.to_string())?;
        let mut line = Vec::with_capacity(json.len() + key::SEALED_PREFIX + 1);
        if let Some(seal) = &mut self.seal {
            line.extend_from_slice(seal.tag(&json).as_bytes());
            line.push(b' ');
        }
        line.extend_from_slice(&json);
        line.push(b'\n');
        self.half.write_all(&line).await.map_err(|e| e.to_string())
    }

    /// Ends the stream: the peer reads to its end.
    pub(crate) async fn shutdown(&mut self) {
        let _ = self.half.shutdown().await;
    }
}

/// From here on, `me`'s end of a connection reads and writes lines sealed under `link`.
pub(crate) fn seal(reader: &mut LineReader, writer: &mut LineWriter, link: &LinkKey, me: Role) {
    let (read, write) = link.ends(me);
    reader.seal = Some(read);
    writer.seal = Some(write);
}

/// Wall clock, µs since the Unix epoch.
pub(crate) fn wall_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_each_and_round_trip() {
        let up = Up::Hello {
            shard: ShardId { index: 2, count: 3 },
            fingerprint: "ab".into(),
            version: "0.1.0".into(),
            nonce: "00ff".into(),
            protocol: PROTOCOL,
        };
        let line = serde_json::to_string(&up).unwrap();
        assert!(!line.contains('\n'));
        assert!(matches!(
            serde_json::from_str::<Up>(&line).unwrap(),
            Up::Hello {
                shard: ShardId { index: 2, count: 3 },
                ..
            }
        ));
        let down = Down::Stop {
            why: "x".into(),
            breach: Some(Breach {
                guard: "errors.rate < 2%".into(),
                measured: "5%".into(),
                at_s: 7.0,
            }),
        };
        let back: Down = serde_json::from_str(&serde_json::to_string(&down).unwrap()).unwrap();
        assert!(matches!(back, Down::Stop { breach: Some(b), .. } if b.at_s == 7.0));
    }

    #[test]
    fn fingerprints_tell_profiles_and_counts_apart() {
        let p = serde_json::json!({"name": "a", "sessions": 10});
        let q = serde_json::json!({"name": "a", "sessions": 11});
        let base = fingerprint(&p, 3);
        assert_eq!(base, fingerprint(&p, 3));
        assert_ne!(base, fingerprint(&q, 3));
        assert_ne!(base, fingerprint(&p, 4));
    }

    #[test]
    fn the_wall_clock_is_in_microseconds() {
        let now = wall_us();
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!((now / 1_000_000 - secs).abs() <= 1, "{now} vs {secs}");
    }
}
