//! A token bucket: the shape of every rate limit in the architecture.
//!
//! API Gateway's account limit, DynamoDB's on-demand throughput, Bedrock's tokens- and
//! requests-per-minute quotas and provisioned model units all admit work at a rate with
//! some burst allowance. Refill is computed lazily from the elapsed time, so a bucket
//! costs nothing between uses. Time is the driver's ([`Nanos`] since its start); a bucket
//! never moves backwards, so a late caller is served as if it came at the latest time seen.

use crate::time::{MINUTE, Nanos, SECOND};

#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    /// Tokens added per nanosecond.
    rate: f64,
    depth: f64,
    tokens: f64,
    last: Nanos,
}

impl TokenBucket {
    /// A full bucket refilled at `per_second`, holding at most `depth` tokens.
    pub fn new(per_second: f64, depth: f64) -> Self {
        Self {
            rate: per_second / SECOND as f64,
            depth,
            tokens: depth,
            last: 0,
        }
    }

    /// A full bucket holding one minute of `per_minute`.
    pub fn per_minute(per_minute: f64) -> Self {
        Self::new(per_minute * SECOND as f64 / MINUTE as f64, per_minute)
    }

    #[inline]
    fn refill(&mut self, now: Nanos) {
        if now > self.last {
            self.tokens = (self.tokens + (now - self.last) as f64 * self.rate).min(self.depth);
            self.last = now;
        }
    }

    /// Takes `n` tokens at `now` if the bucket holds them.
    #[inline]
    pub fn try_take(&mut self, now: Nanos, n: f64) -> bool {
        self.refill(now);
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    /// Takes `n` tokens at `now` whether or not the bucket holds them: work already done
    /// (an answer pushed, retried until it went through) that still counts against the
    /// limit. The bucket may go below zero; what comes next waits for the refill.
    pub fn take_owed(&mut self, now: Nanos, n: f64) {
        self.refill(now);
        self.tokens -= n;
    }

    /// Whether `n` tokens are available at `now`, without taking them.
    pub fn has(&mut self, now: Nanos, n: f64) -> bool {
        self.refill(now);
        self.tokens >= n
    }

    /// Gives back `n` tokens (a reservation settled below what was reserved).
    pub fn refund(&mut self, n: f64) {
        self.tokens = (self.tokens + n).min(self.depth);
    }

    /// Changes the refill rate and depth from `now` on (tokens above the new depth are lost).
    pub fn reshape(&mut self, now: Nanos, per_second: f64, depth: f64) {
        self.refill(now);
        self.rate = per_second / SECOND as f64;
        self.depth = depth;
        self.tokens = self.tokens.min(depth);
    }

    pub fn per_second(&self) -> f64 {
        self.rate * SECOND as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_burst_then_rate() {
        let mut b = TokenBucket::new(10.0, 5.0);
        assert!((0..5).all(|_| b.try_take(0, 1.0)));
        assert!(!b.try_take(0, 1.0));
        assert!(b.try_take(SECOND / 10, 1.0));
        assert!(!b.try_take(SECOND / 10, 1.0));
        assert!(b.has(10 * SECOND, 5.0) && !b.has(10 * SECOND, 5.5));
    }

    #[test]
    fn refunds_cap_at_depth_and_reshape_keeps_the_level() {
        let mut b = TokenBucket::per_minute(600.0);
        assert!((b.per_second() - 10.0).abs() < 1e-12);
        assert!(b.try_take(0, 600.0) && !b.try_take(0, 1.0));
        b.refund(2.0);
        assert!(b.try_take(0, 2.0) && !b.has(0, 1.0));
        b.refund(1e9);
        assert!(
            b.has(0, 600.0) && !b.has(0, 600.5),
            "a refund never overfills"
        );
        b.reshape(0, 1.0, 10.0);
        assert!(
            b.has(0, 10.0) && !b.has(0, 10.5),
            "tokens above the new depth are lost"
        );
        assert!(b.try_take(0, 10.0) && b.try_take(SECOND, 1.0) && !b.has(SECOND, 0.5));
    }
}
