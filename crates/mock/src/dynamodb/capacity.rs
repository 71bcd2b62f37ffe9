//! A table's on-demand capacity, by the model's rules ([`surge_model::dynamodb`]), so the
//! mock throttles where the simulator predicts throttles.
//!
//! What is the mock's own: keys are hashed to partitions (each partition has its own limit,
//! so a hot key throttles before the table does), time is the wall clock, and with
//! `--workers N` each worker process holds one N-th of the table (SO_REUSEPORT spreads
//! connections evenly).

use std::hash::{DefaultHasher, Hash, Hasher};

use surge_model::dynamodb::{Keys, Table};
use surge_profile::system::Memory;

use crate::clock;

pub use surge_model::dynamodb::{read_units, write_units};

/// Read and write capacity of one table.
#[derive(Debug)]
pub struct Capacity(Table);

impl Capacity {
    /// Capacity for one of `workers` processes.
    pub fn new(m: &Memory, workers: u32) -> Self {
        Self(Table::share(
            m,
            f64::from(workers.max(1)),
            Keys::Partitioned,
        ))
    }

    /// Takes `units` read units for the partition of `key`; false means throttled.
    pub fn read(&mut self, key: &impl Hash, units: f64) -> bool {
        let now = clock::now();
        self.0.reads.roll(now);
        self.0
            .reads
            .try_consume(now, units, Some(partition_of(key)))
    }

    /// Takes `units` write units for the partition of `key`; false means throttled.
    pub fn write(&mut self, key: &impl Hash, units: f64) -> bool {
        let now = clock::now();
        self.0.writes.roll(now);
        self.0
            .writes
            .try_consume(now, units, Some(partition_of(key)))
    }
}

fn partition_of(key: &impl Hash) -> usize {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    h.finish() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory() -> Memory {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../profiles/local.toml");
        surge_profile::Profile::load(path).unwrap().system.memory
    }

    #[test]
    fn a_hot_key_throttles_while_other_keys_are_served() {
        let mut m = memory();
        m.partition_reads = "3/s".parse().unwrap();
        let mut c = Capacity::new(&m, 1);
        assert!(c.read(&"hot", 3.0));
        assert!(!c.read(&"hot", 1.0), "the partition is spent");
        let other = (0..100)
            .map(|i| format!("k{i}"))
            .find(|k| partition_of(k) % 50 != partition_of(&"hot") % 50);
        assert!(c.read(&other.unwrap(), 1.0), "other partitions still serve");
    }

    #[test]
    fn each_worker_holds_its_share() {
        let mut m = memory();
        m.previous_peak_writes = "1/s".parse().unwrap();
        let mut half = Capacity::new(&m, 2);
        assert!(half.write(&"a", 1.0));
        assert!(!half.write(&"b", 1.0), "each of two workers has 1 WRU/s");
    }
}
