//! API Gateway WebSocket: connection admission, connection lifetime, per-user and account
//! rate limits.
//!
//! Sessions connect at most `connect_rate` per second, with one second of it as burst
//! ([`ConnectLimit`]; so 25,000 users need ≥ 50 s). The gateway closes a connection on its
//! own (close code 1001, "Going away") `max_connection` after it opened, or `idle_timeout`
//! after the client last sent a message, whichever comes first ([`Lifetime`]); frames the
//! backend posts to the client do not keep it alive. Closed sessions reconnect through the
//! same admission. A message is sent by one of the connected sessions; it passes the
//! session's token bucket (`per_user_rate`, one minute of burst) and the account bucket
//! (`account_rate`, depth `account_burst`). The account bucket is charged for the message
//! and for the callback posts of its answer (one post, plus the first-token frame when
//! streaming) at once, when the message is sent.
//!
//! The mock enforces every rule here per connection in wall time; the simulator counts
//! sessions in cohorts per second and applies admission and `max_connection` (its sessions
//! send messages, so the idle timeout, which only closes silent sessions, does not bind).

use std::collections::VecDeque;

use surge_profile::system::Gateway as GatewayModel;

use crate::bucket::TokenBucket;
use crate::time::{Nanos, SECOND, nanos, secs};

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

/// New connections the gateway admits: `connect_rate`, with one second of it (at least one
/// connection) as burst; a refused upgrade is HTTP 429.
///
/// Not a [`TokenBucket`]: admissions are whole connections counted at whole-second ticks
/// by the simulator, and the refill must be exactly `connect_rate` per second there (a
/// rate kept per nanosecond can refill 499.999… of 500 and admit one connection fewer).
#[derive(Debug, Clone, Copy)]
pub struct ConnectLimit {
    per_second: f64,
    depth: f64,
    credit: f64,
    last: Nanos,
}

impl ConnectLimit {
    /// The limit of one of `share` equal parts of the account (the mock's worker processes
    /// each hold one part; the simulator holds the whole, `share` 1); full at time zero.
    pub fn new(model: &GatewayModel, share: f64) -> Self {
        let per_second = model.connect_rate.per_second() / share;
        let depth = per_second.max(1.0);
        Self {
            per_second,
            depth,
            credit: depth,
            last: 0,
        }
    }

    /// Admits up to `wanted` new connections at `now`; returns how many it admitted.
    pub fn admit(&mut self, now: Nanos, wanted: u64) -> u64 {
        if now > self.last {
            self.credit = (self.credit + secs(now - self.last) * self.per_second).min(self.depth);
            self.last = now;
        }
        let admitted = wanted.min(self.credit as u64);
        self.credit -= admitted as f64;
        admitted
    }

    /// Whether one more connection is admitted at `now`.
    pub fn try_admit(&mut self, now: Nanos) -> bool {
        self.admit(now, 1) == 1
    }
}

/// Why the gateway closes a connection on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// The connection reached `max_connection`, even in the middle of an answer.
    MaxConnection,
    /// The client sent no message for `idle_timeout`.
    IdleTimeout,
}

impl Expiry {
    /// The WebSocket close code API Gateway sends for both: 1001, "Going away".
    pub const CLOSE_CODE: u16 = 1001;
}

/// One connection's two clocks: when it opened and when its client last sent a message.
/// Only [`Connection::heard`] moves the second, and never before the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    opened: Nanos,
    heard: Nanos,
}

impl Connection {
    /// A connection opened at `now`; its idle clock starts with it.
    pub fn open(now: Nanos) -> Self {
        Self {
            opened: now,
            heard: now,
        }
    }

    /// The client sent a message at `now` (a data frame: text or binary).
    pub fn heard(&mut self, now: Nanos) {
        self.heard = self.heard.max(now);
    }

    pub fn opened(&self) -> Nanos {
        self.opened
    }
}

/// How long the gateway keeps a connection: `max_connection` from its opening,
/// `idle_timeout` from the client's last message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    max_connection: Nanos,
    idle_timeout: Nanos,
}

impl Lifetime {
    pub fn new(model: &GatewayModel) -> Self {
        Self {
            max_connection: nanos(model.max_connection),
            idle_timeout: nanos(model.idle_timeout),
        }
    }

    /// When a connection opened at `opened` reaches `max_connection`.
    pub fn max_connection_end(&self, opened: Nanos) -> Nanos {
        opened.saturating_add(self.max_connection)
    }

    /// When and why the gateway closes `conn` if its client sends nothing more: the
    /// earlier of the two deadlines (the maximum duration when both fall together).
    pub fn end(&self, conn: &Connection) -> (Nanos, Expiry) {
        let max = self.max_connection_end(conn.opened);
        let idle = conn.heard.saturating_add(self.idle_timeout);
        if idle < max {
            (idle, Expiry::IdleTimeout)
        } else {
            (max, Expiry::MaxConnection)
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
    user_limit: UserLimit,
    /// Every session's own bucket, by session index (grown as sessions are first seen).
    users: Vec<UserBucket>,
    account: AccountLimit,
    connect: ConnectLimit,
    lifetime: Lifetime,
    cohorts: VecDeque<Cohort>,
    connected: u64,
    /// Reconnections forced by the maximum connection duration (each a close with 1001).
    pub reconnects: u64,
    /// Connections admitted, first ones and reconnections.
    pub opened: u64,
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
            connect: ConnectLimit::new(model, 1.0),
            lifetime: Lifetime::new(model),
            cohorts: VecDeque::new(),
            connected: 0,
            reconnects: 0,
            opened: 0,
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
            if now < self.lifetime.max_connection_end(c.since) {
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
        let admitted = self.connect.admit(now, missing);
        self.opened += admitted;
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
        assert_eq!(g.opened, 25_000);
        g.tick(2 * 3600 * SECOND, 25_000);
        assert_eq!(g.reconnects, 500);
        assert_eq!(
            g.opened, 25_500,
            "the reconnections are admitted connections too"
        );
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

    #[test]
    fn connections_are_admitted_at_the_connect_rate_with_a_second_of_burst() {
        let mut m = model();
        m.connect_rate = "10/s".parse().unwrap();
        let mut c = ConnectLimit::new(&m, 1.0);
        assert_eq!(c.admit(0, 25), 10, "one second of burst");
        assert!(!c.try_admit(0));
        assert!(!c.try_admit(SECOND / 20), "half a connection refilled");
        assert!(c.try_admit(SECOND / 10));
        assert_eq!(c.admit(60 * SECOND, 100), 10, "the burst caps the credit");
        let mut half = ConnectLimit::new(&m, 2.0);
        assert_eq!(half.admit(0, 25), 5, "one of two parts");
        m.connect_rate = "1/min".parse().unwrap();
        let mut slow = ConnectLimit::new(&m, 1.0);
        assert!(slow.try_admit(0), "at least one connection of burst");
        assert!(!slow.try_admit(30 * SECOND) && slow.try_admit(61 * SECOND));
    }

    #[test]
    fn a_connection_ends_at_its_idle_or_maximum_deadline_whichever_is_first() {
        let life = Lifetime::new(&model());
        let min = 60 * SECOND;
        let mut c = Connection::open(5 * SECOND);
        assert_eq!(c.opened(), 5 * SECOND);
        assert_eq!(life.end(&c), (5 * SECOND + 10 * min, Expiry::IdleTimeout));
        c.heard(9 * min);
        assert_eq!(life.end(&c), (19 * min, Expiry::IdleTimeout));
        c.heard(3 * min);
        assert_eq!(
            life.end(&c),
            (19 * min, Expiry::IdleTimeout),
            "time never runs back"
        );
        c.heard(115 * min);
        assert_eq!(
            life.end(&c),
            (5 * SECOND + 120 * min, Expiry::MaxConnection),
            "messages do not extend the maximum duration"
        );
        assert_eq!(life.max_connection_end(0), 120 * min);
        assert_eq!(Expiry::CLOSE_CODE, 1001);
    }
}
