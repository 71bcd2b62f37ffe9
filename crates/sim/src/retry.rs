//! Exponential backoff with jitter, as the AWS SDKs retry throttled calls.
//!
//! Attempt `k` (from 0) waits `b/2 + U(0, b/2)` with `b = base × 2^k`, at most 20 s, so
//! retries spread out instead of hitting the throttled service in lockstep.

use crate::rng::Stream;
use crate::time::{Nanos, SECOND};

/// The SDKs' cap on one backoff.
const MAX_BACKOFF: Nanos = 20 * SECOND;

pub fn backoff(base: Nanos, attempt: u32, rng: &mut Stream) -> Nanos {
    let b = base.saturating_mul(1 << attempt.min(30)).min(MAX_BACKOFF);
    b / 2 + (rng.unit() * (b / 2) as f64) as Nanos
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_within_jitter_and_caps() {
        let mut rng = Stream::new(1, "retry");
        let ms = 1_000_000;
        for k in 0..4 {
            let d = backoff(50 * ms, k, &mut rng);
            let b = (50 * ms) << k;
            assert!(d >= b / 2 && d <= b, "{k}: {d}");
        }
        assert!(backoff(50 * ms, 20, &mut rng) <= MAX_BACKOFF);
    }
}
