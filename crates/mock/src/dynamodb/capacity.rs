//! On-demand capacity of one table, from the system model's `memory` section, so the mock
//! throttles where the simulator predicts throttles.
//!
//! Capacity per second is twice the previous peak (a new table: its initial throughput; at
//! least the warm throughput), never above the table maximum nor `partitions ×` the
//! per-partition limit. A level served becomes the base of the next doubling only
//! `growth_window` after it was served. Each partition (keys hashed to one) also has its own
//! bucket. With `--workers N` every figure is divided by N: each worker holds its own tables
//! and SO_REUSEPORT spreads connections evenly.

use std::collections::VecDeque;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

use surge_profile::Rate;
use surge_profile::system::Memory;

use crate::bucket::TokenBucket;

/// Read or write capacity of a table.
#[derive(Debug)]
struct Side {
    table: TokenBucket,
    partitions: Vec<TokenBucket>,
    floor: f64,
    ceiling: f64,
    peak_base: f64,
    growth_window: Duration,
    /// Units served per whole second, until `growth_window` old.
    history: VecDeque<(Instant, f64)>,
    second: Instant,
    this_second: f64,
}

struct Limits {
    previous_peak: Rate,
    new_table: Rate,
    warm: Rate,
    partition: Rate,
    max: Rate,
}

impl Side {
    fn new(m: &Memory, l: Limits, workers: f64) -> Self {
        let per = |r: Rate| r.per_second() / workers;
        let (floor, peak_base) = if m.new_table {
            (per(l.new_table), 0.0)
        } else {
            (2.0 * per(l.previous_peak), per(l.previous_peak))
        };
        let partitions = m.partitions.max(1) as usize;
        let partition = per(l.partition);
        let ceiling = per(l.max).min(partitions as f64 * partition);
        let now = Instant::now();
        let cap = floor.max(per(l.warm)).max(2.0 * peak_base).min(ceiling);
        Self {
            table: TokenBucket::new(cap, cap),
            partitions: (0..partitions)
                .map(|_| TokenBucket::new(partition, partition))
                .collect(),
            floor: floor.max(per(l.warm)),
            ceiling,
            peak_base,
            growth_window: m.growth_window.to_std(),
            history: VecDeque::new(),
            second: now,
            this_second: 0.0,
        }
    }

    fn capacity(&self) -> f64 {
        self.floor.max(2.0 * self.peak_base).min(self.ceiling)
    }

    /// Rolls the per-second accounting forward and lets old peaks raise the capacity.
    fn roll(&mut self, now: Instant) {
        if now.duration_since(self.second) < Duration::from_secs(1) {
            return;
        }
        self.history
            .push_back((self.second, std::mem::take(&mut self.this_second)));
        self.second = now;
        while let Some(&(t, units)) = self.history.front() {
            if now.duration_since(t) < self.growth_window {
                break;
            }
            self.peak_base = self.peak_base.max(units);
            self.history.pop_front();
        }
        let cap = self.capacity();
        if cap != self.table.per_second() {
            self.table.reshape(now, cap, cap);
        }
    }

    fn consume(&mut self, now: Instant, partition: usize, units: f64) -> bool {
        self.roll(now);
        let p = partition % self.partitions.len();
        if !self.partitions[p].has(now, units) || !self.table.has(now, units) {
            return false;
        }
        self.partitions[p].try_take(now, units);
        self.table.try_take(now, units);
        self.this_second += units;
        true
    }
}

/// Read and write capacity of one table.
#[derive(Debug)]
pub struct Capacity {
    reads: Side,
    writes: Side,
}

impl Capacity {
    /// Capacity for one of `workers` processes.
    pub fn new(m: &Memory, workers: u32) -> Self {
        let w = f64::from(workers.max(1));
        Self {
            reads: Side::new(
                m,
                Limits {
                    previous_peak: m.previous_peak_reads,
                    new_table: m.new_table_reads,
                    warm: m.warm_reads,
                    partition: m.partition_reads,
                    max: m.table_max_reads,
                },
                w,
            ),
            writes: Side::new(
                m,
                Limits {
                    previous_peak: m.previous_peak_writes,
                    new_table: m.new_table_writes,
                    warm: m.warm_writes,
                    partition: m.partition_writes,
                    max: m.table_max_writes,
                },
                w,
            ),
        }
    }

    /// Takes `units` read units for the partition of `key`; false means throttled.
    pub fn read(&mut self, key: &impl Hash, units: f64) -> bool {
        self.reads.consume(Instant::now(), partition_of(key), units)
    }

    pub fn write(&mut self, key: &impl Hash, units: f64) -> bool {
        self.writes
            .consume(Instant::now(), partition_of(key), units)
    }
}

fn partition_of(key: &impl Hash) -> usize {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    h.finish() as usize
}

/// Write request units of an item of `bytes` (1 KB each).
pub fn write_units(bytes: usize) -> f64 {
    bytes.div_ceil(1024).max(1) as f64
}

/// Read request units of `bytes` read (4 KB each; eventually consistent reads cost half).
pub fn read_units(bytes: usize, consistent: bool) -> f64 {
    let units = bytes.div_ceil(4096).max(1) as f64;
    if consistent { units } else { units / 2.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory() -> Memory {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../profiles/local.toml");
        surge_profile::Profile::load(path).unwrap().system.memory
    }

    #[test]
    fn twice_the_previous_peak_divided_among_workers() {
        let mut m = memory();
        m.previous_peak_writes = "1/s".parse().unwrap();
        let mut one = Capacity::new(&m, 1);
        assert!(
            one.write(&"a", 1.0) && one.write(&"b", 1.0),
            "2 WRU/s, one second deep"
        );
        assert!(!one.write(&"c", 1.0));
        let mut half = Capacity::new(&m, 2);
        assert!(half.write(&"a", 1.0));
        assert!(!half.write(&"b", 1.0), "each of two workers has 1 WRU/s");
    }

    #[test]
    fn a_hot_partition_throttles_before_the_table() {
        let mut m = memory();
        m.partition_reads = "3/s".parse().unwrap();
        let mut c = Capacity::new(&m, 1);
        assert!(c.read(&"hot", 3.0));
        assert!(!c.read(&"hot", 1.0), "the partition is spent");
        let other = (0..100)
            .map(|i| format!("k{i}"))
            .find(|k| partition_of(k) % 50 != partition_of(&"hot") % 50);
        assert!(c.read(&other.unwrap(), 1.0), "other partitions still serve");
        assert_eq!(
            (
                write_units(1025),
                read_units(4096, true),
                read_units(1, false)
            ),
            (2.0, 1.0, 0.5)
        );
    }
}
