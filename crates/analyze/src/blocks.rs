//! Counts per bootstrap block, kept sparse, for `surge compare`'s noise estimate.
//!
//! Why it exists: the bootstrap (see [`crate::noise`]) resamples blocks of a few seconds and
//! needs each block's histogram. Dense counts take 16 K buckets or more each (a two-hour run
//! has 380 blocks per tag, tens of tags: gigabytes), so a finished block keeps only its
//! non-zero buckets, as `(index, count)` pairs in surge's layout
//! ([`crate::decode::Layout::SURGE`]) sorted by index.
//!
//! A log holds its intervals in time order, so one block's intervals of one file arrive one
//! after another: they are added into one dense *open* block, by index as [`crate::counts`]
//! does, and the open block becomes pairs when an interval of another block arrives. Pairs
//! of the same block from other files (shards, other reading threads) are merged in by one
//! linear pass over two sorted lists. Nothing is ever sorted.

use crate::counts::for_each_surge_index;
use crate::decode::Decoded;

/// The block being filled, dense; `low..high` is the span of indices touched.
#[derive(Debug, Clone, Default)]
struct Open {
    block: usize,
    counts: Vec<u64>,
    low: usize,
    high: usize,
}

/// One tag's counts per block.
#[derive(Debug, Clone, Default)]
pub struct BlockCounts {
    /// Per block: non-zero buckets, ascending and unique.
    blocks: Vec<Vec<(u32, u64)>>,
    open: Option<Open>,
}

/// Two sorted lists of pairs as one, counts of equal indices added.
fn merge_sorted(a: &[(u32, u64)], b: &[(u32, u64)]) -> Vec<(u32, u64)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (x, y) = (a[i], b[j]);
        if x.0 < y.0 {
            out.push(x);
            i += 1;
        } else if y.0 < x.0 {
            out.push(y);
            j += 1;
        } else {
            out.push((x.0, x.1.saturating_add(y.1)));
            i += 1;
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

impl BlockCounts {
    /// Add one decoded interval to block `block`.
    pub fn add(&mut self, block: usize, d: Decoded<'_>) {
        if self.open.as_ref().is_some_and(|o| o.block != block) {
            self.flush();
        }
        let open = self.open.get_or_insert_with(Open::default);
        if open.low >= open.high {
            *open = Open {
                block,
                counts: std::mem::take(&mut open.counts),
                low: usize::MAX,
                high: 0,
            };
        }
        for_each_surge_index(d, |i, n| {
            if i >= open.counts.len() {
                open.counts.resize((i + 1).next_power_of_two().max(2048), 0);
            }
            open.counts[i] = open.counts[i].saturating_add(n);
            open.low = open.low.min(i);
            open.high = open.high.max(i + 1);
        });
    }

    /// Turn the open block into pairs (its dense buffer is kept for the next one).
    fn flush(&mut self) {
        let Some(open) = &mut self.open else { return };
        if open.low >= open.high {
            return;
        }
        let mut pairs = Vec::new();
        for i in open.low..open.high {
            let n = std::mem::take(&mut open.counts[i]);
            if n > 0 {
                pairs.push((i as u32, n));
            }
        }
        let block = open.block;
        open.low = usize::MAX;
        open.high = 0;
        self.merge_block(block, pairs);
    }

    fn merge_block(&mut self, block: usize, pairs: Vec<(u32, u64)>) {
        if self.blocks.len() <= block {
            self.blocks.resize_with(block + 1, Vec::new);
        }
        let mine = &mut self.blocks[block];
        *mine = if mine.is_empty() {
            pairs
        } else {
            merge_sorted(mine, &pairs)
        };
    }

    /// Add another tag's blocks (another reading thread's) into these.
    pub fn merge(&mut self, mut other: BlockCounts) {
        other.flush();
        for (block, pairs) in other.blocks.into_iter().enumerate() {
            if !pairs.is_empty() {
                self.merge_block(block, pairs);
            }
        }
    }

    /// Close the open block once every interval is in.
    pub fn finish(&mut self) {
        self.flush();
        self.open = None;
    }

    /// The blocks in time order (block `i` starts `i` block lengths after the window start),
    /// each its non-zero buckets in ascending order; call [`BlockCounts::finish`] first.
    pub fn blocks(&self) -> &[Vec<(u32, u64)>] {
        debug_assert!(self.open.is_none(), "finish() first");
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
        // 3,000 intervals into two blocks, alternating: every interval closes the open block.
        for i in 0..3000u64 {
            let mut h = surge_record::new_histogram();
            h.record_n(1000 + (i % 7) * 1000, 2).unwrap();
            h.record(50_000 + i).unwrap();
            let target = if i % 3 == 0 { &mut a } else { &mut b };
            let block = (i % 2) as usize;
            target.add(block, d.decode(&encode_histogram(&h).unwrap()).unwrap());
        }
        a.merge(b);
        a.finish();
        for (block, pairs) in a.blocks().iter().enumerate() {
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
