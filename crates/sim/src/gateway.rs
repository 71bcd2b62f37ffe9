//! API Gateway WebSocket: connection admission, connection lifetime, per-user and account
//! rate limits.
//!
//! Sessions connect at most `connect_rate` per second (so 25,000 users need ≥ 50 s), are
//! closed after `max_connection` and reconnect through the same admission. A message is
//! sent by one of the connected sessions (see [`crate::sessions`]); it passes the
//! session's token bucket (`per_user_rate`, one minute of burst) and the account bucket
//! (`account_rate`, depth `account_burst`). The account bucket is charged for the message
//! and for the callback posts of its answer (one post, plus the first-token frame when
//! streaming) at once, when the message is sent.

use std::collections::VecDeque;

use surge_profile::system::Gateway as GatewayModel;

use crate::bucket::TokenBucket;
use crate::time::{Nanos, SECOND, nanos};

/// What the gateway does with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Accepted,
    /// The session's own limit (429 to that user).
    UserLimit,
    /// The account-wide request limit.
    AccountLimit,
}

/// Every session's own token bucket, packed (tokens, last refill in ms) so 25,000 of them
/// stay in cache: a message picks a random session, so this is touched at random.
struct UserBuckets {
    per_ms: f32,
    depth: f32,
    buckets: Vec<(f32, u32)>,
}

impl UserBuckets {
    fn try_take(&mut self, user: usize, now: Nanos) -> bool {
        if user >= self.buckets.len() {
            // A session first seen now starts with a full bucket, as a new session's is.
            self.buckets.resize(user + 1, (self.depth, 0));
            self.buckets[user].1 = (now / 1_000_000) as u32;
        }
        let now_ms = (now / 1_000_000) as u32;
        let (tokens, last) = &mut self.buckets[user];
        let refilled =
            (*tokens + now_ms.saturating_sub(*last) as f32 * self.per_ms).min(self.depth);
        *last = now_ms.max(*last);
        if refilled >= 1.0 {
            *tokens = refilled - 1.0;
            true
        } else {
            *tokens = refilled;
            false
        }
    }
}

/// Sessions admitted in one tick, and when.
#[derive(Debug, Clone, Copy)]
struct Cohort {
    since: Nanos,
    count: u64,
}

pub struct Gateway {
    enabled: bool,
    users: UserBuckets,
    account: TokenBucket,
    requests_per_message: f64,
    connect_per_second: f64,
    connect_credit: f64,
    max_connection: Nanos,
    cohorts: VecDeque<Cohort>,
    connected: u64,
    /// Reconnections forced by the maximum connection duration.
    pub reconnects: u64,
    /// Sessions that wanted to be connected but were waiting for admission (last tick).
    pub connect_backlog: u64,
}

impl Gateway {
    pub fn new(model: &GatewayModel, streaming: bool) -> Self {
        Self {
            enabled: model.enabled,
            users: UserBuckets {
                per_ms: (model.per_user_rate.per_second() / 1000.0) as f32,
                depth: model.per_user_rate.per_minute() as f32,
                buckets: Vec::new(),
            },
            account: TokenBucket::new(model.account_rate.per_second(), model.account_burst as f64),
            requests_per_message: if streaming { 3.0 } else { 2.0 },
            connect_per_second: model.connect_rate.per_second(),
            connect_credit: 0.0,
            max_connection: nanos(model.max_connection),
            cohorts: VecDeque::new(),
            connected: 0,
            reconnects: 0,
            connect_backlog: 0,
        }
    }

    /// Once per simulated second: closes connections past their maximum duration, follows
    /// the wanted number of sessions down at once and up at the admission rate.
    pub fn tick(&mut self, now: Nanos, wanted: u64) {
        if !self.enabled {
            self.connected = wanted;
            return;
        }
        while let Some(c) = self.cohorts.front().copied() {
            if now.saturating_sub(c.since) < self.max_connection {
                break;
            }
            self.cohorts.pop_front();
            self.connected -= c.count;
            self.reconnects += c.count;
        }
        // Sessions that leave: the most recently connected go first.
        while self.connected > wanted {
            let back = self
                .cohorts
                .back_mut()
                .expect("connected sessions have cohorts");
            let gone = back.count.min(self.connected - wanted);
            back.count -= gone;
            self.connected -= gone;
            if back.count == 0 {
                self.cohorts.pop_back();
            }
        }
        let missing = wanted - self.connected;
        self.connect_credit =
            (self.connect_credit + self.connect_per_second).min(self.connect_per_second.max(1.0));
        let admitted = missing.min(self.connect_credit as u64);
        self.connect_credit -= admitted as f64;
        if admitted > 0 {
            self.cohorts.push_back(Cohort {
                since: now,
                count: admitted,
            });
            self.connected += admitted;
        }
        self.connect_backlog = missing - admitted;
    }

    /// Sessions connected now.
    pub fn connected(&self) -> u64 {
        self.connected
    }

    /// Share of the wanted sessions that are connected (1 when the gateway is off).
    pub fn connected_share(&self, wanted: f64) -> f64 {
        if !self.enabled || wanted < 1.0 {
            1.0
        } else {
            (self.connected as f64 / wanted).min(1.0)
        }
    }

    /// Admits or throttles a message sent at `now` by session `user`.
    pub fn admit(&mut self, now: Nanos, user: usize) -> Admission {
        if !self.enabled {
            return Admission::Accepted;
        }
        if !self.users.try_take(user, now) {
            return Admission::UserLimit;
        }
        if !self.account.try_take(now, self.requests_per_message) {
            return Admission::AccountLimit;
        }
        Admission::Accepted
    }
}

/// Seconds between gateway ticks.
pub const TICK: Nanos = SECOND;

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> GatewayModel {
        GatewayModel {
            enabled: true,
            per_user_rate: "30/min".parse().unwrap(),
            account_rate: "10000/s".parse().unwrap(),
            account_burst: 5000,
            connect_rate: "500/s".parse().unwrap(),
            max_connection: "2h".parse().unwrap(),
            idle_timeout: "10m".parse().unwrap(),
            max_message: "128KB".parse().unwrap(),
            max_frame: "32KB".parse().unwrap(),
            auth: "50ms".parse().unwrap(),
            network: "50ms".parse().unwrap(),
        }
    }

    #[test]
    fn ramp_to_25k_takes_50_seconds_and_reconnects_after_2h() {
        let mut g = Gateway::new(&model(), false);
        let mut t = 0;
        while g.connected() < 25_000 {
            g.tick(t, 25_000);
            t += TICK;
        }
        assert_eq!(t, 50 * SECOND);
        g.tick(2 * 3600 * SECOND, 25_000);
        assert_eq!(g.reconnects, 500);
        assert_eq!(g.connected(), 25_000, "the first cohort reconnects at once");
    }

    #[test]
    fn per_user_limit_is_30_a_minute() {
        let mut g = Gateway::new(&model(), false);
        g.tick(0, 1);
        let ok = (0..40)
            .filter(|_| g.admit(0, 0) == Admission::Accepted)
            .count();
        assert_eq!(ok, 30);
    }
}
