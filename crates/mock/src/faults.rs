//! Fault injection: what the load generator's tests use to check that it measures and
//! classifies failures right. Each fault is precise and documented in `surge mock --help`.
//!
//! - error rate per API: that fraction of requests is answered with the service's
//!   internal error (DynamoDB `InternalServerError` 500, Bedrock `InternalServerException`
//!   500 before the stream, chat an error frame with code `server_error`);
//! - latency spikes per API: with a probability, a request first waits a fixed extra time;
//! - stalls: every `every` from the start, for `length`, everything pauses — new requests
//!   wait for the end of the window, and streams (Bedrock events, chat tokens) send nothing
//!   until it ends;
//! - drops: that fraction of chat messages makes the server close the TCP connection at
//!   once, without a close frame, as a crashed gateway would;
//! - refused upgrades: that fraction of WebSocket upgrades is answered with HTTP 429 or 503;
//! - onset: every fault may wait a while after the server starts (`--fault-from 20s`), so
//!   a run can watch a healthy system break mid-run, as abort guards must.

use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::metrics::{Api, Metrics};

fn duration(s: &str) -> Result<Duration, String> {
    surge_profile::Duration::from_str(s.trim())
        .map(surge_profile::Duration::to_std)
        .map_err(|e| format!("{s:?}: {e}"))
}

fn fraction(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let v = match s.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => s.parse::<f64>(),
    }
    .map_err(|_| format!("{s:?} is not a fraction such as 0.01 or 1%"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{s:?} is not between 0 and 1"))
    }
}

fn api(s: &str) -> Result<Api, String> {
    match s.trim() {
        "chat" => Ok(Api::Chat),
        "bedrock" => Ok(Api::Bedrock),
        "dynamodb" => Ok(Api::Dynamodb),
        other => Err(format!(
            "unknown API {other:?}: use chat, bedrock or dynamodb"
        )),
    }
}

/// `API=FRACTION`, e.g. `dynamodb=0.01`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErrorRate {
    pub api: Api,
    pub rate: f64,
}

impl FromStr for ErrorRate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, r) = s
            .split_once('=')
            .ok_or("expected API=FRACTION, e.g. bedrock=0.01")?;
        Ok(Self {
            api: api(a)?,
            rate: fraction(r)?,
        })
    }
}

/// `API=DURATION@FRACTION`, e.g. `bedrock=2s@0.05`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencySpike {
    pub api: Api,
    pub extra: Duration,
    pub rate: f64,
}

impl FromStr for LatencySpike {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let err = "expected API=DURATION@FRACTION, e.g. bedrock=2s@0.05";
        let (a, rest) = s.split_once('=').ok_or(err)?;
        let (d, r) = rest.split_once('@').ok_or(err)?;
        Ok(Self {
            api: api(a)?,
            extra: duration(d)?,
            rate: fraction(r)?,
        })
    }
}

/// `LENGTH@every=PERIOD`, e.g. `2s@every=30s`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stall {
    pub length: Duration,
    pub every: Duration,
}

impl FromStr for Stall {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let err = "expected LENGTH@every=PERIOD, e.g. 2s@every=30s";
        let (l, p) = s.split_once("@every=").ok_or(err)?;
        let (length, every) = (duration(l)?, duration(p)?);
        if every.is_zero() || length >= every {
            return Err(format!("{s:?}: the stall must be shorter than its period"));
        }
        Ok(Self { length, every })
    }
}

/// `STATUS[@FRACTION]`, e.g. `503` or `429@0.5`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Refuse {
    pub status: u16,
    pub rate: f64,
}

impl FromStr for Refuse {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (st, r) = s.split_once('@').unwrap_or((s, "1"));
        let status = match st.trim() {
            "429" => 429,
            "503" => 503,
            other => return Err(format!("refuse with 429 or 503, not {other:?}")),
        };
        Ok(Self {
            status,
            rate: fraction(r)?,
        })
    }
}

/// Every fault configured for this server.
#[derive(Debug, Clone)]
pub struct Faults {
    pub errors: Vec<ErrorRate>,
    pub latency: Vec<LatencySpike>,
    pub stall: Option<Stall>,
    pub drop_rate: f64,
    pub refuse: Option<Refuse>,
    /// No fault acts before this long after the server started.
    pub onset: Duration,
    started: Instant,
}

impl Default for Faults {
    fn default() -> Self {
        Self::none()
    }
}

fn chance(p: f64) -> bool {
    p > 0.0 && rand::random::<f64>() < p
}

impl Faults {
    pub fn none() -> Self {
        Self {
            errors: Vec::new(),
            latency: Vec::new(),
            stall: None,
            drop_rate: 0.0,
            refuse: None,
            onset: Duration::ZERO,
            started: Instant::now(),
        }
    }

    /// Whether faults act yet.
    fn on(&self) -> bool {
        self.started.elapsed() >= self.onset
    }

    /// Whether a fault of probability `p` strikes now.
    fn strikes(&self, p: f64) -> bool {
        chance(p) && self.on()
    }

    /// Time left in the stall window `now` falls in, if any. Windows start at every
    /// whole multiple of the period after the server started (from the onset on).
    pub fn stalled_for(&self, now: Instant) -> Option<Duration> {
        let s = self.stall?;
        let since = now.saturating_duration_since(self.started);
        if since < self.onset {
            return None;
        }
        let since = since.as_nanos();
        let period = s.every.as_nanos();
        let into = since % period;
        (since >= period && into < s.length.as_nanos())
            .then(|| Duration::from_nanos((s.length.as_nanos() - into) as u64))
    }

    /// Waits out a stall window, if one is open.
    pub async fn pass_stall(&self, metrics: &Metrics) {
        if let Some(left) = self.stalled_for(Instant::now()) {
            metrics.fault("stall");
            tokio::time::sleep(left).await;
        }
    }

    /// What every request goes through first: a stall and a latency spike.
    pub async fn before_request(&self, api: Api, metrics: &Metrics) {
        self.pass_stall(metrics).await;
        for l in self.latency.iter().filter(|l| l.api == api) {
            if self.strikes(l.rate) {
                metrics.fault("latency");
                tokio::time::sleep(l.extra).await;
            }
        }
    }

    /// Whether this request of `api` fails with an injected internal error.
    pub fn inject_error(&self, api: Api, metrics: &Metrics) -> bool {
        let hit = self
            .errors
            .iter()
            .any(|e| e.api == api && self.strikes(e.rate));
        if hit {
            metrics.fault("error");
        }
        hit
    }

    /// Whether this chat message drops its connection.
    pub fn inject_drop(&self, metrics: &Metrics) -> bool {
        let hit = self.strikes(self.drop_rate);
        if hit {
            metrics.fault("drop");
        }
        hit
    }

    /// The status to refuse this WebSocket upgrade with, if any.
    pub fn refuse_upgrade(&self, metrics: &Metrics) -> Option<u16> {
        let r = self.refuse?;
        self.strikes(r.rate).then(|| {
            metrics.fault("refuse");
            r.status
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_reject() {
        assert_eq!(
            "dynamodb=1%".parse::<ErrorRate>().unwrap(),
            ErrorRate {
                api: Api::Dynamodb,
                rate: 0.01
            }
        );
        let l: LatencySpike = "bedrock=250ms@0.5".parse().unwrap();
        assert_eq!(l.extra, Duration::from_millis(250));
        let s: Stall = "2s@every=30s".parse().unwrap();
        assert_eq!(
            (s.length, s.every),
            (Duration::from_secs(2), Duration::from_secs(30))
        );
        assert_eq!("503".parse::<Refuse>().unwrap().rate, 1.0);
        for bad in ["x=1", "chat=2", "chat"] {
            assert!(bad.parse::<ErrorRate>().is_err(), "{bad}");
        }
        assert!("30s@every=2s".parse::<Stall>().is_err());
        assert!("500".parse::<Refuse>().is_err());
    }

    #[test]
    fn no_fault_acts_before_the_onset() {
        let metrics = Metrics::new();
        let mut f = Faults::none();
        f.errors = vec!["chat=1".parse().unwrap()];
        f.drop_rate = 1.0;
        f.refuse = Some("503".parse().unwrap());
        f.stall = Some("900ms@every=1s".parse().unwrap());
        f.onset = Duration::from_secs(3600);
        let t0 = f.started;
        assert!(!f.inject_error(Api::Chat, &metrics));
        assert!(!f.inject_drop(&metrics));
        assert_eq!(f.refuse_upgrade(&metrics), None);
        assert_eq!(f.stalled_for(t0 + Duration::from_millis(1500)), None);
        f.onset = Duration::ZERO;
        assert!(f.inject_error(Api::Chat, &metrics));
        assert!(f.inject_drop(&metrics));
        assert_eq!(f.refuse_upgrade(&metrics), Some(503));
        assert!(f.stalled_for(t0 + Duration::from_millis(1500)).is_some());
    }

    #[test]
    fn stall_windows_repeat_after_each_period() {
        let mut f = Faults::none();
        f.stall = Some("1s@every=10s".parse().unwrap());
        let t0 = f.started;
        assert_eq!(
            f.stalled_for(t0 + Duration::from_millis(500)),
            None,
            "not in the first period"
        );
        assert_eq!(
            f.stalled_for(t0 + Duration::from_millis(10_250)),
            Some(Duration::from_millis(750))
        );
        assert_eq!(f.stalled_for(t0 + Duration::from_millis(11_500)), None);
        assert!(f.stalled_for(t0 + Duration::from_millis(20_100)).is_some());
    }
}
