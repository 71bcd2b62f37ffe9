//! A token bucket on the wall clock: the one rate limiter behind every quota of the mock
//! (per-user gateway rate, Bedrock tokens and requests per minute, DynamoDB capacity).

use std::time::Instant;

#[derive(Debug, Clone)]
pub struct TokenBucket {
    per_second: f64,
    depth: f64,
    level: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket refilled at `per_second`, holding at most `depth`.
    pub fn new(per_second: f64, depth: f64) -> Self {
        Self {
            per_second,
            depth,
            level: depth,
            last: Instant::now(),
        }
    }

    /// A bucket holding one minute of `per_minute`.
    pub fn per_minute(per_minute: f64) -> Self {
        Self::new(per_minute / 60.0, per_minute)
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.level = (self.level + dt * self.per_second).min(self.depth);
        self.last = now;
    }

    /// Whether `n` tokens are available now, without taking them.
    pub fn has(&mut self, now: Instant, n: f64) -> bool {
        self.refill(now);
        self.level >= n
    }

    /// Takes `n` tokens if available.
    pub fn try_take(&mut self, now: Instant, n: f64) -> bool {
        let ok = self.has(now, n);
        if ok {
            self.level -= n;
        }
        ok
    }

    /// Gives back tokens taken but not used (a settled reservation).
    pub fn refund(&mut self, n: f64) {
        self.level = (self.level + n).min(self.depth);
    }

    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    /// Changes rate and depth, keeping the current level (capped at the new depth).
    pub fn reshape(&mut self, now: Instant, per_second: f64, depth: f64) {
        self.refill(now);
        self.per_second = per_second;
        self.depth = depth;
        self.level = self.level.min(depth);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn takes_refunds_and_refills() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 5.0);
        assert!(b.try_take(t0, 5.0));
        assert!(!b.try_take(t0, 1.0));
        b.refund(2.0);
        assert!(b.try_take(t0, 2.0));
        assert!(b.try_take(t0 + Duration::from_millis(100), 1.0));
        assert!(!b.has(t0 + Duration::from_millis(100), 0.5));
    }
}
