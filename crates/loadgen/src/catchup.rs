//! Catch-up pacing: what the generator made late goes out at the planned rate, not at once.
//!
//! When a shard's thread stalls (another process holds the cores, or the shard is busier
//! than one core), the messages that fell due meanwhile would all be sent the moment it
//! resumes: a stall of one second at 4,000 msg/s is 4,000 messages in a millisecond, a
//! burst real users never send. A target with a rate limit (API Gateway's token bucket,
//! a WAF) would throttle it, and the run would report throttles the target never gives
//! real users.
//!
//! So a message whose *generator* lag (the session was idle and the thread did not wake
//! in time; not a user still reading the previous answer) exceeds [`LAG_BOUND`] waits for
//! a slot of a shard-wide gate that releases such messages no faster than the shard's
//! planned rate at that moment. A backlog drains spread out as it fell due, and the
//! target sees at most twice the planned rate (the drain on top of the on-time traffic)
//! instead of an unbounded spike. Nothing is hidden: a paced message's latency still
//! counts from its intended time (no coordinated omission), its lag records the stall,
//! the `paced` count says how many were held back, and a stall shows in the run's
//! generator verdict (health.rs).

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Generator lag past which a message is paced: well above the lag of a healthy shard
/// (p99 ~2 ms here), well below a stall.
pub const LAG_BOUND: Duration = Duration::from_millis(10);

/// Releases late messages no faster than a rate that follows the plan.
#[derive(Debug)]
pub struct CatchUp {
    next: Mutex<Instant>,
}

impl CatchUp {
    pub fn new(now: Instant) -> Self {
        Self {
            next: Mutex::new(now),
        }
    }

    /// The instant a message that is `lag` late at `now` may go out, when the shard's
    /// planned rate is `per_second()` (asked only for a message late enough to pace): `now`
    /// when it is not late enough (or nothing is planned), else the next free slot, one
    /// planned gap after the previous one.
    pub fn slot(&self, now: Instant, lag: Duration, per_second: impl FnOnce() -> f64) -> Instant {
        if lag <= LAG_BOUND {
            return now;
        }
        let per_second = per_second();
        if per_second <= 0.0 {
            return now;
        }
        let gap = Duration::from_secs_f64(1.0 / per_second);
        let mut next = self.next.lock().expect("catch-up lock");
        let slot = (*next).max(now);
        *next = slot + gap;
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backlog_drains_at_the_planned_rate_and_on_time_sends_pass() {
        let now = Instant::now();
        let gate = CatchUp::new(now);
        let stalled = Duration::from_millis(500);
        // 1,000 messages that fell due during a 0.5 s stall, at 2,000 msg/s planned.
        let slots: Vec<Instant> = (0..1_000)
            .map(|_| gate.slot(now, stalled, || 2_000.0))
            .collect();
        assert_eq!(slots[0], now, "the first goes at once");
        for pair in slots.windows(2) {
            assert_eq!(pair[1] - pair[0], Duration::from_micros(500));
        }
        assert_eq!(*slots.last().unwrap() - now, Duration::from_micros(499_500));
        // A message on time, or late by less than the bound, is not held back.
        assert_eq!(gate.slot(now, Duration::from_millis(2), || 2_000.0), now);
        assert_eq!(gate.slot(now, LAG_BOUND, || 2_000.0), now);
        // Nothing planned: nothing to pace against.
        assert_eq!(gate.slot(now, stalled, || 0.0), now);
        // Once the backlog has drained, a new late message goes at once.
        let later = now + Duration::from_secs(1);
        assert_eq!(gate.slot(later, stalled, || 2_000.0), later);
    }
}
