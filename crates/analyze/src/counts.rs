//! Histogram counts in surge's bucket layout, added to by index.
//!
//! Why it exists: merging half a million interval histograms is mostly "add this count to
//! that bucket". When a payload was encoded in surge's own layout (1 µs, 3 digits — every
//! log surge writes), its bucket index *is* the index here, so adding is one array add;
//! other layouts go through the bucket's value, exactly as `Histogram::add` does for
//! histograms of different layouts. A real `Histogram` is built only at the end, once per
//! figure, and has the same percentiles, min, max and mean as adding the intervals would.

use hdrhistogram::Histogram;
use surge_record::new_histogram_as_read;

use crate::decode::{Decoded, Layout};

/// Counts per bucket of [`Layout::SURGE`]; grows to the highest bucket seen.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    counts: Vec<u64>,
}

impl Counts {
    #[inline]
    fn add_index(&mut self, i: usize, n: u64) {
        if i >= self.counts.len() {
            self.counts.resize((i + 1).next_power_of_two().max(2048), 0);
        }
        self.counts[i] = self.counts[i].saturating_add(n);
    }

    /// Add one decoded interval.
    pub fn add(&mut self, d: Decoded<'_>) {
        for_each_surge_index(d, |i, n| self.add_index(i, n));
    }

    /// Add another set of counts.
    pub fn merge(&mut self, other: &Counts) {
        if other.counts.len() > self.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, &b) in self.counts.iter_mut().zip(&other.counts) {
            *a = a.saturating_add(b);
        }
    }

    /// The counts as a histogram of surge's standard configuration, at the range a reader
    /// of the logs gets.
    pub fn histogram(&self) -> Histogram<u64> {
        let mut h = new_histogram_as_read();
        for (i, &n) in self.counts.iter().enumerate().filter(|(_, n)| **n > 0) {
            if let Some(v) = Layout::SURGE.value(i) {
                surge_record::record_n(&mut h, v, n);
            }
        }
        h
    }
}

/// Call `f(index, count)` for each bucket of `d`, the index in [`Layout::SURGE`]: as it is
/// for surge's own layout, through the bucket's value for any other.
#[inline]
pub fn for_each_surge_index(d: Decoded<'_>, mut f: impl FnMut(usize, u64)) {
    if d.layout == Layout::SURGE {
        for &(i, n) in d.pairs {
            f(i, n);
        }
    } else {
        for &(i, n) in d.pairs {
            // The decoder checked that every index has a value.
            if let Some(v) = d.layout.value(i) {
                f(Layout::SURGE.index(v), n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::PayloadDecoder;
    use surge_record::hlog::encode_histogram;
    use surge_record::new_histogram;

    #[test]
    fn adding_by_index_equals_histogram_add() {
        let mut d = PayloadDecoder::new();
        let mut expected = new_histogram();
        let mut counts = Counts::default();
        let mut other = Counts::default();
        let mut s = 3u64;
        for round in 0..20u64 {
            let mut h = new_histogram();
            for _ in 0..500 {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
                h.record(1 + (s >> 30) % (1_000 * (round + 1) * 1_000))
                    .unwrap();
            }
            expected.add(&h).unwrap();
            let target = if round % 2 == 0 {
                &mut counts
            } else {
                &mut other
            };
            target.add(d.decode(&encode_histogram(&h).unwrap()).unwrap());
        }
        // A foreign layout (2 digits, 1 ms lowest) goes through values.
        let mut foreign = Histogram::<u64>::new_with_bounds(1000, 100_000_000, 2).unwrap();
        foreign.record_n(2_345_678, 5).unwrap();
        expected.add(&foreign).unwrap();
        counts.add(d.decode(&encode_histogram(&foreign).unwrap()).unwrap());
        counts.merge(&other);
        let got = counts.histogram();
        assert_eq!(got.len(), expected.len());
        assert_eq!(got.max(), expected.max());
        assert_eq!(got.min(), expected.min());
        assert_eq!(got.mean(), expected.mean());
        for q in [0.0, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(
                got.value_at_quantile(q),
                expected.value_at_quantile(q),
                "q={q}"
            );
        }
    }
}
