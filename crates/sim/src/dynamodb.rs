//! DynamoDB on-demand: the conversation-memory table's read and write capacity.
//!
//! Capacity per second is the largest of: twice the previous peak (or, for a new table,
//! its documented initial throughput) and the warm throughput bought ahead of a release;
//! it grows as traffic does, but a level becomes the base for the next doubling only
//! `growth_window` after it was served. It never exceeds the table maximum nor
//! `partitions × per-partition` limit (keys spread evenly). Requests draw request units
//! from a token bucket holding one second of capacity; a request that finds too few is
//! throttled (the caller retries with backoff, see [`crate::retry`]). A write of an item
//! costs `ceil(KB)` write units, a (strongly consistent) read `ceil(KB / 4)` read units.

use std::collections::VecDeque;

use surge_profile::system::Memory;
use surge_profile::{ByteSize, Rate};

use crate::bucket::TokenBucket;
use crate::time::{Nanos, nanos};

/// Read or write side of the table.
pub struct Capacity {
    bucket: TokenBucket,
    floor: f64,
    ceiling: f64,
    peak_base: f64,
    growth_window: Nanos,
    /// Units served per second, not yet `growth_window` old.
    history: VecDeque<(Nanos, f64)>,
    this_second: f64,
    /// Units served and requests throttled since the last [`take_minute`](Self::take_minute).
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

impl Capacity {
    fn new(
        m: &Memory,
        previous_peak: Rate,
        new_table: Rate,
        warm: Rate,
        partition: Rate,
        max: Rate,
    ) -> Self {
        let (floor, peak_base) = if m.new_table {
            (new_table.per_second(), 0.0)
        } else {
            (2.0 * previous_peak.per_second(), previous_peak.per_second())
        };
        let floor = floor.max(warm.per_second());
        let ceiling = max
            .per_second()
            .min(f64::from(m.partitions.max(1)) * partition.per_second());
        let mut c = Self {
            bucket: TokenBucket::new(0.0, 0.0),
            floor,
            ceiling,
            peak_base,
            growth_window: nanos(m.growth_window),
            history: VecDeque::new(),
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

    /// Takes `units` at `now`; false means throttled.
    #[inline]
    pub fn try_consume(&mut self, now: Nanos, units: f64) -> bool {
        if self.bucket.try_take(now, units) {
            self.this_second += units;
            self.minute_units += units;
            true
        } else {
            self.throttles += 1;
            self.minute_throttles += 1;
            false
        }
    }

    /// Once per simulated second: lets served traffic raise the capacity.
    fn tick(&mut self, now: Nanos) {
        self.peak_per_second = self.peak_per_second.max(self.this_second);
        self.history
            .push_back((now, std::mem::take(&mut self.this_second)));
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

    pub fn take_usage(&mut self) -> Usage {
        Usage {
            units: std::mem::take(&mut self.minute_units),
            capacity_per_second: self.capacity(),
            throttles: std::mem::take(&mut self.minute_throttles),
        }
    }
}

/// Units one request for an item of `size` costs, with `unit_kb` KB per unit.
fn units(size: ByteSize, unit_kb: u64) -> f64 {
    let unit = unit_kb * 1024;
    size.bytes().div_ceil(unit).max(1) as f64
}

pub struct Table {
    pub reads: Capacity,
    pub writes: Capacity,
    pub read_units: f64,
    pub write_units: f64,
}

impl Table {
    pub fn new(m: &Memory) -> Self {
        Self {
            reads: Capacity::new(
                m,
                m.previous_peak_reads,
                m.new_table_reads,
                m.warm_reads,
                m.partition_reads,
                m.table_max_reads,
            ),
            writes: Capacity::new(
                m,
                m.previous_peak_writes,
                m.new_table_writes,
                m.warm_writes,
                m.partition_writes,
                m.table_max_writes,
            ),
            read_units: units(m.item_size, 4),
            write_units: units(m.item_size, 1),
        }
    }

    pub fn tick(&mut self, now: Nanos) {
        self.reads.tick(now);
        self.writes.tick(now);
    }

    #[inline]
    pub fn read(&mut self, now: Nanos) -> bool {
        self.reads.try_consume(now, self.read_units)
    }

    #[inline]
    pub fn write(&mut self, now: Nanos) -> bool {
        self.writes.try_consume(now, self.write_units)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::SECOND;

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
}
