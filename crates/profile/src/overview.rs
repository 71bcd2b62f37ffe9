//! The resolved scenario in figures: what `surge check` prints before anything runs.
//!
//! Stage by stage: when it starts and ends, sessions and messages per minute it ramps
//! between, how many messages and LLM calls to expect. These are the scenario's own
//! arithmetic (no queueing), so a profile author can check them against the seed's
//! numbers before spending a simulation or a rehearsal on them.

use crate::profile::Profile;
use crate::units::Duration;

/// Expected figures of one stage.
#[derive(Debug, Clone, PartialEq)]
pub struct StageOverview {
    pub name: String,
    pub start: Duration,
    pub end: Duration,
    pub sessions_from: f64,
    pub sessions_to: f64,
    pub per_minute_from: f64,
    pub per_minute_to: f64,
    pub messages: f64,
    pub llm_calls: f64,
}

/// Expected figures of the whole profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Overview {
    pub stages: Vec<StageOverview>,
    pub duration: Duration,
    pub peak_sessions: f64,
    pub peak_per_minute: f64,
    pub total_messages: f64,
    /// Share of messages whose intent needs the LLM.
    pub llm_share: f64,
    /// Share of those that still reach the LLM after precomputed answers and the
    /// semantic cache (when enabled).
    pub llm_pass_through: f64,
    pub llm_calls: f64,
    /// Time the gateway's connection rate needs to admit the peak sessions.
    pub connect_time_at_peak: f64,
}

impl Overview {
    pub fn of(profile: &Profile) -> Self {
        let schedule = profile.schedule();
        let sys = &profile.system;
        let llm_share = profile.llm_share();
        let mut pass = 1.0;
        if sys.precomputed.enabled {
            pass *= 1.0 - sys.precomputed.share.fraction();
        }
        if sys.semantic_cache.enabled {
            pass *= 1.0 - sys.semantic_cache.hit_ratio.fraction();
        }
        let llm_per_message = llm_share * pass;
        let segments = schedule.segments();
        let stages = profile
            .traffic
            .stages
            .iter()
            .enumerate()
            .filter_map(|(i, stage)| {
                let pieces: Vec<_> = segments.iter().filter(|s| s.stage == i).collect();
                let first = pieces.first()?;
                let last = pieces.last()?;
                let messages = schedule.stage_messages(i);
                Some(StageOverview {
                    name: stage.name.clone(),
                    start: first.start,
                    end: last.end,
                    sessions_from: first.sessions_from,
                    sessions_to: last.sessions_to,
                    per_minute_from: first.rate_from * 60.0,
                    per_minute_to: last.rate_to * 60.0,
                    messages,
                    llm_calls: messages * llm_per_message,
                })
            })
            .collect();
        let total_messages = schedule.total_messages();
        let peak_sessions = schedule.peak_sessions();
        let connect_rate = if sys.gateway.enabled {
            sys.gateway
                .connect_rate
                .per_second()
                .min(profile.traffic.connect_rate.per_second())
        } else {
            profile.traffic.connect_rate.per_second()
        };
        Self {
            stages,
            duration: profile.duration,
            peak_sessions,
            peak_per_minute: schedule.peak_rate() * 60.0,
            total_messages,
            llm_share,
            llm_pass_through: pass,
            llm_calls: total_messages * llm_per_message,
            connect_time_at_peak: peak_sessions / connect_rate,
        }
    }
}
