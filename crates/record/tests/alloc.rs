//! The recorder's hot path does not allocate in the steady state.
//!
//! A counting global allocator is installed for this test binary only. It counts only the
//! allocations of the thread that asked for counting, so the test harness's own threads
//! (output capture, timers) cannot disturb the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use surge_record::{HlogWriter, IntervalRecorder, Metric, Tag, UtcTime};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn record_does_not_allocate_and_close_interval_allocates_little() {
    COUNTING.with(|c| c.set(true));
    let dir = tempfile::tempdir().unwrap();
    let mut log =
        HlogWriter::create(&dir.path().join("a.hlog"), UtcTime::from_unix_millis(0)).unwrap();
    let mut rec = IntervalRecorder::new(Duration::ZERO);
    let ids: Vec<_> = [
        Tag::from(Metric::E2e),
        Tag::from(Metric::Ttft),
        Tag::qualified(Metric::Ttft, "manga_jp").unwrap(),
    ]
    .iter()
    .map(|t| rec.register(t))
    .collect();
    let jp = Tag::qualified(Metric::Ttft, "manga_jp").unwrap();

    // Warm-up interval: buffers in the writer grow to size, and histograms (which start
    // small) to the range of the values below.
    for v in 0..100_000u64 {
        rec.record(ids[(v % 3) as usize], 1 + v * 397 % 3_000_000_000);
    }
    rec.close_interval(Duration::from_secs(1), &mut log)
        .unwrap();

    let before = ALLOCS.load(Ordering::Relaxed);
    for v in 0..100_000u64 {
        rec.record(ids[(v % 3) as usize], 1 + v * 397 % 3_000_000_000);
        rec.record_tag(&jp, v); // lookup of an already registered tag
    }
    let after = ALLOCS.load(Ordering::Relaxed);
    assert_eq!(after - before, 0, "record() allocated in the steady state");

    // Closing an interval reuses the writer's buffers; the deflate encoder may allocate
    // its state, but the count must not scale with the number of records.
    let before = ALLOCS.load(Ordering::Relaxed);
    rec.close_interval(Duration::from_secs(2), &mut log)
        .unwrap();
    let per_close = ALLOCS.load(Ordering::Relaxed) - before;
    assert!(
        per_close < 100,
        "close_interval allocated {per_close} times"
    );
}
