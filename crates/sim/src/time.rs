//! Simulated time: whole nanoseconds since the start of the scenario.
//!
//! Integer time makes event order exact and runs reproducible bit for bit; `u64`
//! nanoseconds last 584 years, far beyond any rehearsal.

use surge_profile::Duration;

/// An instant or a span of simulated time, in nanoseconds.
pub type Nanos = u64;

pub const SECOND: Nanos = 1_000_000_000;
pub const MINUTE: Nanos = 60 * SECOND;

/// A profile duration in simulated nanoseconds.
#[inline]
pub fn nanos(d: Duration) -> Nanos {
    d.as_nanos()
}

/// Seconds as a float, for rates and reports.
#[inline]
pub fn secs(t: Nanos) -> f64 {
    t as f64 / SECOND as f64
}

/// Seconds as simulated nanoseconds, rounded; negative or NaN gives zero.
#[inline]
pub fn from_secs(s: f64) -> Nanos {
    (s * SECOND as f64 + 0.5) as Nanos
}

/// Microseconds, the unit of every recorded latency.
#[inline]
pub fn micros(t: Nanos) -> u64 {
    t / 1_000
}
