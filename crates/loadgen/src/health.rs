//! The generator watches itself: CPU time of each shard's thread, to tell a slow server from
//! a saturated generator (scheduling lag is recorded as the `lag` metric by the sessions and
//! a probe), and the time the thread was ready to run but waited for a CPU that another
//! process held: on a shared, busy host the generator is starved, not busy, and its own
//! CPU share alone would not show it.

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

/// Time the calling thread has spent ready to run but waiting for a CPU (the kernel's
/// run-queue wait, `/proc/thread-self/schedstat`); zero where the kernel does not say.
pub fn thread_cpu_wait() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// When the generator itself was the bottleneck: lag p99 above this…
pub const LAG_P99_LIMIT: Duration = Duration::from_millis(20);
/// …or a shard's thread busy this share of its core…
pub const CPU_BUSY_SHARE: f64 = 0.9;
/// …or a shard's thread waiting for a CPU this share of the run (other processes held the
/// cores for a quarter of it: its sends went out late and in bursts, whatever its lag p99).
pub const CPU_WAIT_SHARE: f64 = 0.25;
/// A wait share that explains a lag beyond [`LAG_P99_LIMIT`] by a busy host. With the mock
/// on the same two cores a healthy shard here waits 5–7 % of a run.
pub const CPU_WAIT_EXPLAINS: f64 = 0.1;

/// How hard the busiest shards worked: the largest share of its core a shard used in one
/// interval, and the largest share of the run a shard was ready to run but waited for a CPU.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Saturation {
    pub cpu_share: f64,
    pub wait_share: f64,
}

impl Saturation {
    /// The larger of each figure.
    pub fn max(self, other: Saturation) -> Saturation {
        Saturation {
            cpu_share: self.cpu_share.max(other.cpu_share),
            wait_share: self.wait_share.max(other.wait_share),
        }
    }
}

/// Why the generator was the bottleneck, if it was.
pub fn bottleneck(lag_p99: Option<Duration>, busiest: Saturation) -> Option<String> {
    let busiest_cpu_share = busiest.cpu_share;
    let mut reasons = Vec::new();
    let starved = format!(
        "a generator shard waited {:.0}% of the run for a CPU other processes held: the host \
         is busy",
        busiest.wait_share * 100.0
    );
    let mut told_starved = false;
    if let Some(lag) = lag_p99.filter(|l| *l > LAG_P99_LIMIT) {
        let mut reason = format!(
            "scheduling lag p99 {:.1} ms > {} ms",
            lag.as_secs_f64() * 1e3,
            LAG_P99_LIMIT.as_millis()
        );
        if busiest.wait_share >= CPU_WAIT_EXPLAINS {
            reason = format!("{reason}, because {starved}");
            told_starved = true;
        }
        reasons.push(reason);
    }
    if busiest_cpu_share >= CPU_BUSY_SHARE {
        reasons.push(format!(
            "a generator shard kept {:.0}% of its core busy",
            busiest_cpu_share * 100.0
        ));
    }
    if busiest.wait_share >= CPU_WAIT_SHARE && !told_starved {
        reasons.push(starved);
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
        let calm = Saturation {
            cpu_share: 0.2,
            wait_share: 0.01,
        };
        assert!(bottleneck(Some(Duration::from_millis(1)), calm).is_none());
        let busy = Saturation {
            cpu_share: 0.95,
            ..calm
        };
        let why = bottleneck(Some(Duration::from_millis(50)), busy).unwrap();
        assert!(why.contains("lag") && why.contains("95%"), "{why}");
        // Waiting a little for the CPU is normal beside other processes…
        let shared = Saturation {
            wait_share: 0.15,
            ..calm
        };
        assert!(bottleneck(Some(Duration::from_millis(2)), shared).is_none());
        // …it explains a lag…
        let why = bottleneck(Some(Duration::from_millis(80)), shared).unwrap();
        assert!(why.contains("because") && why.contains("15%"), "{why}");
        // …and waiting a quarter of the run is a bottleneck by itself.
        let starved = Saturation {
            wait_share: 0.4,
            ..calm
        };
        let why = bottleneck(Some(Duration::from_millis(1)), starved).unwrap();
        assert!(why.contains("40%") && why.contains("busy"), "{why}");
        assert_eq!(why.matches("busy").count(), 1, "{why}");
    }

    /// A thread that cannot get a CPU sees its wait grow: two threads pinned to one core,
    /// each spinning, wait for each other.
    #[cfg(target_os = "linux")]
    #[test]
    fn waiting_for_a_cpu_is_seen() {
        // SAFETY: plain libc calls on this thread's own affinity.
        let pin = || unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(0, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set);
        };
        let spin = move || {
            pin();
            let (cpu, wait) = (thread_cpu_time(), thread_cpu_wait());
            while thread_cpu_time() - cpu < Duration::from_millis(200) {
                std::hint::spin_loop();
            }
            thread_cpu_wait() - wait
        };
        let other = std::thread::spawn(spin);
        let mine = spin();
        let theirs = other.join().unwrap();
        assert!(
            mine + theirs >= Duration::from_millis(50),
            "two spinning threads on one core waited {mine:?} and {theirs:?}"
        );
    }
}
