//! The future event list, ordered by (time, sequence number).
//!
//! The sequence number makes events due at the same nanosecond run in the order they were
//! scheduled (FIFO), so a run never depends on how ties are broken.
//!
//! A simulation keeps tens to hundreds of thousands of events pending (every message in
//! flight, every throttled request backing off), almost all due within seconds. A single
//! binary heap of that size spends its time in cache misses, so this is a calendar queue:
//! a ring of buckets, each an unsorted `Vec`; the bucket being run is sorted once when the
//! clock reaches it. Bucket width is a power of two chosen from the expected event rate
//! ([`EventQueue::for_rate`]) so that a bucket holds about one event, yet wide enough for
//! a ring of at most 4,096 buckets to reach 4 s ahead: 34 ms for an M/M/10 queue at 9/s,
//! 1 ms (~12 events) at the spike's ~12,500 events/s. Most buckets of a quiet run then
//! need no sort at all, and the next occupied one is found in a bitmap; two or three
//! events per bucket measured slowest (M/M/10 at 268 ms buckets: 14 % slower). At spike
//! load a ring of 65,536 one-event buckets cost more than the sorts it saves: its 1.5 MB
//! of bucket headers missed cache on most pushes (a fifth of the spike's time; 4,096
//! buckets of 1 ms: −8 % CPU time on the spike). Events beyond the ring wait in an
//! overflow heap until the ring reaches them. Push is O(1) (or an insertion into the few
//! events of the current bucket), pop is O(1) after the per-bucket sort.
//! Memory follows the events pending: a bucket's buffer leaves the ring when the clock
//! reaches it and goes to a small pool of spare buffers the next buckets fill.
//!
//! An event pushed into an empty queue is kept aside until a second one comes: a queue that
//! holds one event at a time (an M/M/1 server: arrivals come from the arrival process, not
//! the queue, so only the service's end is pending) never touches the ring, and a push and
//! a pop cost a few instructions instead of ~170 (the bucket, its bitmap bit, the scan for
//! the next bucket, the buffer handed back and forth). Sending it straight to the bucket
//! being run instead, the clock's bucket moved up to it, would be as cheap but would sort
//! every earlier event pushed after it into that one bucket: an autoscaling datapoint a
//! minute ahead, pushed first, would do that to a whole minute of a spike.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use surge_model::time::Nanos;

/// log2 of the default bucket width in nanoseconds (2^20 ns ≈ 1 ms).
const DEFAULT_WIDTH_BITS: u32 = 20;
/// Events a bucket should hold at the expected rate (see the module docs).
const EVENTS_PER_BUCKET: f64 = 1.0;
/// How far ahead the ring should reach: SDK backoffs and most answers land within it.
const HORIZON_NS: f64 = 64e9;
/// How far ahead the ring reaches at least: at event rates where one event per bucket
/// would leave most pending events in the overflow heap, buckets widen instead (hold
/// benchmark, 1 M events pending ~0.5 s ahead: 59 ns per pop and push instead of 464).
const MIN_REACH_NS: f64 = 4e9;
/// Most buckets in a ring (at ~1 ms, 2^12 buckets ≈ 4 s: 96 KB of headers stay in
/// cache), and fewest.
const MAX_BUCKETS: usize = 1 << 12;
const MIN_BUCKETS: usize = 1 << 6;
/// Empty buffers kept for reuse, so buckets rarely allocate.
const SPARE_BUFFERS: usize = 256;

#[derive(Clone, Copy)]
struct Entry<E> {
    time: Nanos,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Entry<E> {
    /// Reversed, so the max-heap pops the earliest (time, seq) first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.time, other.seq).cmp(&(self.time, self.seq))
    }
}

/// Events of type `E` waiting for their time.
pub struct EventQueue<E> {
    /// Events of the bucket being run (and any pushed into it meanwhile), latest first.
    current: Vec<Entry<E>>,
    /// log2 of a bucket's width in nanoseconds.
    width_bits: u32,
    /// Index (time >> width_bits) of the bucket being run.
    cursor: u64,
    /// A power of two of buckets: just enough to reach [`HORIZON_NS`] ahead, since the
    /// ring is walked end to end and a smaller one stays in cache (M/M/10 at 34 ms
    /// buckets: 2,048 buckets, 48 KB, instead of 1.5 MB that missed on a third of pushes).
    ring: Vec<Vec<Entry<E>>>,
    /// One bit per ring bucket holding events, to skip empty ones.
    occupied: Vec<u64>,
    in_ring: usize,
    /// Empty buffers with capacity, handed to buckets as they fill.
    spare: Vec<Vec<Entry<E>>>,
    /// Events at or beyond the ring's horizon.
    far: BinaryHeap<Entry<E>>,
    /// The only pending event, kept aside: set only while `current`, the ring and `far` are
    /// empty, and placed among them when a second event comes.
    lone: Option<Entry<E>>,
    next_seq: u64,
}

impl<E: Copy> EventQueue<E> {
    /// A queue with ~1 ms buckets.
    pub fn new() -> Self {
        Self::with_width_bits(DEFAULT_WIDTH_BITS)
    }

    /// A queue whose buckets suit about `events_per_second` events per simulated second.
    pub fn for_rate(events_per_second: f64) -> Self {
        if events_per_second.is_nan() || events_per_second <= 0.0 {
            return Self::new();
        }
        let width_ns =
            (EVENTS_PER_BUCKET / events_per_second * 1e9).max(MIN_REACH_NS / MAX_BUCKETS as f64);
        Self::with_width_bits(width_ns.log2().round().clamp(10.0, 34.0) as u32)
    }

    fn with_width_bits(width_bits: u32) -> Self {
        let wanted = (HORIZON_NS / (1u64 << width_bits) as f64).ceil() as usize;
        let buckets = wanted.next_power_of_two().clamp(MIN_BUCKETS, MAX_BUCKETS);
        Self {
            width_bits,
            current: Vec::with_capacity(256),
            cursor: 0,
            ring: (0..buckets).map(|_| Vec::new()).collect(),
            occupied: vec![0; buckets / 64],
            spare: Vec::new(),
            in_ring: 0,
            far: BinaryHeap::new(),
            lone: None,
            next_seq: 0,
        }
    }

    /// Buckets in the ring.
    #[inline]
    fn buckets(&self) -> usize {
        self.ring.len()
    }

    #[inline]
    fn slot(&self, bucket: u64) -> usize {
        (bucket as usize) & (self.buckets() - 1)
    }

    /// Schedules `event` at `time` (not before the last event popped), after every event
    /// already scheduled for that time.
    #[inline]
    pub fn push(&mut self, time: Nanos, event: E) {
        let entry = Entry {
            time,
            seq: self.next_seq,
            event,
        };
        self.next_seq += 1;
        // `lone` is only ever set while `current` is empty: a busy queue tests one length.
        if self.current.is_empty() {
            if self.lone.is_none() && self.in_ring == 0 && self.far.is_empty() {
                self.lone = Some(entry);
                return;
            }
            if self.lone.is_some() {
                self.place_lone();
            }
        }
        self.place(entry);
    }

    /// A second event came: the one kept aside joins the others.
    #[cold]
    #[inline(never)]
    fn place_lone(&mut self) {
        if let Some(lone) = self.lone.take() {
            self.place(lone);
        }
    }

    /// Puts `entry` where its time belongs: the bucket being run, the ring, or beyond.
    #[inline(always)]
    fn place(&mut self, entry: Entry<E>) {
        let bucket = entry.time >> self.width_bits;
        if bucket <= self.cursor {
            self.insert_current(entry);
        } else if bucket < self.cursor + self.buckets() as u64 {
            self.insert_ring(bucket, entry);
        } else {
            self.far.push(entry);
        }
    }

    /// Inserts into the bucket being run, keeping it sorted latest first.
    #[inline]
    fn insert_current(&mut self, entry: Entry<E>) {
        // Every event in `current` sorts before `entry` ⇔ it is later in time order.
        let at = self.current.partition_point(|e| e < &entry);
        self.current.insert(at, entry);
    }

    #[inline]
    fn insert_ring(&mut self, bucket: u64, entry: Entry<E>) {
        let slot = self.slot(bucket);
        let buffer = &mut self.ring[slot];
        if buffer.capacity() == 0 {
            if let Some(spare) = self.spare.pop() {
                *buffer = spare;
            }
        }
        buffer.push(entry);
        self.occupied[slot / 64] |= 1 << (slot % 64);
        self.in_ring += 1;
    }

    /// Buckets from the cursor to the next occupied one (the ring must hold events).
    fn distance_to_next(&self) -> u64 {
        let start = self.slot(self.cursor + 1);
        let words = self.occupied.len();
        let (first_word, bit) = (start / 64, start % 64);
        let masked = self.occupied[first_word] & (!0u64 << bit);
        if masked != 0 {
            return 1 + (masked.trailing_zeros() as usize - bit) as u64;
        }
        for k in 1..=words {
            let w = (first_word + k) % words;
            let bits = self.occupied[w];
            if bits != 0 {
                let slot = w * 64 + bits.trailing_zeros() as usize;
                return 1 + ((slot + self.buckets() - start) % self.buckets()) as u64;
            }
        }
        unreachable!("in_ring > 0 but no bucket is marked")
    }

    /// Moves the cursor to the next bucket holding events and loads it; false when empty.
    fn advance(&mut self) -> bool {
        loop {
            if self.in_ring == 0 {
                // Nothing within the ring: jump straight to the earliest far event.
                let Some(first) = self.far.peek() else {
                    return false;
                };
                self.cursor = (first.time >> self.width_bits).max(self.cursor + 1);
            } else {
                // Far events all lie beyond the ring, so no bucket in between is skipped.
                self.cursor += self.distance_to_next();
            }
            // The ring's horizon moved: far events now inside it join their buckets.
            let horizon = self.cursor + self.buckets() as u64;
            while self
                .far
                .peek()
                .is_some_and(|e| e.time >> self.width_bits < horizon)
            {
                let e = self.far.pop().expect("peeked");
                let bucket = e.time >> self.width_bits;
                if bucket <= self.cursor {
                    self.insert_current(e);
                } else {
                    self.insert_ring(bucket, e);
                }
            }
            let slot = self.slot(self.cursor);
            if !self.ring[slot].is_empty() {
                // Take the buffer out of the ring: an idle bucket then holds no memory,
                // so the ring costs what is pending, not 4,096 × its busiest bucket.
                let bucket = std::mem::take(&mut self.ring[slot]);
                self.in_ring -= bucket.len();
                self.occupied[slot / 64] &= !(1 << (slot % 64));
                if self.current.is_empty() {
                    let done = std::mem::replace(&mut self.current, bucket);
                    if self.spare.len() < SPARE_BUFFERS {
                        self.spare.push(done);
                    }
                } else {
                    self.current.extend(bucket);
                }
                // Latest first; `Entry`'s order is already reversed.
                self.current.sort_unstable();
            }
            if !self.current.is_empty() {
                return true;
            }
        }
    }

    /// Time of the next event, if any.
    #[inline]
    pub fn peek_time(&mut self) -> Option<Nanos> {
        if self.current.is_empty() {
            if let Some(e) = &self.lone {
                return Some(e.time);
            }
            if !self.advance() {
                return None;
            }
        }
        self.current.last().map(|e| e.time)
    }

    /// Removes and returns the next event.
    #[inline]
    pub fn pop(&mut self) -> Option<(Nanos, E)> {
        if self.current.is_empty() {
            if let Some(e) = self.lone.take() {
                // The queue is empty now: the clock's bucket may move up to this event's,
                // as `advance` would have moved it, so later pushes land in the ring.
                self.cursor = self.cursor.max(e.time >> self.width_bits);
                return Some((e.time, e.event));
            }
            if !self.advance() {
                return None;
            }
        }
        self.current.pop().map(|e| (e.time, e.event))
    }

    pub fn len(&self) -> usize {
        usize::from(self.lone.is_some()) + self.current.len() + self.in_ring + self.far.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<E: Copy> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Stream;

    #[test]
    fn earliest_first_and_fifo_on_ties() {
        let mut q = EventQueue::new();
        q.push(5, 'a');
        q.push(1, 'b');
        q.push(5, 'c');
        q.push(1, 'd');
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, [(1, 'b'), (1, 'd'), (5, 'a'), (5, 'c')]);
    }

    /// Same order as a plain heap of (time, seq), over near, far and tied events pushed
    /// while popping, as a simulation does.
    #[test]
    fn agrees_with_a_binary_heap() {
        for rate in [0.0, 10.0, 10_000.0, 1e8] {
            agrees_with_a_binary_heap_at(EventQueue::for_rate(rate), 0.52);
        }
    }

    /// A queue that is mostly empty or holds one event (kept aside), now and then two or
    /// three (placed in the ring or beyond with the others).
    #[test]
    fn agrees_with_a_binary_heap_when_mostly_empty() {
        for rate in [2.7, 10_000.0] {
            agrees_with_a_binary_heap_at(EventQueue::for_rate(rate), 0.35);
        }
    }

    #[test]
    fn an_event_kept_aside_orders_with_later_pushes() {
        let mut q = EventQueue::new();
        q.push(7_000_000_000, 'a');
        assert_eq!(q.peek_time(), Some(7_000_000_000));
        q.push(7_000_000_000, 'b');
        q.push(3, 'c');
        q.push(90_000_000_000, 'd');
        assert_eq!(q.len(), 4);
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(
            order,
            [
                (3, 'c'),
                (7_000_000_000, 'a'),
                (7_000_000_000, 'b'),
                (90_000_000_000, 'd')
            ]
        );
        assert!(q.is_empty());
    }

    #[test]
    fn bucket_width_follows_the_event_rate() {
        let spike = EventQueue::<u8>::for_rate(12_500.0);
        assert_eq!(
            (spike.width_bits, spike.buckets()),
            (20, 1 << 12),
            "4 s ahead"
        );
        let mmc = EventQueue::<u8>::for_rate(27.0);
        assert_eq!((mmc.width_bits, mmc.buckets()), (25, 2_048), "a 64 s ring");
        let crowded = EventQueue::<u8>::for_rate(2e6);
        assert_eq!(
            (crowded.width_bits, crowded.buckets()),
            (20, 1 << 12),
            "4 s ahead"
        );
        assert_eq!(EventQueue::<u8>::for_rate(f64::NAN).width_bits, 20);
    }

    /// Random pushes (with chance `push_chance`) and pops against a heap of (time, seq).
    fn agrees_with_a_binary_heap_at(mut q: EventQueue<u64>, push_chance: f64) {
        let mut rng = Stream::new(9, "queue");
        let mut reference = BinaryHeap::new();
        let mut seq = 0u64;
        let mut now = 0;
        let mut push = |q: &mut EventQueue<u64>, r: &mut BinaryHeap<Entry<u64>>, t: Nanos| {
            q.push(t, seq);
            r.push(Entry {
                time: t,
                seq,
                event: seq,
            });
            seq += 1;
        };
        for _ in 0..200_000 {
            if rng.chance(push_chance) || reference.is_empty() {
                let delay = match rng.below(4) {
                    0 => 0,
                    1 => rng.below(1 << 20),
                    2 => rng.below(5_000_000_000),
                    _ => rng.below(300_000_000_000),
                };
                push(&mut q, &mut reference, now + delay);
            } else {
                let expected = reference.pop().map(|e| (e.time, e.event));
                assert_eq!(q.pop(), expected);
                now = expected.unwrap().0;
            }
        }
        assert_eq!(q.len(), reference.len());
        while let Some(e) = reference.pop() {
            assert_eq!(q.pop(), Some((e.time, e.event)));
        }
        assert!(q.pop().is_none() && q.is_empty());
    }
}
