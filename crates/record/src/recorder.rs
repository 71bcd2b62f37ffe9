//! Per-interval HDR recording: one histogram per tag, closed into the hlog once per interval.
//!
//! Why it exists: the simulator and every load-generator shard record millions of latencies;
//! this is the hot path. [`IntervalRecorder::record`] takes a pre-registered [`TagId`] and does
//! an index plus a counter increment: no hashing, no allocation in the steady state. At each
//! interval boundary [`IntervalRecorder::close_interval`] writes every non-empty histogram to
//! the hlog, folds it into a running total per tag (for `summary.json`), and resets it.
//! Shards that report to a coordinator use [`IntervalRecorder::take_interval`] and
//! [`IntervalRecorder::merge_interval`] with a serde-serializable [`IntervalSnapshot`].
//!
//! # Histogram range
//!
//! Every histogram is created by [`new_histogram`]: 3 significant digits (0.1 % value
//! resolution), lowest discernible value 1 µs, with **auto-resize on**. It starts at its
//! smallest (16 KB, up to 2 ms) and grows to the largest value recorded: a histogram of
//! one-second latencies takes ~90 KB, one that saw an hour ~180 KB, and an absurd outlier
//! (a session stuck for days) is still recorded exactly rather than clamped or dropped.
//! Allocating every histogram at its one-hour size up front cost a simulation of a million
//! messages 5 % of its time (memset and page faults of ~20 histograms it mostly never
//! fills). The encoding states at least one hour as the highest trackable value
//! ([`HIGHEST_TRACKABLE_US`]), so every reader sizes its histograms as it always did.
//! Merging histograms of different ranges never fails for the same reason.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::hlog::HlogWriter;
use crate::summary::LatencyStats;
use crate::tag::Tag;
use crate::tally::Tally;

/// Lowest discernible value, µs.
pub const LOWEST_DISCERNIBLE_US: u64 = 1;
/// Highest trackable value an encoded histogram states at least, µs (1 hour).
pub const HIGHEST_TRACKABLE_US: u64 = 3_600_000_000;
/// Highest trackable value a histogram starts with, µs: the smallest HDR allows.
const INITIAL_HIGHEST_US: u64 = 2 * LOWEST_DISCERNIBLE_US;
/// Significant decimal digits of value precision.
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// A histogram with surge's standard configuration (see module docs).
pub fn new_histogram() -> Histogram<u64> {
    with_highest(INITIAL_HIGHEST_US)
}

/// A histogram as every reader of surge's logs builds it: one hour of range (the stated
/// one, see the module docs) or more. For figures that report the layout as HdrHistogram's
/// own tools would (the `Buckets` of a percentile distribution).
pub fn new_histogram_as_read() -> Histogram<u64> {
    with_highest(HIGHEST_TRACKABLE_US)
}

fn with_highest(highest_us: u64) -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(LOWEST_DISCERNIBLE_US, highest_us, SIGNIFICANT_DIGITS)
        .expect("constant histogram bounds are valid");
    h.auto(true);
    h
}

/// Records `count` occurrences of `micros` into a histogram of [`new_histogram`]: it grows
/// to fit, and only a value it cannot grow to (near `u64::MAX`) is clamped, never dropped.
/// (`saturating_record_n` alone would clamp to the histogram's current, small range.)
#[inline]
pub fn record_n(h: &mut Histogram<u64>, micros: u64, count: u64) {
    if h.record_n(micros, count).is_err() {
        h.saturating_record_n(micros, count);
    }
}

static NEXT_RECORDER: AtomicU32 = AtomicU32::new(1);

/// A registered tag of one particular [`IntervalRecorder`]; cheap to copy and to record with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TagId {
    recorder: u32,
    index: u32,
}

struct Slot {
    tag: Tag,
    current: Histogram<u64>,
    total: Histogram<u64>,
}

/// Records latencies (µs) per tag for the current interval; see the module docs.
pub struct IntervalRecorder {
    id: u32,
    slots: Vec<Slot>,
    by_tag: HashMap<Tag, TagId>,
    interval_start: Duration,
}

impl std::fmt::Debug for IntervalRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntervalRecorder")
            .field(
                "tags",
                &self.slots.iter().map(|s| &s.tag).collect::<Vec<_>>(),
            )
            .field("interval_start", &self.interval_start)
            .finish_non_exhaustive()
    }
}

impl IntervalRecorder {
    /// A recorder whose first interval starts at `start` (offset from the run's BaseTime).
    pub fn new(start: Duration) -> IntervalRecorder {
        IntervalRecorder {
            id: NEXT_RECORDER.fetch_add(1, Ordering::Relaxed),
            slots: Vec::new(),
            by_tag: HashMap::new(),
            interval_start: start,
        }
    }

    /// Register `tag` (idempotent) and return its id. Allocates the tag's histograms the first
    /// time; do this up front for every tag the hot path will use.
    pub fn register(&mut self, tag: &Tag) -> TagId {
        if let Some(&id) = self.by_tag.get(tag) {
            return id;
        }
        let index = u32::try_from(self.slots.len()).expect("fewer than 2^32 tags");
        let id = TagId {
            recorder: self.id,
            index,
        };
        self.slots.push(Slot {
            tag: tag.clone(),
            current: new_histogram(),
            total: new_histogram(),
        });
        self.by_tag.insert(tag.clone(), id);
        id
    }

    /// The id of an already registered tag.
    pub fn id(&self, tag: &Tag) -> Option<TagId> {
        self.by_tag.get(tag).copied()
    }

    fn index_of(&self, id: TagId) -> usize {
        assert_eq!(
            id.recorder, self.id,
            "TagId used with a different IntervalRecorder than the one that issued it"
        );
        id.index as usize
    }

    fn slot_mut(&mut self, id: TagId) -> &mut Slot {
        let index = self.index_of(id);
        &mut self.slots[index]
    }

    /// Record one value in microseconds. No allocation unless the value exceeds every value
    /// seen so far beyond the histogram's range (see module docs).
    ///
    /// # Panics
    /// If `id` was issued by a different recorder.
    #[inline]
    pub fn record(&mut self, id: TagId, micros: u64) {
        self.record_n(id, micros, 1);
    }

    /// Record `count` occurrences of one value in microseconds.
    pub fn record_n(&mut self, id: TagId, micros: u64, count: u64) {
        record_n(&mut self.slot_mut(id).current, micros, count);
    }

    /// Adds the counts of `tally` into the current interval of each of `ids` and forgets
    /// them: values counted ahead ([`Tally`]), recorded as if one by one.
    ///
    /// # Panics
    /// If an id was issued by a different recorder.
    pub fn drain_tally(&mut self, tally: &mut Tally, ids: &[TagId]) {
        for &id in ids {
            self.index_of(id);
        }
        tally.drain(|micros, count| {
            for id in ids {
                record_n(&mut self.slots[id.index as usize].current, micros, count);
            }
        });
    }

    /// Add the current interval of `from` into the current interval of `into`: for a tag
    /// that is the sum of others (e.g. all stores), recorded once per interval instead of
    /// once per value.
    ///
    /// # Panics
    /// If either id was issued by a different recorder, or `from == into`.
    pub fn add_current(&mut self, from: TagId, into: TagId) -> Result<()> {
        assert_ne!(from, into, "a tag cannot be added into itself");
        let (f, i) = (self.index_of(from), self.index_of(into));
        let (source, target) = if f < i {
            let (low, high) = self.slots.split_at_mut(i);
            (&low[f], &mut high[0])
        } else {
            let (low, high) = self.slots.split_at_mut(f);
            (&high[0], &mut low[i])
        };
        target
            .current
            .add(&source.current)
            .map_err(|err| Error::HistogramMerge {
                tag: target.tag.to_string(),
                message: format!("{err:?}"),
            })
    }

    /// Add `histogram` (µs, e.g. values recorded elsewhere for several tags at once) into
    /// the current interval of `id`.
    pub fn add_to_current(&mut self, id: TagId, histogram: &Histogram<u64>) -> Result<()> {
        let slot = self.slot_mut(id);
        slot.current
            .add(histogram)
            .map_err(|err| Error::HistogramMerge {
                tag: slot.tag.to_string(),
                message: format!("{err:?}"),
            })
    }

    /// Record by tag, registering it on first use. Hashes the tag on every call; prefer
    /// [`register`](Self::register) + [`record`](Self::record) on hot paths.
    pub fn record_tag(&mut self, tag: &Tag, micros: u64) {
        let id = self.register(tag);
        self.record(id, micros);
    }

    /// Start of the interval being recorded (offset from the run's BaseTime).
    pub fn interval_start(&self) -> Duration {
        self.interval_start
    }

    fn check_end(&self, end: Duration) -> Result<Duration> {
        end.checked_sub(self.interval_start)
            .ok_or(Error::IntervalOrder {
                start_s: self.interval_start.as_secs_f64(),
                end_s: end.as_secs_f64(),
            })
    }

    /// Close the current interval at `end`: write every non-empty tag's histogram to `log`
    /// (one flushed line each, in registration order), add it to the tag's total, reset it,
    /// and start the next interval at `end`. Returns the number of lines written.
    pub fn close_interval(&mut self, end: Duration, log: &mut HlogWriter) -> Result<usize> {
        let length = self.check_end(end)?;
        let start = self.interval_start;
        let mut written = 0;
        for slot in &mut self.slots {
            if slot.current.is_empty() {
                continue;
            }
            log.write_interval(Some(&slot.tag), start, length, &slot.current)?;
            fold_into_total(slot)?;
            written += 1;
        }
        self.interval_start = end;
        Ok(written)
    }

    /// Close the current interval at `end` without writing it: return the non-empty
    /// histograms (cloned), fold them into the totals and reset them. For shards that send
    /// their intervals to a coordinator.
    pub fn take_interval(&mut self, end: Duration) -> Result<IntervalSnapshot> {
        self.check_end(end)?;
        let mut entries = Vec::new();
        for slot in &mut self.slots {
            if slot.current.is_empty() {
                continue;
            }
            entries.push(SnapshotEntry {
                tag: slot.tag.clone(),
                histogram: slot.current.clone(),
            });
            fold_into_total(slot)?;
        }
        Ok(self.close_with(end, entries))
    }

    /// Close the current interval at `end`, adding it to the totals and handing nothing
    /// over: [`take_interval`](Self::take_interval) without the copies, for a caller that
    /// only wants the totals (a simulation that writes no log). A total still empty takes
    /// the interval's histogram as it is, and the interval the total's empty one: the same
    /// counts without a pass over them (the interval then starts small again, so this is
    /// for the last interval or a rare one, not for one a second).
    pub fn fold_interval(&mut self, end: Duration) -> Result<()> {
        self.check_end(end)?;
        for slot in &mut self.slots {
            if slot.current.is_empty() {
                continue;
            }
            if slot.total.is_empty() {
                std::mem::swap(&mut slot.total, &mut slot.current);
            } else {
                fold_into_total(slot)?;
            }
        }
        self.interval_start = end;
        Ok(())
    }

    /// Close the current interval at `end` and hand its non-empty histograms over, keeping
    /// no totals: for shards, whose coordinator keeps the totals. Cheaper than
    /// [`take_interval`](Self::take_interval): the histograms move out (no copy, no fold
    /// into a total, no reset) and fresh zeroed ones take their place.
    pub fn drain_interval(&mut self, end: Duration) -> Result<IntervalSnapshot> {
        self.check_end(end)?;
        let entries = self
            .slots
            .iter_mut()
            .filter(|slot| !slot.current.is_empty())
            .map(|slot| {
                let fresh = Histogram::new_from(&slot.current);
                SnapshotEntry {
                    tag: slot.tag.clone(),
                    histogram: std::mem::replace(&mut slot.current, fresh),
                }
            })
            .collect();
        Ok(self.close_with(end, entries))
    }

    /// Ends the interval at `end` with `entries` as its histograms.
    fn close_with(&mut self, end: Duration, entries: Vec<SnapshotEntry>) -> IntervalSnapshot {
        let start = std::mem::replace(&mut self.interval_start, end);
        IntervalSnapshot {
            start,
            end,
            entries,
        }
    }

    /// Add another recorder's interval into the current interval (coordinator side). Tags not
    /// seen before are registered; a histogram whose tag has nothing yet this interval is
    /// moved in rather than added. The snapshot's start/end are not checked against ours:
    /// aligning intervals is the coordinator's job.
    pub fn merge_interval(&mut self, snapshot: IntervalSnapshot) -> Result<()> {
        for e in snapshot.entries {
            let id = self.register(&e.tag);
            let slot = self.slot_mut(id);
            if slot.current.is_empty()
                && slot.current.distinct_values() == e.histogram.distinct_values()
            {
                slot.current = e.histogram;
                continue;
            }
            slot.current
                .add(&e.histogram)
                .map_err(|err| Error::HistogramMerge {
                    tag: e.tag.to_string(),
                    message: format!("{err:?}"),
                })?;
        }
        Ok(())
    }

    /// The histogram of the current (open) interval for `tag`.
    pub fn current(&self, tag: &Tag) -> Option<&Histogram<u64>> {
        self.id(tag)
            .map(|id| &self.slots[id.index as usize].current)
    }

    /// The running total for `tag` over all closed intervals.
    pub fn total(&self, tag: &Tag) -> Option<&Histogram<u64>> {
        self.id(tag).map(|id| &self.slots[id.index as usize].total)
    }

    /// All registered tags with their running totals, in registration order.
    pub fn totals(&self) -> impl Iterator<Item = (&Tag, &Histogram<u64>)> {
        self.slots.iter().map(|s| (&s.tag, &s.total))
    }

    /// `summary.json`'s `latency_ms`: stats of every latency tag whose total is non-empty
    /// (token counts are not latencies: see [`crate::Summary::set_histograms`]).
    pub fn latency_ms(&self) -> BTreeMap<Tag, LatencyStats> {
        self.totals()
            .filter(|(t, h)| !h.is_empty() && !t.metric().is_count())
            .map(|(t, h)| (t.clone(), LatencyStats::from_histogram(h)))
            .collect()
    }
}

fn fold_into_total(slot: &mut Slot) -> Result<()> {
    slot.total
        .add(&slot.current)
        .map_err(|err| Error::HistogramMerge {
            tag: slot.tag.to_string(),
            message: format!("{err:?}"),
        })?;
    slot.current.reset();
    Ok(())
}

/// One closed interval of one recorder: the non-empty histograms per tag.
///
/// Serializes (serde) with each histogram as base64 V2-compressed text, so it can travel as
/// JSON from a shard process to its coordinator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntervalSnapshot {
    /// Interval start, offset from the run's BaseTime.
    pub start: Duration,
    /// Interval end, offset from the run's BaseTime.
    pub end: Duration,
    pub entries: Vec<SnapshotEntry>,
}

/// One tag's histogram in an [`IntervalSnapshot`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotEntry {
    pub tag: Tag,
    #[serde(with = "crate::hlog::serde_histogram")]
    pub histogram: Histogram<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tag::Metric;

    #[test]
    fn records_closes_and_totals() {
        let dir = tempfile::tempdir().unwrap();
        let mut log =
            HlogWriter::create(&dir.path().join("x.hlog"), crate::UtcTime::now()).unwrap();
        let mut r = IntervalRecorder::new(Duration::ZERO);
        let e2e = r.register(&Metric::E2e.into());
        let ttft = r.register(&Metric::Ttft.into());
        assert_eq!(r.register(&Metric::E2e.into()), e2e);
        for v in 1..=1000 {
            r.record(e2e, v);
        }
        assert_eq!(
            r.close_interval(Duration::from_secs(1), &mut log).unwrap(),
            1
        );
        r.record(ttft, 5);
        r.record(e2e, 2000);
        assert_eq!(
            r.close_interval(Duration::from_secs(2), &mut log).unwrap(),
            2
        );
        assert_eq!(r.total(&Metric::E2e.into()).unwrap().len(), 1001);
        assert!(r.current(&Metric::E2e.into()).unwrap().is_empty());
        let e = r
            .close_interval(Duration::from_secs(1), &mut log)
            .unwrap_err();
        assert!(matches!(e, Error::IntervalOrder { .. }));
        let lat = r.latency_ms();
        assert_eq!(lat.len(), 2);
        assert_eq!(lat[&Tag::from(Metric::Ttft)].count, 1);
    }

    /// Folding intervals into the totals, with nothing handed over, leaves the totals that
    /// taking them does: the first interval moved in whole, the next added (one of them with
    /// a value past the initial range, so its layout grew), and the interval empty after.
    #[test]
    fn folding_keeps_the_totals_taking_keeps() {
        let (mut folded, mut taken) = (
            IntervalRecorder::new(Duration::ZERO),
            IntervalRecorder::new(Duration::ZERO),
        );
        let e2e: Tag = Metric::E2e.into();
        let intervals: [&[u64]; 3] = [&[3, 70, 70, 9_000], &[], &[5, 40 * HIGHEST_TRACKABLE_US]];
        for (i, values) in intervals.into_iter().enumerate() {
            for r in [&mut folded, &mut taken] {
                let id = r.register(&e2e);
                values.iter().for_each(|&v| r.record(id, v));
            }
            let end = Duration::from_secs(i as u64 + 1);
            folded.fold_interval(end).unwrap();
            taken.take_interval(end).unwrap();
            assert!(folded.current(&e2e).unwrap().is_empty());
            let (a, b) = (folded.total(&e2e).unwrap(), taken.total(&e2e).unwrap());
            assert_eq!(a, b, "after interval {i}");
            assert_eq!(a.len(), b.len());
            assert_eq!(a.max(), b.max());
        }
        assert_eq!(folded.total(&e2e).unwrap().len(), 6);
        let e = folded.fold_interval(Duration::from_secs(1)).unwrap_err();
        assert!(matches!(e, Error::IntervalOrder { .. }));
    }

    #[test]
    fn add_current_sums_tags_in_either_order() {
        let mut r = IntervalRecorder::new(Duration::ZERO);
        let all = r.register(&Metric::E2e.into());
        let a = r.register(&Tag::qualified(Metric::E2e, "a").unwrap());
        let b = r.register(&Tag::qualified(Metric::E2e, "b").unwrap());
        r.record(a, 10);
        r.record_n(b, 20, 3);
        r.add_current(a, all).unwrap();
        r.add_current(b, all).unwrap();
        r.add_current(all, a).unwrap();
        let mut extra = new_histogram();
        extra.record(30).unwrap();
        r.add_to_current(all, &extra).unwrap();
        let h = r.current(&Metric::E2e.into()).unwrap();
        assert_eq!((h.len(), h.min(), h.max()), (5, 10, 30));
        let a = r
            .current(&Tag::qualified(Metric::E2e, "a").unwrap())
            .unwrap();
        assert_eq!(a.len(), 5);
    }

    #[test]
    fn huge_values_are_kept_not_clamped() {
        let mut r = IntervalRecorder::new(Duration::ZERO);
        let id = r.register(&Metric::E2e.into());
        r.record(id, 10 * HIGHEST_TRACKABLE_US);
        let h = r.current(&Metric::E2e.into()).unwrap();
        assert!(h.equivalent(h.max(), 10 * HIGHEST_TRACKABLE_US));
    }

    #[test]
    #[should_panic(expected = "different IntervalRecorder")]
    fn foreign_tag_id_panics() {
        let mut a = IntervalRecorder::new(Duration::ZERO);
        let mut b = IntervalRecorder::new(Duration::ZERO);
        let id = a.register(&Metric::E2e.into());
        b.register(&Metric::E2e.into());
        b.record(id, 1);
    }

    #[test]
    fn drained_intervals_move_out_and_merge_like_taken_ones() {
        let tag = Tag::metric_only(Metric::E2e);
        let mut shard = IntervalRecorder::new(Duration::ZERO);
        let mut coord = IntervalRecorder::new(Duration::ZERO);
        for end in 1..=2u64 {
            for v in 1..=50u64 {
                shard.record_tag(&tag, v * 1_000 * end);
            }
            let snap = shard.drain_interval(Duration::from_secs(end)).unwrap();
            assert_eq!(snap.entries.len(), 1);
            assert_eq!(snap.entries[0].histogram.len(), 50);
            assert!(shard.current(&tag).unwrap().is_empty());
            assert!(
                shard.total(&tag).unwrap().is_empty(),
                "a drained shard keeps no totals"
            );
            // Moved in the first time (nothing there yet), added the second.
            coord.merge_interval(snap.clone()).unwrap();
            if end == 2 {
                coord.merge_interval(snap).unwrap();
            }
        }
        let current = coord.current(&tag).unwrap();
        assert_eq!(current.len(), 150);
        assert_eq!(
            current.max(),
            coord.current(&tag).unwrap().highest_equivalent(100_000)
        );
        assert!(
            shard.drain_interval(Duration::ZERO).is_err(),
            "intervals never go back"
        );
    }

    #[test]
    fn shard_snapshots_merge_into_coordinator() {
        let mut shards: Vec<IntervalRecorder> = (0..3)
            .map(|_| IntervalRecorder::new(Duration::ZERO))
            .collect();
        let tag = Tag::qualified(Metric::Ttft, "kindle").unwrap();
        for (i, s) in shards.iter_mut().enumerate() {
            for v in 0..100u64 {
                s.record_tag(&tag, 1000 * (i as u64 + 1) + v);
            }
        }
        let mut coord = IntervalRecorder::new(Duration::ZERO);
        for s in &mut shards {
            let snap = s.take_interval(Duration::from_secs(1)).unwrap();
            // Travels as JSON.
            let json = serde_json::to_string(&snap).unwrap();
            let back: IntervalSnapshot = serde_json::from_str(&json).unwrap();
            assert_eq!(snap, back, "original on the left (see compress's tests)");
            coord.merge_interval(back).unwrap();
            assert_eq!(s.total(&tag).unwrap().len(), 100);
        }
        let merged = coord.current(&tag).unwrap();
        assert_eq!(merged.len(), 300);
        assert_eq!(merged.min(), 1000);
        assert!(merged.equivalent(merged.max(), 3099));
    }
}
