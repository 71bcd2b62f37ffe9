//! The generator watches itself: CPU time of each shard's thread, to tell a slow server from
//! a saturated generator (scheduling lag is recorded as the `lag` metric by the sessions and
//! a probe).

use std::time::Duration;

/// CPU time (user + system) the calling thread has used so far.
pub fn thread_cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// When the generator itself was the bottleneck: lag p99 above this…
pub const LAG_P99_LIMIT: Duration = Duration::from_millis(20);
/// …or a shard's thread busy this share of its core.
pub const CPU_BUSY_SHARE: f64 = 0.9;

/// Why the generator was the bottleneck, if it was (`busiest_cpu_share`: of the busiest
/// shard's one core).
pub fn bottleneck(lag_p99: Option<Duration>, busiest_cpu_share: f64) -> Option<String> {
    let mut reasons = Vec::new();
    if let Some(lag) = lag_p99.filter(|l| *l > LAG_P99_LIMIT) {
        reasons.push(format!(
            "scheduling lag p99 {:.1} ms > {} ms",
            lag.as_secs_f64() * 1e3,
            LAG_P99_LIMIT.as_millis()
        ));
    }
    if busiest_cpu_share >= CPU_BUSY_SHARE {
        reasons.push(format!(
            "a generator shard kept {:.0}% of its core busy",
            busiest_cpu_share * 100.0
        ));
    }
    (!reasons.is_empty()).then(|| {
        format!(
            "the load generator was the bottleneck ({}): use more --shards or machines",
            reasons.join("; ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_advances_and_bottleneck_says_why() {
        let a = thread_cpu_time();
        let mut x = 0u64;
        for i in 0..3_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        assert!(
            x > 0 && thread_cpu_time() > a,
            "the thread's own work is counted"
        );
        assert!(bottleneck(Some(Duration::from_millis(1)), 0.2).is_none());
        let why = bottleneck(Some(Duration::from_millis(50)), 0.95).unwrap();
        assert!(why.contains("lag") && why.contains("95%"), "{why}");
    }
}
