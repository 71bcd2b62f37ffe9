//! `run.json`: what ran, against what, when, and how it ended; versioned `surge.run/v1`.
//!
//! Why it exists: a run directory must explain itself without the command line that made it —
//! the analyzer shows simulated and measured runs side by side, and CI archives directories.
//! The target URL is stored only through [`redact_url`], so credentials in a `--target` never
//! land in a results directory that gets checked in or uploaded.

use serde::{Deserialize, Serialize};

use crate::time::UtcTime;

/// The value of the `schema` field of run.json.
pub const RUN_SCHEMA: &str = "surge.run/v1";

/// Whether the run was predicted or measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    /// `surge simulate`: discrete-event simulation.
    Simulated,
    /// `surge run` / `surge bench`: real load against a target.
    Measured,
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Written at start; a run.json still saying `running` belongs to a process that died
    /// without finishing (treat like `interrupted`).
    Running,
    /// Ran to its planned end.
    Complete,
    /// Stopped early (Ctrl-C, SIGTERM, deadline); the data up to the stop is valid.
    Interrupted,
    /// Could not be carried out; data may be partial or absent.
    Failed,
    /// Stopped itself because a guard was breached (`abort = true` thresholds,
    /// `--max-errors`); the data up to the stop is valid and `breach` says why.
    Aborted,
    /// A multi-machine run that lost one or more shards mid-run and went on without them;
    /// the figures are of the shards that remained, and `summary.json`'s `lost_shards`
    /// says which shard was lost, when, and the share of the offered load it took along.
    Degraded,
}

/// Why a run stopped itself: the guard, what it measured, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Breach {
    /// The guard as written: `errors.rate < 2% over 30s`, `errors <= 100 (--max-errors)`.
    pub guard: String,
    /// What broke it, in the guard's unit: `12.5%`, `1.9s`, `101`.
    pub measured: String,
    /// Run time of the end of the interval that broke it, in seconds.
    pub at_s: f64,
}

/// The content of `run.json`. Build with [`RunInfo::new`], then [`set_target`]
/// (redacting) and [`finish`].
///
/// [`set_target`]: RunInfo::set_target
/// [`finish`]: RunInfo::finish
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    #[serde(deserialize_with = "schema_run")]
    schema: String,
    pub kind: RunKind,
    pub status: RunStatus,
    /// Profile name (file stem), e.g. `one-piece-spike`.
    pub profile: String,
    /// The fully resolved profile, as the caller serialized it.
    pub resolved_profile: serde_json::Value,
    /// Target URL with credentials removed; `None` for simulations.
    target: Option<String>,
    pub started_at: UtcTime,
    /// `None` while running.
    pub ended_at: Option<UtcTime>,
    /// RNG seed, when the run used one.
    pub seed: Option<u64>,
    /// Number of shards (hlog files) the run writes.
    pub shards: u32,
    /// Version of surge that wrote the run.
    pub surge_version: String,
    /// Why the run stopped itself (status `aborted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breach: Option<Breach>,
    /// How the shards of a rendezvous run met: who joined, over what round trip, and how
    /// far each one's clock was from the coordinator's (measured, never relied on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendezvous: Option<Rendezvous>,
}

/// The start barrier of a multi-machine run (`surge run --shard I/N --rendezvous`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rendezvous {
    /// The coordinator's listening address, as given.
    pub address: String,
    /// The shards that joined before the start, the coordinator (shard 0) first.
    pub joined: Vec<JoinedShard>,
    /// Shards expected but not there at the start (`--min-shards`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<u32>,
    /// From the start decision to time zero, ms: every shard got its start signal by then.
    pub lead_ms: f64,
}

/// One shard at the barrier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JoinedShard {
    pub shard: u32,
    /// Where it connected from (`local` for the coordinator itself).
    pub peer: String,
    /// Best round trip of the clock probes, ms.
    pub rtt_ms: f64,
    /// Its wall clock minus the coordinator's, ms (NTP-style, from the best probe).
    pub clock_offset_ms: f64,
}

fn schema_run<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if s == RUN_SCHEMA {
        Ok(s)
    } else {
        Err(serde::de::Error::custom(format_args!(
            "unsupported schema {s:?}, expected {RUN_SCHEMA:?}"
        )))
    }
}

impl RunInfo {
    /// A run that has just started: status `running`, one shard, no target, no seed, this
    /// crate's version as `surge_version` (all workspace crates share one version).
    pub fn new(
        kind: RunKind,
        profile: impl Into<String>,
        resolved_profile: serde_json::Value,
        started_at: impl Into<UtcTime>,
    ) -> RunInfo {
        RunInfo {
            schema: RUN_SCHEMA.to_string(),
            kind,
            status: RunStatus::Running,
            profile: profile.into(),
            resolved_profile,
            target: None,
            started_at: started_at.into(),
            ended_at: None,
            seed: None,
            shards: 1,
            surge_version: env!("CARGO_PKG_VERSION").to_string(),
            breach: None,
            rendezvous: None,
        }
    }

    /// The `schema` string (always [`RUN_SCHEMA`]).
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Store the target URL, redacted with [`redact_url`].
    pub fn set_target(&mut self, url: &str) {
        self.target = Some(redact_url(url));
    }

    /// The (redacted) target URL.
    pub fn target(&self) -> Option<&str> {
        self.target.as_deref()
    }

    /// Mark the run ended.
    pub fn finish(&mut self, status: RunStatus, ended_at: impl Into<UtcTime>) {
        self.status = status;
        self.ended_at = Some(ended_at.into());
    }
}

/// What replaces a secret.
pub const REDACTED: &str = "REDACTED";

/// Remove credentials from a URL: drop `user:password@` userinfo, and replace the value of
/// every query or fragment parameter whose name looks secret (contains `token`, `secret`,
/// `passw`, `pwd`, `auth`, `signature`, `sig`, `credential`, `key`, `session`, `jwt`,
/// `cookie`, `bearer`, case-insensitive — e.g. `token=`, `access_token=`, `api_key=`,
/// `X-Amz-Security-Token`, `X-Amz-Signature`, `X-Amz-Credential`, `Authorization=`) with
/// `REDACTED`. Everything else is kept byte for byte. Over-redacting is preferred to leaking.
pub fn redact_url(url: &str) -> String {
    // Split off fragment and query first: they may contain '@' and '/'.
    let (before_frag, fragment) = match url.split_once('#') {
        Some((a, f)) => (a, Some(f)),
        None => (url, None),
    };
    let (before_query, query) = match before_frag.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (before_frag, None),
    };
    let (scheme, rest) = match before_query.find("://") {
        Some(i) => (&before_query[..i + 3], &before_query[i + 3..]),
        None => ("", before_query),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = match authority.rfind('@') {
        Some(i) => &authority[i + 1..],
        None => authority,
    };
    let mut out = String::with_capacity(url.len());
    out.push_str(scheme);
    out.push_str(host);
    out.push_str(path);
    if let Some(q) = query {
        out.push('?');
        out.push_str(&redact_params(q));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(&redact_params(f));
    }
    out
}

fn redact_params(params: &str) -> String {
    params
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if is_secret_name(k) => format!("{k}={REDACTED}"),
            _ => p.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn is_secret_name(name: &str) -> bool {
    let lower = percent_decode_lossy(name).to_ascii_lowercase();
    const NEEDLES: [&str; 13] = [
        "token",
        "secret",
        "passw",
        "pwd",
        "auth",
        "signature",
        "sig",
        "credential",
        "key",
        "session",
        "jwt",
        "cookie",
        "bearer",
    ];
    NEEDLES.iter().any(|n| lower.contains(n))
}

fn percent_decode_lossy(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_userinfo_and_secret_params() {
        let cases = [
            (
                "wss://user:pa55@chat.example.com/ws?store=manga_jp&token=abc123",
                "wss://chat.example.com/ws?store=manga_jp&token=REDACTED",
            ),
            (
                "https://h.example/p?X-Amz-Security-Token=IQoJ%2Fb&X-Amz-Date=20261128T130500Z&X-Amz-Signature=ff&X-Amz-Credential=AKIA%2F",
                "https://h.example/p?X-Amz-Security-Token=REDACTED&X-Amz-Date=20261128T130500Z&X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED",
            ),
            ("ws://127.0.0.1:8080/chat", "ws://127.0.0.1:8080/chat"),
            (
                "wss://h/ws?Authorization=Bearer%20x&api_key=k&apiKey=k2&sid=1",
                "wss://h/ws?Authorization=REDACTED&api_key=REDACTED&apiKey=REDACTED&sid=1",
            ),
            (
                "https://h/cb#access_token=xyz&state=1",
                "https://h/cb#access_token=REDACTED&state=1",
            ),
            ("user@h:9000/path?x=1", "h:9000/path?x=1"),
            ("wss://h/ws?a%5Ftoken=s", "wss://h/ws?a%5Ftoken=REDACTED"),
            ("wss://h/ws?flag&t=1", "wss://h/ws?flag&t=1"),
        ];
        for (input, want) in cases {
            assert_eq!(redact_url(input), want, "{input}");
        }
    }

    #[test]
    fn run_info_redacts_target_and_round_trips() {
        let mut r = RunInfo::new(
            RunKind::Measured,
            "nightly-staging",
            serde_json::json!({"traffic": {"users": 500}}),
            UtcTime::from_unix_millis(1_795_871_100_000),
        );
        r.set_target("wss://u:p@staging.example/ws?token=t");
        r.seed = Some(42);
        r.finish(
            RunStatus::Complete,
            UtcTime::from_unix_millis(1_795_871_160_000),
        );
        assert_eq!(r.target(), Some("wss://staging.example/ws?token=REDACTED"));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["schema"], "surge.run/v1");
        assert_eq!(json["kind"], "measured");
        assert_eq!(json["status"], "complete");
        assert_eq!(json["started_at"], "2026-11-28T13:05:00.000Z");
        assert_eq!(json["ended_at"], "2026-11-28T13:06:00.000Z");
        let back: RunInfo = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
    }
}
