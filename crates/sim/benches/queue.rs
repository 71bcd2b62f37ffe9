//! Speed of the future event list: `cargo bench -p surge-sim --bench queue`.
//!
//! The classic "hold" benchmark of priority queues for simulation: keep N events pending;
//! repeatedly pop the earliest and push one a random delay later. Delays mix the model's
//! shapes: most within a few hundred milliseconds (pipeline steps), some seconds (LLM
//! answers), a few tens of seconds (SDK backoffs). The calendar queue is measured against
//! `std::collections::BinaryHeap` of (time, sequence) in the same run, at the event
//! rate each N implies (N pending events with ~0.5 s mean delay: 2N events/s).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hint::black_box;
use std::time::Instant;

use surge_sim::queue::EventQueue;
use surge_sim::rng::Stream;

const OPS: u64 = 5_000_000;

fn delay(rng: &mut Stream) -> u64 {
    match rng.below(100) {
        0..=89 => rng.below(300_000_000),
        90..=98 => 1_000_000_000 + rng.below(2_000_000_000),
        _ => 10_000_000_000 + rng.below(40_000_000_000),
    }
}

fn calendar(pending: u64) -> f64 {
    let mut rng = Stream::new(1, "bench");
    let mut q = EventQueue::for_rate(2.0 * pending as f64);
    for i in 0..pending {
        q.push(delay(&mut rng), i as u32);
    }
    let started = Instant::now();
    for _ in 0..OPS {
        let (t, e) = q.pop().expect("never empty");
        q.push(t + delay(&mut rng), black_box(e));
    }
    started.elapsed().as_nanos() as f64 / OPS as f64
}

fn binary_heap(pending: u64) -> f64 {
    let mut rng = Stream::new(1, "bench");
    let mut q = BinaryHeap::new();
    let mut seq = 0u64;
    for i in 0..pending {
        q.push(Reverse((delay(&mut rng), seq, i as u32)));
        seq += 1;
    }
    let started = Instant::now();
    for _ in 0..OPS {
        let Reverse((t, _, e)) = q.pop().expect("never empty");
        q.push(Reverse((t + delay(&mut rng), seq, black_box(e))));
        seq += 1;
    }
    started.elapsed().as_nanos() as f64 / OPS as f64
}

fn main() {
    println!("hold benchmark, {OPS} pop+push pairs per row");
    println!(
        "{:>10} {:>16} {:>16} {:>8}",
        "pending", "calendar ns/op", "BinaryHeap ns/op", "ratio"
    );
    for pending in [1_000, 10_000, 100_000, 1_000_000] {
        let c = calendar(pending);
        let h = binary_heap(pending);
        println!("{pending:>10} {c:>16.1} {h:>16.1} {:>7.2}×", h / c);
    }
}
