//! A token bucket: the shape of every rate limit in the architecture.
//!
//! API Gateway's per-user and account limits, DynamoDB's on-demand throughput, Bedrock's
//! tokens- and requests-per-minute quotas and provisioned model units all admit work at a
//! rate with some burst allowance. Refill is computed lazily from the elapsed time, so a
//! bucket costs nothing between uses.

use crate::time::{Nanos, SECOND};

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
}
