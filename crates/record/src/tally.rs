//! Counts in front of a histogram: the simulator's cheapest way to record a value.
//!
//! Why it exists: the simulator records three to four values a message (e2e and TTFT per
//! store, model and stage, tokens, time per output token, queue waits), 100 M a two-hour
//! spike. `Histogram::record` is a call of some 50 instructions (index, resize check,
//! saturating add, min, max, total count); [`Tally::record`] is the index alone and an
//! add, inlined, some 15. [`Tally::drain_into`] hands the counts to a histogram of
//! [`new_histogram`](crate::new_histogram)'s layout once per interval, one `record_n` per
//! bucket touched, which leaves the histogram exactly as recording every value would have:
//! the same counts in the same buckets, the same total, and the same reported minimum and
//! maximum (HDR reports those as their bucket's equivalents, as `Histogram::add` does for
//! the values it merges).
//!
//! The layout is HdrHistogram's for a lowest discernible value of 1 and
//! [`SIGNIFICANT_DIGITS`]: 2,048 sub-buckets, each power of two above them a bucket of
//! 1,024. A tally covers every `u64` in at most 56,320 counters and grows to the largest
//! value it saw, as an auto-resizing histogram does.

use hdrhistogram::Histogram;

use crate::recorder::{LOWEST_DISCERNIBLE_US, SIGNIFICANT_DIGITS, record_n};

const _: () = assert!(
    LOWEST_DISCERNIBLE_US == 1,
    "the index below assumes unit magnitude 0"
);

/// Sub-buckets per bucket: the power of two at or above 2 × 10^digits (HDR's rule).
const SUB_BUCKET_MAGNITUDE: u32 = {
    let largest_single_unit = 2 * 10u64.pow(SIGNIFICANT_DIGITS as u32);
    u64::BITS - (largest_single_unit - 1).leading_zeros()
};
const SUB_BUCKET_MASK: u64 = (1 << SUB_BUCKET_MAGNITUDE) - 1;
const HALF_MAGNITUDE: u32 = SUB_BUCKET_MAGNITUDE - 1;
const HALF_COUNT: usize = 1 << HALF_MAGNITUDE;
/// Leading zeros of the largest value of bucket 0, from which each bucket counts up.
const LEADING_ZERO_BASE: u32 = u64::BITS - SUB_BUCKET_MAGNITUDE;

/// The counters index of `value`, as HdrHistogram computes it.
#[inline(always)]
fn index_of(value: u64) -> usize {
    let bucket = LEADING_ZERO_BASE - (value | SUB_BUCKET_MASK).leading_zeros();
    let sub_bucket = (value >> bucket) as usize;
    ((bucket as usize + 1) << HALF_MAGNITUDE) + sub_bucket - HALF_COUNT
}

/// The lowest value whose index is `index` (inverse of [`index_of`]).
fn value_at(index: usize) -> u64 {
    let bucket = (index >> HALF_MAGNITUDE).saturating_sub(1);
    let sub_bucket = if index >> HALF_MAGNITUDE == 0 {
        index
    } else {
        (index & (HALF_COUNT - 1)) + HALF_COUNT
    };
    (sub_bucket as u64) << bucket
}

/// Values counted per HDR bucket, not yet in their histogram.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    counts: Vec<u64>,
    /// Indices whose count went from zero to more since the last drain.
    touched: Vec<u32>,
}

impl Tally {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one `value`.
    #[inline(always)]
    pub fn record(&mut self, value: u64) {
        self.record_n(value, 1);
    }

    /// Counts `n` occurrences of `value`.
    #[inline(always)]
    pub fn record_n(&mut self, value: u64, n: u64) {
        if n == 0 {
            return;
        }
        let index = index_of(value);
        if index >= self.counts.len() {
            self.grow(index);
        }
        let count = &mut self.counts[index];
        if *count == 0 {
            self.touched.push(index as u32);
        }
        *count = count.saturating_add(n);
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self, index: usize) {
        // Whole buckets at a time, at least the smallest histogram's size.
        let len = ((index >> HALF_MAGNITUDE) + 1) << HALF_MAGNITUDE;
        self.counts.resize(len.max(2 * HALF_COUNT), 0);
    }

    /// Whether nothing was counted since the last drain.
    pub fn is_empty(&self) -> bool {
        self.touched.is_empty()
    }

    /// Hands each bucket's lowest value and count to `add`, then forgets them.
    pub fn drain(&mut self, mut add: impl FnMut(u64, u64)) {
        for index in self.touched.drain(..) {
            let index = index as usize;
            add(value_at(index), std::mem::take(&mut self.counts[index]));
        }
    }

    /// Adds the counts to `histogram` (of [`new_histogram`](crate::new_histogram)'s
    /// layout), then forgets them.
    pub fn drain_into(&mut self, histogram: &mut Histogram<u64>) {
        self.drain(|value, count| record_n(histogram, value, count));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::new_histogram;
    use hdrhistogram::serialization::{Serializer, V2Serializer};

    fn v2(h: &Histogram<u64>) -> Vec<u8> {
        let mut out = Vec::new();
        V2Serializer::new().serialize(h, &mut out).unwrap();
        out
    }

    fn same(a: &Histogram<u64>, b: &Histogram<u64>) {
        assert_eq!(a.len(), b.len());
        assert_eq!(
            (a.min(), a.max(), a.min_nz()),
            (b.min(), b.max(), b.min_nz())
        );
        assert_eq!(a.mean().to_bits(), b.mean().to_bits());
        assert_eq!(a.stdev().to_bits(), b.stdev().to_bits());
        for q in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(a.value_at_quantile(q), b.value_at_quantile(q));
        }
        assert_eq!(v2(a), v2(b));
    }

    /// The index is HdrHistogram's own: every value lands where `Histogram::record` puts it,
    /// and the value handed back at a drain lies in that same bucket.
    #[test]
    fn indices_are_hdrhistograms() {
        let h = new_histogram();
        let mut values: Vec<u64> = (0..5_000).collect();
        for shift in 0..64 {
            let p = 1u64 << shift;
            values.extend([p - 1, p, p + 1, p | (p >> 1), p.wrapping_mul(3) / 2]);
        }
        values.extend([u64::MAX, u64::MAX - 1, u64::MAX / 3]);
        for v in values {
            let i = index_of(v);
            assert_eq!(h.lowest_equivalent(v), value_at(i), "value {v}");
            assert_eq!(index_of(value_at(i)), i, "value {v}");
        }
    }

    /// Counting then draining leaves a histogram identical to recording each value, to the
    /// serialized byte, for values from one microsecond to hours and beyond.
    #[test]
    fn a_drained_tally_equals_recording_every_value() {
        let mut next = crate::xorshift(0x9e37_79b9_7f4a_7c15_u64);
        let mut direct = new_histogram();
        let (mut drained, mut twice) = (new_histogram(), new_histogram());
        let mut tally = Tally::new();
        for round in 0..3 {
            for _ in 0..20_000 {
                // From 1 µs to hours, many repeated, some zeros, a few of 83 days.
                let v = match next() % 100 {
                    0 => 0,
                    1 => 7_200_000_000_000,
                    _ => 1 + (next() >> (next() % 64).max(30)),
                };
                let n = 1 + next() % 3;
                record_n(&mut direct, v, n);
                tally.record_n(v, n);
            }
            assert!(!tally.is_empty());
            tally.drain(|v, n| {
                record_n(&mut drained, v, n);
                record_n(&mut twice, v, n);
            });
            assert!(tally.is_empty(), "round {round}");
            same(&direct, &drained);
            same(&direct, &twice);
        }
        let mut via_helper = new_histogram();
        tally.record_n(42, 3);
        tally.drain_into(&mut via_helper);
        let mut reference = new_histogram();
        record_n(&mut reference, 42, 3);
        same(&reference, &via_helper);
    }

    #[test]
    fn counts_saturate_instead_of_wrapping() {
        let mut tally = Tally::new();
        tally.record_n(5, u64::MAX);
        tally.record_n(5, 9);
        assert_eq!(tally.counts[index_of(5)], u64::MAX);
    }

    /// Zero occurrences count nothing: no bucket is touched, the histogram is not moved.
    #[test]
    fn zero_occurrences_touch_nothing() {
        let mut tally = Tally::new();
        for _ in 0..1_000 {
            tally.record_n(7, 0);
        }
        assert!(tally.is_empty());
        let mut h = new_histogram();
        tally.drain_into(&mut h);
        assert_eq!((h.len(), h.max()), (0, 0));
    }
}
