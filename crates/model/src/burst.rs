//! Lambda burst workers: take orchestrator overflow while its queue is deep.
//!
//! Concurrency is capped at `burst.concurrency_cap()` (the seed's `min(10 × spike_factor,
//! account limit)`) and by Lambda's own scaling, which starts at `scale_step` environments
//! and adds `scale_step` per `scale_interval` while invocations hit the limit. The first
//! `provisioned` environments are always warm; others stay warm for `keep_warm` after
//! their last invocation and are reused most-recent-first; any other start is cold.
//! An environment is held for its start plus `service` (the orchestration work it takes
//! over); the rest of the turn is asynchronous I/O as on the orchestrator.

use std::collections::VecDeque;

use surge_profile::system::BurstWorkers as BurstModel;

use crate::time::{Nanos, nanos};

/// How an invocation starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Warm,
    Cold,
}

pub struct Burst {
    cap: u32,
    limit: u32,
    step: u32,
    interval: Nanos,
    next_scale: Nanos,
    hit_limit: bool,
    provisioned: u32,
    keep_warm: Nanos,
    in_flight: u32,
    /// Idle, non-provisioned environments by the time they became idle (oldest first).
    idle: VecDeque<Nanos>,
    pub cold_starts: u64,
    pub throttles: u64,
    /// Highest concurrency since the last [`take_peak`](Self::take_peak).
    peak: u32,
}

impl Burst {
    pub fn new(model: &BurstModel) -> Self {
        let interval = nanos(model.scale_interval).max(1);
        Self {
            cap: model.concurrency_cap(),
            limit: model.scale_step.max(1),
            step: model.scale_step.max(1),
            interval,
            next_scale: interval,
            hit_limit: false,
            provisioned: model.provisioned,
            keep_warm: nanos(model.keep_warm),
            in_flight: 0,
            idle: VecDeque::new(),
            cold_starts: 0,
            throttles: 0,
            peak: 0,
        }
    }

    fn scale(&mut self, now: Nanos) {
        while now >= self.next_scale {
            if self.hit_limit {
                self.limit = self.limit.saturating_add(self.step);
                self.hit_limit = false;
            }
            self.next_scale += self.interval;
        }
    }

    /// Starts an invocation at `now`, or `None` if Lambda throttles it (429).
    pub fn try_invoke(&mut self, now: Nanos) -> Option<Start> {
        self.scale(now);
        if self.in_flight >= self.cap.min(self.limit) {
            self.hit_limit |= self.in_flight >= self.limit;
            self.throttles += 1;
            return None;
        }
        let provisioned = self.in_flight < self.provisioned;
        self.in_flight += 1;
        self.peak = self.peak.max(self.in_flight);
        if provisioned {
            return Some(Start::Warm);
        }
        while self
            .idle
            .front()
            .is_some_and(|&t| now.saturating_sub(t) > self.keep_warm)
        {
            self.idle.pop_front();
        }
        if self.idle.pop_back().is_some() {
            Some(Start::Warm)
        } else {
            self.cold_starts += 1;
            Some(Start::Cold)
        }
    }

    /// An invocation ended at `now`; its environment stays warm.
    pub fn release(&mut self, now: Nanos) {
        self.in_flight -= 1;
        if self.in_flight >= self.provisioned {
            self.idle.push_back(now);
        }
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    /// Peak concurrency since the last call.
    pub fn take_peak(&mut self) -> u32 {
        std::mem::replace(&mut self.peak, self.in_flight)
    }
}

/// How long Lambda's scaling takes at most, from the first invocation that hits the limit,
/// before `concurrency` environments may run at once: the limit starts at `scale_step` and grows by
/// `scale_step` each `scale_interval` in which invocations hit it, as in [`Burst`]. (The
/// cap, [`BurstModel::concurrency_cap`], is not applied here.)
pub fn scale_time(model: &BurstModel, concurrency: f64) -> Nanos {
    let step = f64::from(model.scale_step.max(1));
    let steps = ((concurrency - step) / step).ceil().max(0.0);
    // Saturates (`as`) for a concurrency no scaling reaches.
    (steps as u64).saturating_mul(nanos(model.scale_interval).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(provisioned: u32) -> BurstModel {
        BurstModel {
            enabled: true,
            queue_threshold: 10,
            spike_factor: 1,
            account_concurrency: 1000,
            scale_step: 1000,
            scale_interval: "10s".parse().unwrap(),
            cold_start: "300ms".parse().unwrap(),
            warm_start: "5ms".parse().unwrap(),
            provisioned,
            keep_warm: "10m".parse().unwrap(),
            memory_gb: 1.0,
            service: "25ms".parse().unwrap(),
        }
    }

    #[test]
    fn capped_cold_then_warm() {
        let mut b = Burst::new(&model(0));
        let starts: Vec<_> = (0..11).map(|_| b.try_invoke(0)).collect();
        assert_eq!(starts[0], Some(Start::Cold));
        assert_eq!(starts[10], None, "cap is 10 × spike_factor");
        b.release(1);
        assert_eq!(b.try_invoke(2), Some(Start::Warm));
        assert_eq!(b.cold_starts, 10);
    }

    #[test]
    fn scaling_adds_a_step_per_interval() {
        let mut m = model(0);
        m.scale_step = 100;
        let second = 1_000_000_000;
        assert_eq!(scale_time(&m, 0.0), 0);
        assert_eq!(scale_time(&m, 100.0), 0, "the first step is there at once");
        assert_eq!(scale_time(&m, 101.0), 10 * second);
        assert_eq!(scale_time(&m, 250.0), 20 * second);
    }

    #[test]
    fn provisioned_are_warm() {
        let mut b = Burst::new(&model(2));
        assert_eq!(b.try_invoke(0), Some(Start::Warm));
        assert_eq!(b.try_invoke(0), Some(Start::Warm));
        assert_eq!(b.try_invoke(0), Some(Start::Cold));
    }
}
