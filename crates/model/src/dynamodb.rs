//! DynamoDB on-demand: a table's read and write capacity, and what a request costs.
//!
//! Capacity per second is the largest of: twice the previous peak (or, for a new table,
//! its documented initial throughput) and the warm throughput bought ahead of a release;
//! it grows as traffic does, but a level becomes the base for the next doubling only
//! `growth_window` after it was served. It never exceeds the table maximum nor
//! `partitions × per-partition` limit. Requests draw request units from a token bucket
//! holding one second of capacity; a request that finds too few is throttled (the caller
//! retries with backoff, see [`crate::retry`]). A write of an item costs `ceil(KB)` write
//! units, a strongly consistent read `ceil(KB / 4)` read units (eventually consistent: half).
//!
//! Keys either spread evenly (the simulator, which has no keys: the table's ceiling already
//! holds the partition limit) or are told apart (the mock: each partition has its own bucket
//! of the per-partition limit, so a hot key throttles before the table does).

use std::collections::VecDeque;

use surge_profile::Rate;
use surge_profile::system::Memory;

use crate::bucket::TokenBucket;
use crate::time::{Nanos, SECOND, nanos};

/// Read or write side of a table.
#[derive(Debug, Clone)]
pub struct Capacity {
    bucket: TokenBucket,
    /// One bucket per partition when keys are told apart; empty when they spread evenly.
    partitions: Vec<TokenBucket>,
    floor: f64,
    ceiling: f64,
    peak_base: f64,
    growth_window: Nanos,
    /// Units served per second, not yet `growth_window` old.
    history: VecDeque<(Nanos, f64)>,
    /// When the second being counted in `this_second` began.
    second: Nanos,
    this_second: f64,
    /// Units served and requests throttled since the last [`take_usage`](Self::take_usage).
    minute_units: f64,
    minute_throttles: u64,
    pub throttles: u64,
    /// Highest units served in one second.
    pub peak_per_second: f64,
}

/// Figures of one side of the table over a timeline interval.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub units: f64,
    pub capacity_per_second: f64,
    pub throttles: u64,
}

/// The system model's figures for one side of the table.
struct Limits {
    previous_peak: Rate,
    new_table: Rate,
    warm: Rate,
    partition: Rate,
    max: Rate,
}

/// How a table's keys meet its partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// Spread evenly: only the table's own limits apply.
    Even,
    /// Hashed to partitions by the caller: each partition has its own limit too.
    Partitioned,
}

impl Capacity {
    fn new(m: &Memory, l: Limits, share: f64, keys: Keys) -> Self {
        let per = |r: Rate| r.per_second() / share;
        let (floor, peak_base) = if m.new_table {
            (per(l.new_table), 0.0)
        } else {
            (2.0 * per(l.previous_peak), per(l.previous_peak))
        };
        let floor = floor.max(per(l.warm));
        let partitions = m.partitions.max(1);
        let partition = per(l.partition);
        let ceiling = per(l.max).min(f64::from(partitions) * partition);
        let mut c = Self {
            bucket: TokenBucket::new(0.0, 0.0),
            partitions: match keys {
                Keys::Even => Vec::new(),
                Keys::Partitioned => (0..partitions)
                    .map(|_| TokenBucket::new(partition, partition))
                    .collect(),
            },
            floor,
            ceiling,
            peak_base,
            growth_window: nanos(m.growth_window),
            history: VecDeque::new(),
            second: 0,
            this_second: 0.0,
            minute_units: 0.0,
            minute_throttles: 0,
            throttles: 0,
            peak_per_second: 0.0,
        };
        let cap = c.capacity();
        c.bucket = TokenBucket::new(cap, cap);
        c
    }

    /// Units per second the table serves now.
    pub fn capacity(&self) -> f64 {
        self.floor.max(2.0 * self.peak_base).min(self.ceiling)
    }

    /// Takes `units` at `now` (for a key of `partition`, when keys are told apart); false
    /// means throttled.
    #[inline]
    pub fn try_consume(&mut self, now: Nanos, units: f64, partition: Option<usize>) -> bool {
        let n = self.partitions.len();
        let partition = partition.filter(|_| n > 0).map(|p| p % n);
        let admitted = partition.is_none_or(|p| self.partitions[p].has(now, units))
            && self.bucket.try_take(now, units);
        if !admitted {
            self.throttles += 1;
            self.minute_throttles += 1;
            return false;
        }
        if let Some(p) = partition {
            self.partitions[p].try_take(now, units);
        }
        self.this_second += units;
        self.minute_units += units;
        true
    }

    /// Once a second: lets served traffic raise the capacity.
    pub fn tick(&mut self, now: Nanos) {
        self.peak_per_second = self.peak_per_second.max(self.this_second);
        self.history
            .push_back((now, std::mem::take(&mut self.this_second)));
        self.second = now;
        while let Some(&(t, units)) = self.history.front() {
            if now - t < self.growth_window {
                break;
            }
            self.peak_base = self.peak_base.max(units);
            self.history.pop_front();
        }
        let cap = self.capacity();
        if cap != self.bucket.per_second() {
            self.bucket.reshape(now, cap, cap);
        }
    }

    /// [`tick`](Self::tick) for a driver without a clock of seconds: ticks when a second
    /// or more has passed since the last tick.
    pub fn roll(&mut self, now: Nanos) {
        if now.saturating_sub(self.second) >= SECOND {
            self.tick(now);
        }
    }

    pub fn take_usage(&mut self) -> Usage {
        Usage {
            units: std::mem::take(&mut self.minute_units),
            capacity_per_second: self.capacity(),
            throttles: std::mem::take(&mut self.minute_throttles),
        }
    }
}

/// Write request units of an item of `bytes` (1 KB each).
pub fn write_units(bytes: u64) -> f64 {
    bytes.div_ceil(1024).max(1) as f64
}

/// Read request units of `bytes` read (4 KB each; eventually consistent reads cost half).
pub fn read_units(bytes: u64, consistent: bool) -> f64 {
    let units = bytes.div_ceil(4096).max(1) as f64;
    if consistent { units } else { units / 2.0 }
}

/// The conversation-memory table: both sides and what one turn's item costs.
#[derive(Debug, Clone)]
pub struct Table {
    pub reads: Capacity,
    pub writes: Capacity,
    /// Read units of one strongly consistent read of a memory item.
    pub read_units: f64,
    /// Write units of one write of a memory item.
    pub write_units: f64,
}

impl Table {
    /// The whole table, keys spread evenly (the simulator).
    pub fn new(m: &Memory) -> Self {
        Self::share(m, 1.0, Keys::Even)
    }

    /// One of `share` equal parts of the table (the mock's worker processes each hold one).
    pub fn share(m: &Memory, share: f64, keys: Keys) -> Self {
        Self {
            reads: Capacity::new(
                m,
                Limits {
                    previous_peak: m.previous_peak_reads,
                    new_table: m.new_table_reads,
                    warm: m.warm_reads,
                    partition: m.partition_reads,
                    max: m.table_max_reads,
                },
                share,
                keys,
            ),
            writes: Capacity::new(
                m,
                Limits {
                    previous_peak: m.previous_peak_writes,
                    new_table: m.new_table_writes,
                    warm: m.warm_writes,
                    partition: m.partition_writes,
                    max: m.table_max_writes,
                },
                share,
                keys,
            ),
            read_units: read_units(m.item_size.bytes(), true),
            write_units: write_units(m.item_size.bytes()),
        }
    }

    pub fn tick(&mut self, now: Nanos) {
        self.reads.tick(now);
        self.writes.tick(now);
    }

    /// One memory read at `now`; false means throttled.
    #[inline]
    pub fn read(&mut self, now: Nanos) -> bool {
        self.reads.try_consume(now, self.read_units, None)
    }

    /// One memory write at `now`; false means throttled.
    #[inline]
    pub fn write(&mut self, now: Nanos) -> bool {
        self.writes.try_consume(now, self.write_units, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory() -> Memory {
        Memory {
            enabled: true,
            read_latency: "10ms".parse().unwrap(),
            write_latency: "10ms".parse().unwrap(),
            reads_per_turn: 1,
            writes_per_turn: 1,
            item_size: "10KB".parse().unwrap(),
            previous_peak_writes: "50000/min".parse().unwrap(),
            previous_peak_reads: "15000/min".parse().unwrap(),
            new_table: false,
            new_table_writes: "4000/s".parse().unwrap(),
            new_table_reads: "12000/s".parse().unwrap(),
            warm_writes: "0/s".parse().unwrap(),
            warm_reads: "0/s".parse().unwrap(),
            growth_window: "30m".parse().unwrap(),
            partitions: 50,
            partition_writes: "1000/s".parse().unwrap(),
            partition_reads: "3000/s".parse().unwrap(),
            table_max_writes: "40000/s".parse().unwrap(),
            table_max_reads: "40000/s".parse().unwrap(),
            max_retries: 10,
            retry_base: "50ms".parse().unwrap(),
        }
    }

    #[test]
    fn instant_capacity_is_twice_the_previous_peak_and_grows_after_the_window() {
        let mut t = Table::new(&memory());
        assert_eq!((t.write_units, t.read_units), (10.0, 3.0));
        let cap = t.writes.capacity();
        assert!((cap - 2.0 * 50_000.0 / 60.0).abs() < 1e-9);
        // Serve the full capacity every second for 31 minutes.
        for s in 0..31 * 60 {
            let now = s * SECOND;
            while t.write(now) {}
            t.tick(now + SECOND - 1);
        }
        assert!(t.writes.capacity() > 1.9 * cap, "{}", t.writes.capacity());
    }

    #[test]
    fn warm_throughput_and_table_maximum() {
        let mut m = memory();
        m.warm_writes = "100000/s".parse().unwrap();
        assert_eq!(Table::new(&m).writes.capacity(), 40_000.0);
    }

    #[test]
    fn a_new_table_serves_its_initial_throughput_at_once() {
        let mut m = memory();
        m.new_table = true;
        let t = Table::new(&m);
        assert_eq!(
            (t.writes.capacity(), t.reads.capacity()),
            (4_000.0, 12_000.0)
        );
    }

    #[test]
    fn doubling_waits_for_the_growth_window() {
        let mut t = Table::new(&memory());
        let cap = t.writes.capacity();
        // Serve the full capacity every second for 29 minutes: no growth yet.
        for s in 0..29 * 60 {
            let now = s * SECOND;
            while t.write(now) {}
            t.tick(now + SECOND - 1);
        }
        assert_eq!(
            t.writes.capacity(),
            cap,
            "nothing served is 30 minutes old yet"
        );
        assert!(t.writes.throttles > 0);
    }

    #[test]
    fn twice_the_previous_peak_divided_among_shares() {
        let mut m = memory();
        m.previous_peak_writes = "1/s".parse().unwrap();
        m.item_size = "1KB".parse().unwrap();
        let mut one = Table::share(&m, 1.0, Keys::Partitioned);
        assert!(one.writes.try_consume(0, 1.0, Some(0)) && one.writes.try_consume(0, 1.0, Some(1)));
        assert!(
            !one.writes.try_consume(0, 1.0, Some(2)),
            "2 WRU/s, one second deep"
        );
        let mut half = Table::share(&m, 2.0, Keys::Partitioned);
        assert!(half.writes.try_consume(0, 1.0, Some(0)));
        assert!(
            !half.writes.try_consume(0, 1.0, Some(1)),
            "each of two parts has 1 WRU/s"
        );
        half.writes.roll(SECOND / 2);
        assert!(
            !half.writes.try_consume(SECOND / 2, 1.0, Some(1)),
            "half a second refills half"
        );
        half.writes.roll(SECOND);
        assert!(half.writes.try_consume(SECOND, 1.0, Some(1)));
    }

    #[test]
    fn a_hot_partition_throttles_before_the_table() {
        let mut m = memory();
        m.partition_reads = "3/s".parse().unwrap();
        let mut t = Table::share(&m, 1.0, Keys::Partitioned);
        assert!(t.reads.try_consume(0, 3.0, Some(7)));
        assert!(
            !t.reads.try_consume(0, 1.0, Some(7)),
            "the partition is spent"
        );
        assert!(
            t.reads.try_consume(0, 1.0, Some(8)),
            "other partitions still serve"
        );
        assert!(
            !t.reads.try_consume(0, 1.0, Some(7 + 50)),
            "keys wrap onto partitions"
        );
        let mut even = Table::new(&m);
        assert!(even.reads.try_consume(0, 3.0, Some(7)) && even.reads.try_consume(0, 3.0, Some(7)));
    }

    #[test]
    fn request_units() {
        assert_eq!(
            (
                write_units(1025),
                write_units(0),
                read_units(4096, true),
                read_units(1, false)
            ),
            (2.0, 1.0, 1.0, 0.5)
        );
        let t = Table::new(&memory());
        assert_eq!((t.write_units, t.read_units), (10.0, 3.0));
    }
}
