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
    as_f64(t) / SECOND as f64
}

/// Seconds as simulated nanoseconds, rounded; negative or NaN gives zero.
#[inline]
pub fn from_secs(s: f64) -> Nanos {
    truncate(s * SECOND as f64 + 0.5)
}

// x86-64 converts between floats and *signed* integers in one instruction; `u64` takes a
// branchy sequence of several. Simulated times stay far below 2^63 ns (292 years), so the
// hot path converts through `i64`, with the same results.

/// `t` as a float (exact below 2^53 ns, 104 days; rounded to nearest beyond, like `as`).
#[inline]
pub fn as_f64(t: Nanos) -> f64 {
    t as i64 as f64
}

/// Nanoseconds from a float, truncated toward zero; negative or NaN gives zero, beyond
/// 2^63 − 1 saturates there.
#[inline]
pub fn truncate(x: f64) -> Nanos {
    (x as i64).max(0) as Nanos
}

/// Microseconds, the unit of every recorded latency.
#[inline]
pub fn micros(t: Nanos) -> u64 {
    t / 1_000
}
