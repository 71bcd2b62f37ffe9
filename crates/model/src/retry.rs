//! Exponential backoff with jitter, as the AWS SDKs retry throttled calls.
//!
//! Attempt `k` (from 0) waits `b/2 + U(0, b/2)` with `b = base × 2^k`, at most 20 s, so
//! retries spread out instead of hitting the throttled service in lockstep.

use rand::RngCore;

use crate::draw::unit;
use crate::time::{Nanos, SECOND};

/// The SDKs' cap on one backoff.
pub const MAX_BACKOFF: Nanos = 20 * SECOND;

/// How long attempt `attempt` (from 0) waits before it retries.
pub fn backoff<R: RngCore + ?Sized>(base: Nanos, attempt: u32, rng: &mut R) -> Nanos {
    let b = base.saturating_mul(1 << attempt.min(30)).min(MAX_BACKOFF);
    b / 2 + (unit(rng) * (b / 2) as f64) as Nanos
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn doubles_within_jitter_and_caps() {
        let mut rng = StdRng::seed_from_u64(1);
        let ms = 1_000_000;
        for k in 0..4 {
            let d = backoff(50 * ms, k, &mut rng);
            let b = (50 * ms) << k;
            assert!(d >= b / 2 && d <= b, "{k}: {d}");
        }
        assert!(backoff(50 * ms, 20, &mut rng) <= MAX_BACKOFF);
        assert!(
            backoff(50 * ms, 40, &mut rng) >= MAX_BACKOFF / 2,
            "no overflow"
        );
    }
}
