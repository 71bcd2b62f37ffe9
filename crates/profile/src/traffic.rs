//! Traffic: who arrives, how fast they talk, what they ask, over which stages.
//!
//! Stages are written as targets (`sessions`, a message rate) reached over a `ramp` at
//! the start of the stage and then held, k6-style; the [`Schedule`] turns them into the
//! piecewise-linear sessions(t) and rate(t) that the simulator and the load generator
//! both follow, so prediction and measurement drive the same scenario.
//!
//! Users also react to a slow or failing system, and the load they bring changes with it:
//! `abandon_after` is how long a user waits from the moment they meant to send (the
//! intended time, which is what they experience) before giving up on the answer, and
//! `retry_after_error` how long after an error or a throttle they send the same text
//! again (once per message, so a broken system is not hammered forever). Both are read
//! by the simulator and the load generator alike, so they count the same things.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

pub use crate::burst::Cv;
use crate::dist::Dist;
use crate::trace::{Replay, Trace};
use crate::units::{Duration, Percent, Rate};

/// The traffic of a profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Traffic {
    /// When messages are due: Poisson, constant spacing, gamma bursts or a trace.
    pub arrival: Arrival,
    /// Mean user turns per conversation (Q35: 5).
    pub conversation_turns: f64,
    /// How long a session waits for an answer before counting a reply timeout.
    pub reply_timeout: Duration,
    /// How long a user waits for a complete answer, from the message's intended time,
    /// before giving up: the message is counted `abandoned` (not an error, not in the
    /// latencies) and its late frames are dropped. At most `reply_timeout`; `None`: users
    /// wait until the reply timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abandon_after: Option<Duration>,
    /// How long after an error frame or a throttle the user sends the same text again
    /// (`"exp(mean=5s)"`); one retry per message at most. `None`: users do not retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_error: Option<Dist<Duration>>,
    /// Cap on new connections per second while ramping sessions (API Gateway admits 500/s).
    pub connect_rate: Rate,
    /// Required, but for a trace (where they only label time windows).
    #[serde(default)]
    pub stages: Vec<Stage>,
    /// Store id → share of sessions.
    pub stores: BTreeMap<String, Percent>,
    /// Intent name → share of messages (what users type per intent is in the system model).
    pub intents: BTreeMap<String, Percent>,
}

/// When messages are due (`arrival = …`).
#[derive(Debug, Clone, PartialEq)]
pub enum Arrival {
    /// `"poisson"`: each session sends with exponential gaps at its share of the rate.
    Poisson,
    /// `"constant"`: each session sends evenly spaced at its share of the rate.
    Constant,
    /// `"gamma(cv=3)"`: one renewal process for all sessions, gamma gaps with this
    /// coefficient of variation ([`crate::burst`]), each message handed to an open session.
    Gamma(Cv),
    /// `{ trace = "traces/x.csv", speed = 2.0 }`: exactly the trace's messages, at its
    /// times ([`crate::trace`]); the stages' rates give way to it.
    Trace(Trace),
}

impl Arrival {
    fn parse(text: &str) -> Result<Self, String> {
        let usage = || {
            format!(
                "expected \"poisson\", \"constant\", \"gamma(cv=…)\" or a trace \
                 ({{ trace = \"traces/x.csv\" }}), found \"{text}\""
            )
        };
        match text.trim() {
            "poisson" => return Ok(Self::Poisson),
            "constant" => return Ok(Self::Constant),
            _ => {}
        }
        let (name, args) = crate::dist::call(text).ok_or_else(usage)?;
        if name != "gamma" {
            return Err(usage());
        }
        let [cv] = crate::dist::named(&args, ["cv"])
            .ok_or_else(|| format!("gamma is written gamma(cv=…), found \"{text}\""))?;
        let cv: f64 = cv
            .parse()
            .map_err(|_| format!("gamma's cv is a number such as 3, found \"{cv}\""))?;
        Cv::new(cv).map(Self::Gamma)
    }

    /// The trace replayed, if this is one.
    pub fn trace(&self) -> Option<&Trace> {
        match self {
            Self::Trace(t) => Some(t),
            _ => None,
        }
    }
}

impl fmt::Display for Arrival {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Poisson => f.write_str("poisson"),
            Self::Constant => f.write_str("constant"),
            Self::Gamma(cv) => write!(f, "gamma(cv={cv})"),
            Self::Trace(t) => write!(
                f,
                "trace {} ({} messages, speed {})",
                t.file().display(),
                t.len(),
                t.speed()
            ),
        }
    }
}

impl Serialize for Arrival {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Trace(t) => {
                use serde::ser::SerializeMap;
                let mut map = s.serialize_map(Some(2))?;
                map.serialize_entry("trace", t.file())?;
                map.serialize_entry("speed", &t.speed())?;
                map.end()
            }
            other => s.collect_str(other),
        }
    }
}

impl<'de> Deserialize<'de> for Arrival {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = Arrival;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "\"poisson\", \"constant\", \"gamma(cv=…)\" or { trace = \"traces/x.csv\" }",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Arrival, E> {
                Arrival::parse(v).map_err(E::custom)
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Arrival, A::Error> {
                let (mut file, mut speed) = (None::<PathBuf>, None::<f64>);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "trace" => file = Some(map.next_value()?),
                        "speed" => speed = Some(map.next_value()?),
                        other => {
                            return Err(de::Error::custom(format!(
                                "unknown key \"{other}\" in the trace; the keys are trace \
                                 (the file) and speed (optional, e.g. 2.0)"
                            )));
                        }
                    }
                }
                let file = file.ok_or_else(|| {
                    de::Error::custom("a trace needs its file: { trace = \"traces/x.csv\" }")
                })?;
                Trace::load(&file, speed.unwrap_or(1.0))
                    .map(Arrival::Trace)
                    .map_err(de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl Traffic {
    /// The trace resolved for a run, when the arrivals are one.
    pub fn replay(&self) -> Option<Replay> {
        let trace = self.arrival.trace()?;
        let intents: Vec<&str> = self.intents.keys().map(String::as_str).collect();
        let stores: Vec<&str> = self.stores.keys().map(String::as_str).collect();
        Some(trace.replay(
            &intents,
            &stores,
            self.conversation_turns,
            self.reply_timeout,
        ))
    }

    /// sessions(t) and rate(t) over `duration`: the stages', or those the trace implies.
    pub fn schedule(&self, duration: Duration) -> Schedule {
        match self.replay() {
            Some(replay) => replay.schedule(&self.stages, duration),
            None => Schedule::new(&self.stages, duration),
        }
    }
}

/// One stage: reach `sessions` and the message rate over `ramp`, then hold until `duration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawStage", into = "RawStage")]
pub struct Stage {
    pub name: String,
    pub duration: Duration,
    pub ramp: Duration,
    pub sessions: u64,
    pub rate: MessageRate,
}

/// How a stage states its message rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MessageRate {
    /// Messages per unit of time across all sessions (`message_rate = "250000/min"`).
    Total(Rate),
    /// Messages per unit of time of each session (`session_rate = "10/min"`).
    PerSession(Rate),
}

impl Stage {
    /// Total messages per second at this stage's target level.
    pub fn total_per_second(&self) -> f64 {
        match self.rate {
            MessageRate::Total(r) => r.per_second(),
            MessageRate::PerSession(r) => r.per_second() * self.sessions as f64,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    name: String,
    duration: Duration,
    #[serde(default)]
    ramp: Option<Duration>,
    sessions: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message_rate: Option<Rate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session_rate: Option<Rate>,
}

impl TryFrom<RawStage> for Stage {
    type Error = String;
    fn try_from(raw: RawStage) -> Result<Self, Self::Error> {
        let rate = match (raw.message_rate, raw.session_rate) {
            (Some(r), None) => MessageRate::Total(r),
            (None, Some(r)) => MessageRate::PerSession(r),
            (Some(_), Some(_)) => {
                return Err(
                    "give either message_rate (all sessions) or session_rate (each session), not both"
                        .into(),
                );
            }
            (None, None) => {
                return Err(
                    "a stage needs message_rate (all sessions, e.g. \"250000/min\") or session_rate (each session, e.g. \"10/min\")"
                        .into(),
                );
            }
        };
        Ok(Self {
            name: raw.name,
            duration: raw.duration,
            ramp: raw.ramp.unwrap_or(Duration::ZERO),
            sessions: raw.sessions,
            rate,
        })
    }
}

impl From<Stage> for RawStage {
    fn from(s: Stage) -> Self {
        let (message_rate, session_rate) = match s.rate {
            MessageRate::Total(r) => (Some(r), None),
            MessageRate::PerSession(r) => (None, Some(r)),
        };
        Self {
            name: s.name,
            duration: s.duration,
            ramp: Some(s.ramp),
            sessions: s.sessions,
            message_rate,
            session_rate,
        }
    }
}

/// One linear piece of the schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    /// Index of the stage this piece belongs to.
    pub stage: usize,
    pub start: Duration,
    pub end: Duration,
    pub sessions_from: f64,
    pub sessions_to: f64,
    /// Total messages per second at the start and end of the piece.
    pub rate_from: f64,
    pub rate_to: f64,
}

impl Segment {
    fn fraction(&self, t: Duration) -> f64 {
        let len = (self.end - self.start).as_secs_f64();
        if len <= 0.0 {
            1.0
        } else {
            ((t - self.start).as_secs_f64() / len).clamp(0.0, 1.0)
        }
    }

    /// Sessions that should be open at `t` (clamped to the piece).
    pub fn sessions_at(&self, t: Duration) -> f64 {
        self.sessions_from + (self.sessions_to - self.sessions_from) * self.fraction(t)
    }

    /// Total messages per second due at `t` (clamped to the piece).
    pub fn rate_at(&self, t: Duration) -> f64 {
        self.rate_from + (self.rate_to - self.rate_from) * self.fraction(t)
    }

    /// Whether neither sessions nor rate change over the piece.
    pub fn is_flat(&self) -> bool {
        self.sessions_from == self.sessions_to && self.rate_from == self.rate_to
    }

    /// Messages expected in this piece (area under the linear rate).
    pub fn messages(&self) -> f64 {
        (self.end - self.start).as_secs_f64() * (self.rate_from + self.rate_to) / 2.0
    }
}

/// sessions(t) and rate(t) as linear pieces, from time zero to the profile duration.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    segments: Vec<Segment>,
    duration: Duration,
}

impl Schedule {
    /// Builds the schedule. Each stage ramps linearly from the previous stage's level (zero
    /// before the first) over its `ramp`, then holds; after the last stage, its level holds
    /// until `duration`.
    pub fn new(stages: &[Stage], duration: Duration) -> Self {
        let mut segments = Vec::new();
        let (mut t, mut sessions, mut rate) = (Duration::ZERO, 0.0, 0.0);
        for (i, stage) in stages.iter().enumerate() {
            let target_sessions = stage.sessions as f64;
            let target_rate = stage.total_per_second();
            let ramp = stage.ramp.min(stage.duration);
            if ramp > Duration::ZERO {
                segments.push(Segment {
                    stage: i,
                    start: t,
                    end: t + ramp,
                    sessions_from: sessions,
                    sessions_to: target_sessions,
                    rate_from: rate,
                    rate_to: target_rate,
                });
            }
            if stage.duration > ramp {
                segments.push(Segment {
                    stage: i,
                    start: t + ramp,
                    end: t + stage.duration,
                    sessions_from: target_sessions,
                    sessions_to: target_sessions,
                    rate_from: target_rate,
                    rate_to: target_rate,
                });
            }
            t += stage.duration;
            sessions = target_sessions;
            rate = target_rate;
        }
        if duration > t && !stages.is_empty() {
            segments.push(Segment {
                stage: stages.len() - 1,
                start: t,
                end: duration,
                sessions_from: sessions,
                sessions_to: sessions,
                rate_from: rate,
                rate_to: rate,
            });
        }
        Self { segments, duration }
    }

    /// A schedule of given pieces (in time order, ending by `duration`).
    pub(crate) fn from_segments(segments: Vec<Segment>, duration: Duration) -> Self {
        Self { segments, duration }
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// The piece holding `t` (the last one from its end to the profile duration).
    pub fn segment_at(&self, t: Duration) -> Option<&Segment> {
        self.segments
            .iter()
            .find(|s| t >= s.start && t < s.end)
            .or_else(|| {
                self.segments
                    .last()
                    .filter(|s| t >= s.end && t <= self.duration)
            })
    }

    /// Sessions that should be open at `t`.
    pub fn sessions_at(&self, t: Duration) -> f64 {
        self.segment_at(t).map_or(0.0, |s| s.sessions_at(t))
    }

    /// Total messages per second due at `t`.
    pub fn rate_at(&self, t: Duration) -> f64 {
        self.segment_at(t).map_or(0.0, |s| s.rate_at(t))
    }

    /// Where the piece holding `t` ends, if neither sessions nor rate change over it:
    /// until then [`sessions_at`](Self::sessions_at) and [`rate_at`](Self::rate_at) give
    /// what they give at `t` (the simulator asks every simulated second and skips the
    /// search and interpolation within a flat piece).
    pub fn flat_until(&self, t: Duration) -> Option<Duration> {
        self.segments
            .iter()
            .find(|s| t >= s.start && t < s.end)
            .filter(|s| s.is_flat())
            .map(|s| s.end)
    }

    /// Index of the stage running at `t`.
    pub fn stage_at(&self, t: Duration) -> Option<usize> {
        self.segment_at(t).map(|s| s.stage)
    }

    /// Expected messages over the whole schedule.
    pub fn total_messages(&self) -> f64 {
        self.segments.iter().map(Segment::messages).sum()
    }

    /// Expected messages in stage `stage` (including its ramp and, for the last stage, the
    /// hold until the profile duration).
    pub fn stage_messages(&self, stage: usize) -> f64 {
        self.segments
            .iter()
            .filter(|s| s.stage == stage)
            .map(Segment::messages)
            .sum()
    }

    pub fn peak_sessions(&self) -> f64 {
        self.segments
            .iter()
            .map(|s| s.sessions_from.max(s.sessions_to))
            .fold(0.0, f64::max)
    }

    pub fn peak_rate(&self) -> f64 {
        self.segments
            .iter()
            .map(|s| s.rate_from.max(s.rate_to))
            .fold(0.0, f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(name: &str, dur: &str, ramp: &str, sessions: u64, rate: &str) -> Stage {
        Stage {
            name: name.into(),
            duration: dur.parse().unwrap(),
            ramp: ramp.parse().unwrap(),
            sessions,
            rate: MessageRate::Total(rate.parse().unwrap()),
        }
    }

    #[test]
    fn ramps_hold_and_integrates() {
        let stages = [
            stage("base", "10m", "0s", 500, "5000/min"),
            stage("spike", "2h", "1m", 25_000, "250000/min"),
        ];
        let s = Schedule::new(&stages, "2h10m".parse().unwrap());
        assert_eq!(s.sessions_at("5m".parse().unwrap()), 500.0);
        // Half-way up the one-minute ramp.
        let mid = s.sessions_at("10m30s".parse().unwrap());
        assert!((mid - 12_750.0).abs() < 1e-6, "{mid}");
        assert_eq!(s.peak_sessions(), 25_000.0);
        // 10 min × 5,000 + 1 min ramp (avg 127,500) + 119 min × 250,000.
        let expected = 50_000.0 + 127_500.0 + 119.0 * 250_000.0;
        assert!((s.total_messages() - expected).abs() < 1e-3);
        assert_eq!(s.stage_at("11m".parse().unwrap()), Some(1));
    }

    #[test]
    fn per_session_rates_scale_with_sessions() {
        let st = Stage {
            name: "x".into(),
            duration: "1m".parse().unwrap(),
            ramp: Duration::ZERO,
            sessions: 100,
            rate: MessageRate::PerSession("10/min".parse().unwrap()),
        };
        assert!((st.total_per_second() - 1000.0 / 60.0).abs() < 1e-9);
    }

    #[test]
    fn last_stage_holds_until_duration() {
        let stages = [stage("a", "1m", "0s", 10, "60/min")];
        let s = Schedule::new(&stages, "3m".parse().unwrap());
        assert_eq!(s.sessions_at("2m30s".parse().unwrap()), 10.0);
        assert!((s.total_messages() - 180.0).abs() < 1e-9);
    }
}
