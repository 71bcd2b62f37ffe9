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
//! and for the callback posts of its answer: with `posts_per_answer = "per_answer"` one
//! post, plus the first-token frame when streaming, at once when the message is sent; with
//! `"per_chunk"` one post per `chunk_tokens` output tokens, charged as the answer is
//! pushed ([`AccountLimit::posted`]), so long streamed answers crowd out new messages.
//!
//! The mock enforces every rule here per connection in wall time. The simulator counts
//! sessions in cohorts per second: admission and `max_connection` by cohort, and the idle
//! timeout by how long connections have been silent ([`Silence`]), since its sessions send
//! messages at random and only the silent ones close. A keepalive message sent more often
//! than the idle timeout keeps every connection open ([`keepalive_holds`]); a WebSocket
//! ping does not, for only data frames count as the client's ([`Connection::heard`]).

use std::collections::VecDeque;

use surge_profile::system::{Gateway as GatewayModel, Posts};
use surge_profile::{Keepalive, KeepaliveAction};

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
/// charged for itself when it is sent, and for the callback posts of its answer: at once
/// with it (`"per_answer"`: one post, plus the first-token frame when streaming), or as
/// they are made ([`posted`](Self::posted), `"per_chunk"`).
#[derive(Debug, Clone)]
pub struct AccountLimit {
    bucket: TokenBucket,
    requests_per_message: f64,
    posts_charged_as_made: bool,
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
            requests_per_message: charged_when_sent(model, streaming),
            posts_charged_as_made: chunk(model, streaming).is_some(),
        }
    }

    /// Whether the account admits one more message at `now`.
    #[inline]
    pub fn try_take(&mut self, now: Nanos) -> bool {
        self.bucket.try_take(now, self.requests_per_message)
    }

    /// The backend pushed `posts` posts of an answer at `now`. Charged only when posts are
    /// charged as they are made (`"per_chunk"`), and never refused: a throttled post is
    /// retried until it goes through, so it counts against the limit either way and the
    /// messages after it wait for the refill.
    pub fn posted(&mut self, now: Nanos, posts: u64) {
        if self.posts_charged_as_made {
            self.bucket.take_owed(now, posts as f64);
        }
    }
}

/// The output tokens each post of a streamed answer carries: `chunk_tokens` with
/// `posts_per_answer = "per_chunk"`, `None` when tokens go out as they come.
pub fn chunk(model: &GatewayModel, streaming: bool) -> Option<u32> {
    (streaming && model.posts_per_answer == Posts::PerChunk).then_some(model.chunk_tokens.max(1))
}

/// The account requests a message costs on average: itself and its answer's posts, when a
/// share `generated` of the answers are streamed by the LLM with `tokens` output tokens on
/// average (the rest are one post).
pub fn requests_per_message(
    model: &GatewayModel,
    streaming: bool,
    generated: f64,
    tokens: f64,
) -> f64 {
    let posted_later = chunk(model, streaming).map_or(0.0, |c| {
        let posts = (tokens / f64::from(c)).ceil().max(1.0);
        generated * posts + (1.0 - generated)
    });
    charged_when_sent(model, streaming) + posted_later
}

/// The account requests charged when a message is sent: itself, and with posts per
/// answer the answer's post and (streaming) the first token's.
fn charged_when_sent(model: &GatewayModel, streaming: bool) -> f64 {
    match chunk(model, streaming) {
        Some(_) => 1.0,
        None if streaming => 3.0,
        None => 2.0,
    }
}

/// The posts that push a streamed answer of `tokens` output tokens in chunks of `chunk`:
/// one per chunk, the last one short.
pub fn chunk_posts(chunk: u32, tokens: u32) -> u64 {
    u64::from(tokens.max(1).div_ceil(chunk.max(1)))
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
    /// The connections by silence, while the idle timeout can close them.
    silence: Silence,
    connected: u64,
    /// Reconnections the gateway forced: closes (each with 1001) at the maximum connection
    /// duration and after the idle timeout.
    pub reconnects: u64,
    /// Of those, the closes after the idle timeout.
    pub idle_closes: u64,
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
            silence: Silence::new(nanos(model.idle_timeout)),
            connected: 0,
            reconnects: 0,
            idle_closes: 0,
            opened: 0,
            connect_backlog: 0,
        }
    }

    /// Once per simulated second: closes connections past their maximum duration, follows
    /// the wanted number of sessions down at once, closes the connections silent for the
    /// idle timeout, and follows the wanted number up at the admission rate.
    ///
    /// `heard`: data frames each connected client sends per second (its messages); `None`
    /// when a keepalive holds every connection open ([`keepalive_holds`]).
    pub fn tick(&mut self, now: Nanos, wanted: u64, heard: Option<f64>) {
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
        if let Some(rate) = heard {
            self.silence.keep(self.connected);
            let idle = self.silence.step(rate).min(self.connected);
            self.close_oldest(idle);
            self.reconnects += idle;
            self.idle_closes += idle;
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
        if heard.is_some() {
            self.silence.opened(admitted);
            self.silence.keep(self.connected);
        }
        self.connect_backlog = missing - admitted;
    }

    /// Closes `n` connections, the oldest first. Idle closes take them from the oldest
    /// cohorts: only connections open for the idle timeout can have been silent that long,
    /// and a silent connection's age says nothing more about when it closes.
    fn close_oldest(&mut self, mut n: u64) {
        while n > 0 {
            let front = self
                .cohorts
                .front_mut()
                .expect("connected sessions have cohorts");
            let gone = front.count.min(n);
            front.count -= gone;
            self.connected -= gone;
            n -= gone;
            if front.count == 0 {
                self.cohorts.pop_front();
            }
        }
    }

    /// Sessions connected now.
    pub fn connected(&self) -> u64 {
        self.connected
    }

    /// Whether the gateway is modelled at all (off: every wanted session is connected).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Share of the wanted sessions that are connected (1 when the gateway is off).
    pub fn connected_share(&self, wanted: f64) -> f64 {
        if !self.enabled || wanted < 1.0 {
            1.0
        } else {
            (self.connected as f64 / wanted).min(1.0)
        }
    }

    /// The backend pushed `posts` posts of an answer at `now` ([`AccountLimit::posted`]).
    pub fn posted(&mut self, now: Nanos, posts: u64) {
        if self.enabled {
            self.account.posted(now, posts);
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

/// Whether `keepalive` holds every connection open against the idle timeout: a message
/// (a data frame) sent more often than the timeout. A WebSocket ping is not the client's
/// message to API Gateway and does not reset its idle clock.
pub fn keepalive_holds(model: &GatewayModel, keepalive: Option<&Keepalive>) -> bool {
    keepalive.is_some_and(|k| {
        matches!(k.action, KeepaliveAction::Send(_))
            && k.every.to_std() < model.idle_timeout.to_std()
    })
}

/// Connections per second the idle timeout closes (and their sessions reopen) among
/// `sessions` connections that send `rate` messages a second between them, at random, in
/// the steady state: each closes once silent for the timeout `T`, so
/// `sessions · r / (e^(r·T) − 1)` with `r` the rate per session (`sessions / T` when silent).
pub fn idle_closes_per_second(model: &GatewayModel, sessions: f64, rate: f64) -> f64 {
    let timeout = model.idle_timeout.as_secs_f64();
    if sessions <= 0.0 || timeout <= 0.0 {
        return 0.0;
    }
    let x = rate.max(0.0) / sessions * timeout;
    if x < 1e-9 {
        sessions / timeout
    } else {
        sessions * x / timeout / x.exp_m1()
    }
}

/// The connections by how long their client has been silent, in whole ticks: how the
/// simulator, which counts sessions instead of following each one, applies the idle
/// timeout.
///
/// Each tick every connection sends a data frame with probability `1 − e^(−rate·tick)` (its
/// messages arrive at random) and starts over at zero, or grows a tick older; those that
/// reach the idle timeout close. Exact for messages that arrive as a Poisson process at a
/// rate that changes once a tick, and in the limit of silent sessions: every connection
/// closes the idle timeout after it opened, the whole ramp again as a wave. Counts are
/// expected values; whole closes are returned and the fraction carried to the next tick.
#[derive(Debug, Clone)]
pub struct Silence {
    /// `by_age[s]`: connections silent for `s` ticks (`s` below the timeout's ticks).
    by_age: VecDeque<f64>,
    /// The fraction of a close not yet returned.
    carry: f64,
}

impl Silence {
    /// Connections close once silent for `idle_timeout` (whole ticks, at least one).
    pub fn new(idle_timeout: Nanos) -> Self {
        let ticks = idle_timeout.div_ceil(TICK).max(1) as usize;
        Self {
            by_age: VecDeque::from(vec![0.0; ticks]),
            carry: 0.0,
        }
    }

    /// `n` connections opened: silent for no time yet.
    pub fn opened(&mut self, n: u64) {
        self.by_age[0] += n as f64;
    }

    /// Connections closed for other reasons (or whole closes against expected ones) leave
    /// every age alike: the ages are rescaled to add up to `connected`.
    pub fn keep(&mut self, connected: u64) {
        let total: f64 = self.by_age.iter().sum();
        if total > 0.0 {
            let k = connected as f64 / total;
            self.by_age.iter_mut().for_each(|n| *n *= k);
        } else {
            self.by_age[0] = connected as f64;
        }
    }

    /// One tick in which every connection sends `rate` data frames a second on average:
    /// returns the connections the idle timeout closes.
    pub fn step(&mut self, rate: f64) -> u64 {
        let silent = (-rate.max(0.0) * secs(TICK)).exp();
        let heard: f64 = self.by_age.iter().map(|n| n * (1.0 - silent)).sum();
        let timed_out = self.by_age.pop_back().unwrap_or(0.0) * silent;
        self.by_age.iter_mut().for_each(|n| *n *= silent);
        self.by_age.push_front(heard);
        self.carry += timed_out;
        let whole = self.carry.floor();
        self.carry -= whole;
        whole as u64
    }
}

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
            posts_per_answer: Posts::PerAnswer,
            chunk_tokens: 20,
        }
    }

    #[test]
    fn ramp_to_25k_takes_50_seconds_and_reconnects_after_2h() {
        let mut g = Gateway::new(&model(), false);
        let mut t = 0;
        while g.connected() < 25_000 {
            g.tick(t, 25_000, None);
            t += TICK;
        }
        assert_eq!(t, 50 * SECOND);
        assert_eq!(g.opened, 25_000);
        g.tick(2 * 3600 * SECOND, 25_000, None);
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
        g.tick(0, 1, None);
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
    fn posts_per_chunk_are_charged_as_made_and_crowd_out_messages() {
        let mut m = model();
        m.account_rate = "30/s".parse().unwrap();
        m.account_burst = 30;
        m.posts_per_answer = Posts::PerChunk;
        m.chunk_tokens = 20;
        assert_eq!(chunk(&m, true), Some(20));
        assert_eq!(chunk(&m, false), None, "an answer not streamed is one post");
        assert_eq!(chunk(&model(), true), None);
        // 300 tokens in chunks of 20: 15 posts; 301 need a 16th, short one.
        assert_eq!(
            (
                chunk_posts(20, 300),
                chunk_posts(20, 301),
                chunk_posts(20, 0)
            ),
            (15, 16, 1)
        );
        let mut account = AccountLimit::new(&m, true, 1.0);
        assert!(
            account.try_take(0),
            "the message alone is charged when sent"
        );
        account.posted(0, chunk_posts(20, 300));
        // 30 − 1 − 15 = 14 requests left: 14 more messages, then none.
        assert_eq!((0..20).filter(|_| account.try_take(0)).count(), 14);
        // Posts beyond the bucket are owed: 10 more posts leave it 10 below zero, so the
        // refill of the next 1.05 s (31.5) pays them and admits 21 messages, not 30.
        account.posted(0, 10);
        let later = SECOND + SECOND / 20;
        assert_eq!((0..40).filter(|_| account.try_take(later)).count(), 21);
        // Charged at send per answer, posting later costs nothing more.
        let mut per_answer = AccountLimit::new(&model(), true, 1.0);
        per_answer.posted(0, 1000);
        assert!(per_answer.try_take(0));
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
    fn the_steady_idle_close_rate_is_the_share_of_silent_gaps() {
        let m = model();
        // 1,000 sessions, one message a second between them, 10 min timeout: r·T = 0.6.
        let expected = 1.0 / 0.6f64.exp_m1();
        assert!((idle_closes_per_second(&m, 1000.0, 1.0) - expected).abs() < 1e-12);
        assert_eq!(
            idle_closes_per_second(&m, 600.0, 0.0),
            1.0,
            "all close every 600 s"
        );
        assert!(
            idle_closes_per_second(&m, 1000.0, 1000.0) < 1e-100,
            "a message a second"
        );
        // The stepped ages agree once the opening wave has passed.
        let mut silence = Silence::new(600 * SECOND);
        silence.opened(100_000);
        let mut late = 0;
        for t in 0..20_000 {
            let closed = silence.step(100.0 / 100_000.0);
            silence.opened(closed);
            if t >= 10_000 {
                late += closed;
            }
        }
        let steady = idle_closes_per_second(&m, 100_000.0, 100.0) * 10_000.0;
        assert!(
            (late as f64 / steady - 1.0).abs() < 0.01,
            "{late} against {steady}"
        );
    }

    #[test]
    fn silent_connections_close_the_idle_timeout_after_they_opened() {
        let mut silence = Silence::new(10 * SECOND);
        silence.opened(300);
        let closes: Vec<u64> = (1..=12).map(|_| silence.step(0.0)).collect();
        assert_eq!(closes, [0, 0, 0, 0, 0, 0, 0, 0, 0, 300, 0, 0]);
        assert!(
            Silence::new(SECOND / 2).by_age.len() == 1,
            "at least one tick"
        );
    }

    /// Against connections followed one by one (not by age): each sends messages as a
    /// Poisson process, closes once silent for the timeout and reopens at once.
    #[test]
    fn idle_closes_match_connections_followed_one_by_one() {
        let (n, timeout, rate, horizon) = (20_000u64, 600.0, 1.0 / 300.0, 3_600.0);
        let mut state = 0x5EED_u64;
        let mut uniform = move || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut followed = 0u64;
        for _ in 0..n {
            let mut t = 0.0;
            for _ in 0..100_000 {
                let gap = -(1.0 - uniform()).ln() / rate;
                if gap >= timeout {
                    t += timeout;
                    if t > horizon {
                        break;
                    }
                    followed += 1;
                } else {
                    t += gap;
                }
                if t > horizon {
                    break;
                }
            }
        }
        let mut silence = Silence::new(nanos_of(timeout));
        silence.opened(n);
        let mut counted = 0;
        for _ in 0..horizon as u64 {
            let closed = silence.step(rate);
            silence.opened(closed);
            counted += closed;
        }
        let off = counted as f64 / followed as f64 - 1.0;
        assert!(off.abs() < 0.03, "{counted} against {followed} followed");
    }

    fn nanos_of(seconds: f64) -> Nanos {
        (seconds * SECOND as f64) as Nanos
    }

    #[test]
    fn the_gateway_closes_idle_connections_and_admits_them_again() {
        let mut m = model();
        m.idle_timeout = "5s".parse().unwrap();
        let mut g = Gateway::new(&m, false);
        for t in 0..=5 {
            g.tick(t * SECOND, 100, Some(0.0));
        }
        assert_eq!((g.reconnects, g.idle_closes, g.opened), (100, 100, 200));
        assert_eq!(g.connected(), 100, "reopened within the connect rate");
        // Talkative sessions (a message a second) keep theirs.
        let mut talkative = Gateway::new(&m, false);
        for t in 0..=30 {
            talkative.tick(t * SECOND, 100, Some(5.0));
        }
        assert_eq!(talkative.idle_closes, 0);
    }

    #[test]
    fn only_a_message_more_often_than_the_idle_timeout_holds_connections_open() {
        let keepalive = |every: &str, action: KeepaliveAction| Keepalive {
            every: every.parse().unwrap(),
            action,
        };
        let send = || KeepaliveAction::Send(r#"{"action":"ping"}"#.into());
        assert!(keepalive_holds(&model(), Some(&keepalive("5m", send()))));
        assert!(!keepalive_holds(&model(), Some(&keepalive("10m", send()))));
        assert!(!keepalive_holds(
            &model(),
            Some(&keepalive("5m", KeepaliveAction::Ping))
        ));
        assert!(!keepalive_holds(&model(), None));
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
