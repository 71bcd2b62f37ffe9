//! API Gateway WebSocket: connection admission, connection lifetime, per-user and account
//! rate limits.
//!
//! Sessions connect at most `connect_rate` per second (so 25,000 users need ≥ 50 s), are
//! closed after `max_connection` and reconnect through the same admission. A message is
//! sent by one of the connected sessions; it passes the
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

/// The per-user limit: `per_user_rate`, with one minute of it as burst.
#[derive(Debug, Clone, Copy)]
pub struct UserLimit {
    per_ms: f32,
    depth: f32,
}

impl UserLimit {
    pub fn new(model: &GatewayModel) -> Self {
        Self {
            per_ms: (model.per_user_rate.per_second() / 1000.0) as f32,
            depth: model.per_user_rate.per_minute() as f32,
        }
    }

    /// The bucket of a session that connects at `now`: full, as a new session's is.
    pub fn bucket(&self, now: Nanos) -> UserBucket {
        UserBucket {
            tokens: self.depth,
            last_ms: (now / 1_000_000) as u32,
        }
    }

    /// Takes one message from `bucket` at `now`; false means the user is throttled.
    #[inline]
    pub fn try_take(&self, bucket: &mut UserBucket, now: Nanos) -> bool {
        let now_ms = (now / 1_000_000) as u32;
        let UserBucket { tokens, last_ms } = bucket;
        let refilled =
            (*tokens + now_ms.saturating_sub(*last_ms) as f32 * self.per_ms).min(self.depth);
        *last_ms = now_ms.max(*last_ms);
        if refilled >= 1.0 {
            *tokens = refilled - 1.0;
            true
        } else {
            *tokens = refilled;
            false
        }
    }
}

/// One session's own token bucket, packed (tokens, last refill in ms) into 8 bytes so
/// 25,000 of them stay in cache: a simulated message picks a random session.
#[derive(Debug, Clone, Copy)]
pub struct UserBucket {
    tokens: f32,
    last_ms: u32,
}

/// The account-wide request limit: `account_rate`, depth `account_burst`. A message is
/// charged for itself and for the callback posts of its answer (one post, plus the
/// first-token frame when streaming) at once, when it is sent.
#[derive(Debug, Clone)]
pub struct AccountLimit {
    bucket: TokenBucket,
    requests_per_message: f64,
}

impl AccountLimit {
    /// The limit of one of `share` equal parts of the account (the mock's worker
    /// processes each hold one part; the simulator holds the whole, `share` 1).
    pub fn new(model: &GatewayModel, streaming: bool, share: f64) -> Self {
        Self {
            bucket: TokenBucket::new(
                model.account_rate.per_second() / share,
                model.account_burst as f64 / share,
            ),
            requests_per_message: if streaming { 3.0 } else { 2.0 },
        }
    }

    /// Whether the account admits one more message at `now`.
    #[inline]
    pub fn try_take(&mut self, now: Nanos) -> bool {
        self.bucket.try_take(now, self.requests_per_message)
    }
}

/// Admits or throttles a message its user sends at `now`: the user's own limit first, then
/// the account's.
#[inline]
pub fn admit(
    limit: &UserLimit,
    user: &mut UserBucket,
    account: &mut AccountLimit,
    now: Nanos,
) -> Admission {
    if !limit.try_take(user, now) {
        Admission::UserLimit
    } else if !account.try_take(now) {
        Admission::AccountLimit
    } else {
        Admission::Accepted
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
    user_limit: UserLimit,
    /// Every session's own bucket, by session index (grown as sessions are first seen).
    users: Vec<UserBucket>,
    account: AccountLimit,
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
            user_limit: UserLimit::new(model),
            users: Vec::new(),
            account: AccountLimit::new(model, streaming, 1.0),
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
        if user >= self.users.len() {
            // A session first seen now starts with a full bucket, as a new session's is.
            self.users.resize(user + 1, self.user_limit.bucket(0));
            self.users[user] = self.user_limit.bucket(now);
        }
        admit(
            &self.user_limit,
            &mut self.users[user],
            &mut self.account,
            now,
        )
    }
}

/// Time between gateway ticks.
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

    #[test]
    fn a_user_bucket_refills_at_the_per_user_rate() {
        let limit = UserLimit::new(&model());
        let mut b = limit.bucket(0);
        assert_eq!((0..40).filter(|_| limit.try_take(&mut b, 0)).count(), 30);
        // 30/min refills one message every 2 s.
        assert!(!limit.try_take(&mut b, SECOND));
        assert!(limit.try_take(&mut b, 2 * SECOND));
        assert!(!limit.try_take(&mut b, 2 * SECOND));
    }

    #[test]
    fn the_account_is_charged_for_the_posts_of_an_answer() {
        let mut m = model();
        m.account_rate = "30/s".parse().unwrap();
        m.account_burst = 30;
        let mut streaming = AccountLimit::new(&m, true, 1.0);
        assert_eq!((0..20).filter(|_| streaming.try_take(0)).count(), 10);
        let mut plain = AccountLimit::new(&m, false, 1.0);
        assert_eq!((0..20).filter(|_| plain.try_take(0)).count(), 15);
        let mut half = AccountLimit::new(&m, false, 2.0);
        assert_eq!(
            (0..20).filter(|_| half.try_take(0)).count(),
            7,
            "one of two parts"
        );
        assert!(
            half.try_take(SECOND),
            "15 requests a second refill the part"
        );
    }
}
