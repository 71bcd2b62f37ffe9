//! The mock's wall clock in the model's terms: nanoseconds since this process started.
//!
//! The rules of [`surge_model`] take time as an argument and keep no clock of their own;
//! the mock hands them this one and turns their answers (when a token is due, how long a
//! backoff lasts) back into instants to sleep until.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use surge_model::time::Nanos;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Now, in the model's time.
pub fn now() -> Nanos {
    Nanos::try_from(epoch().elapsed().as_nanos()).unwrap_or(Nanos::MAX)
}

/// The instant of model time `t`.
pub fn instant(t: Nanos) -> Instant {
    epoch() + Duration::from_nanos(t)
}

/// A span of model time as a duration to sleep.
pub fn span(t: Nanos) -> Duration {
    Duration::from_nanos(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_time_and_instants_agree() {
        let t = now();
        let back = instant(t);
        let drift = back.saturating_duration_since(Instant::now())
            + Instant::now().saturating_duration_since(back);
        assert!(drift < Duration::from_secs(1));
        assert!(now() >= t, "time does not run backwards");
        assert_eq!(span(1_500_000), Duration::from_micros(1_500));
    }
}
