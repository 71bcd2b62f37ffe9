//! Counts per bootstrap block, kept sparse, for `surge compare`'s noise estimate.
//!
//! Why it exists: the bootstrap (see [`crate::noise`]) resamples blocks of a few seconds and
//! needs each block's histogram. Dense counts take 16 K buckets or more each (a two-hour run
//! has 380 blocks per tag, tens of tags: gigabytes), so a block keeps only its non-zero
//! buckets as `(index, count)` pairs in surge's layout ([`crate::decode::Layout::SURGE`]).
//! Intervals are appended as they are read, and a block's list is sorted and its duplicates
//! added together whenever it has doubled since the last time, so it never holds more than
//! about twice its distinct buckets.

use crate::counts::for_each_surge_index;
use crate::decode::Decoded;

/// Appended pairs below this are not worth sorting yet.
const FIRST_COMPACTION: usize = 1024;

/// The non-zero buckets of one block.
#[derive(Debug, Clone, Default)]
pub struct Sparse {
    pairs: Vec<(u32, u64)>,
    /// Length after the last compaction (the prefix that is sorted and unique).
    compacted: usize,
}

impl Sparse {
    fn add(&mut self, d: Decoded<'_>) {
        // SURGE indices of u64 values stay below 60 K: they fit u32.
        for_each_surge_index(d, |i, n| self.pairs.push((i as u32, n)));
        self.maybe_compact();
    }

    fn extend(&mut self, other: Sparse) {
        self.pairs.extend(other.pairs);
        self.maybe_compact();
    }

    fn maybe_compact(&mut self) {
        if self.pairs.len() > 2 * self.compacted.max(FIRST_COMPACTION / 2) {
            self.compact();
        }
    }

    /// Sort by bucket and add the counts of equal buckets.
    pub fn compact(&mut self) {
        if self.compacted == self.pairs.len() {
            return;
        }
        self.pairs.sort_unstable_by_key(|p| p.0);
        let mut out = 0;
        for i in 0..self.pairs.len() {
            let (index, n) = self.pairs[i];
            if out > 0 && self.pairs[out - 1].0 == index {
                self.pairs[out - 1].1 = self.pairs[out - 1].1.saturating_add(n);
            } else {
                self.pairs[out] = (index, n);
                out += 1;
            }
        }
        self.pairs.truncate(out);
        self.compacted = out;
    }

    /// The non-zero buckets in ascending order; call [`Sparse::compact`] first.
    pub fn pairs(&self) -> &[(u32, u64)] {
        debug_assert_eq!(self.compacted, self.pairs.len(), "compact() first");
        &self.pairs
    }
}

/// One tag's counts per block.
#[derive(Debug, Clone, Default)]
pub struct BlockCounts {
    blocks: Vec<Sparse>,
}

impl BlockCounts {
    /// Add one decoded interval to block `block`.
    pub fn add(&mut self, block: usize, d: Decoded<'_>) {
        if self.blocks.len() <= block {
            self.blocks.resize_with(block + 1, Sparse::default);
        }
        self.blocks[block].add(d);
    }

    /// Add another tag's blocks (another reading thread's) into these.
    pub fn merge(&mut self, other: BlockCounts) {
        if self.blocks.len() < other.blocks.len() {
            self.blocks.resize_with(other.blocks.len(), Sparse::default);
        }
        for (mine, theirs) in self.blocks.iter_mut().zip(other.blocks) {
            mine.extend(theirs);
        }
    }

    /// Sort every block (once all intervals are in).
    pub fn compact(&mut self) {
        self.blocks.iter_mut().for_each(Sparse::compact);
    }

    /// The blocks in time order; block `i` starts `i` block lengths after the window start.
    pub fn blocks(&self) -> &[Sparse] {
        &self.blocks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::PayloadDecoder;
    use surge_record::hlog::encode_histogram;

    #[test]
    fn blocks_hold_the_sum_of_their_intervals() {
        let mut d = PayloadDecoder::new();
        let mut a = BlockCounts::default();
        let mut b = BlockCounts::default();
        // 3,000 intervals into two blocks: compaction runs many times on the way.
        for i in 0..3000u64 {
            let mut h = surge_record::new_histogram();
            h.record_n(1000 + (i % 7) * 1000, 2).unwrap();
            h.record(50_000 + i).unwrap();
            let target = if i % 3 == 0 { &mut a } else { &mut b };
            target.add(
                (i % 2) as usize,
                d.decode(&encode_histogram(&h).unwrap()).unwrap(),
            );
        }
        a.merge(b);
        a.compact();
        for (block, sparse) in a.blocks().iter().enumerate() {
            let pairs = sparse.pairs();
            assert!(pairs.windows(2).all(|w| w[0].0 < w[1].0));
            let total: u64 = pairs.iter().map(|p| p.1).sum();
            assert_eq!(total, 1500 * 3, "block {block}");
            let mut expected = surge_record::new_histogram();
            for i in (block as u64..3000).step_by(2) {
                expected.record_n(1000 + (i % 7) * 1000, 2).unwrap();
                expected.record(50_000 + i).unwrap();
            }
            let distinct = expected.iter_recorded().count();
            assert_eq!(pairs.len(), distinct, "block {block}");
        }
    }
}
