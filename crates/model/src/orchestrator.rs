//! The ECS orchestrator service: `tasks × workers_per_task` servers in front of one FIFO
//! queue, with CPU accounting for autoscaling.
//!
//! Each worker owns an equal slice of its task's vCPUs, so a message's service time is its
//! `cpu_per_message` draw divided by that slice (with one worker per vCPU, the draw
//! itself). Tasks started by a scale-out join after their start time; tasks removed by a
//! scale-in stop taking messages at once and leave when their current message is done.
//! Busy and available worker-time are integrated exactly, so the CPU of a datapoint is the
//! true average over its period, and the queue length is integrated for Little's law.

use std::collections::VecDeque;

use surge_profile::system::Orchestrator as OrchestratorModel;

use crate::time::{Nanos, as_f64, truncate};

/// The vCPUs one worker owns: its task's vCPUs shared equally among the task's workers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorkerShare(f64);

impl WorkerShare {
    pub fn new(model: &OrchestratorModel) -> Self {
        Self(model.vcpu_per_task / f64::from(model.workers_per_task))
    }

    /// How long a worker is busy with a message that needs `cpu` of one vCPU: the draw
    /// itself with one vCPU per worker (the common case, and no float division, which
    /// the simulator's serving path would otherwise wait on), else the draw over the
    /// worker's share.
    #[inline]
    pub fn service_time(&self, cpu: Nanos) -> Nanos {
        if self.0 == 1.0 {
            cpu
        } else {
            truncate(as_f64(cpu) / self.0)
        }
    }
}

/// The service's workers and its queue of waiting messages (`T`: whatever the driver
/// needs to resume a message — a slot index in the simulator, a waker in the mock).
pub struct Orchestrator<T = u32> {
    workers_per_task: u32,
    /// Tasks serving (or draining nothing): the count autoscaling reasons about.
    running: u32,
    starting: u32,
    /// Workers alive, including those of removed tasks still finishing a message.
    workers: u32,
    busy: u32,
    queue: VecDeque<T>,
    last: Nanos,
    busy_time: f64,
    worker_time: f64,
    queue_time: f64,
    /// Deepest queue since the caller last reset it.
    pub queue_peak: usize,
}

/// Running totals of worker-time and queue-time (nanoseconds × count); the difference of
/// two snapshots describes the window between them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Integrals {
    pub at: Nanos,
    pub busy: f64,
    pub workers: f64,
    pub queue: f64,
}

impl Integrals {
    /// Average busy share of the available workers since `earlier` (0 when none were).
    pub fn cpu_since(&self, earlier: &Integrals) -> f64 {
        let workers = self.workers - earlier.workers;
        if workers > 0.0 {
            (self.busy - earlier.busy) / workers
        } else {
            0.0
        }
    }

    /// Time-average queue length since `earlier`.
    pub fn queue_since(&self, earlier: &Integrals) -> f64 {
        let span = self.at.saturating_sub(earlier.at);
        if span > 0 {
            (self.queue - earlier.queue) / span as f64
        } else {
            0.0
        }
    }
}

impl<T> Orchestrator<T> {
    pub fn new(tasks: u32, workers_per_task: u32) -> Self {
        Self {
            workers_per_task,
            running: tasks,
            starting: 0,
            workers: tasks * workers_per_task,
            busy: 0,
            queue: VecDeque::new(),
            last: 0,
            busy_time: 0.0,
            worker_time: 0.0,
            queue_time: 0.0,
            queue_peak: 0,
        }
    }

    #[inline]
    fn advance(&mut self, now: Nanos) {
        let dt = as_f64(now.saturating_sub(self.last));
        self.busy_time += dt * f64::from(self.busy);
        self.worker_time += dt * f64::from(self.workers);
        self.queue_time += dt * as_f64(self.queue.len() as u64);
        self.last = now.max(self.last);
    }

    /// Claims a worker for a message if one is free.
    #[inline]
    pub fn try_start(&mut self, now: Nanos) -> bool {
        if self.busy < self.serving_workers() {
            self.advance(now);
            self.busy += 1;
            true
        } else {
            false
        }
    }

    /// Puts a message at the back of the queue.
    pub fn enqueue(&mut self, now: Nanos, slot: T) {
        self.advance(now);
        self.queue.push_back(slot);
        self.queue_peak = self.queue_peak.max(self.queue.len());
    }

    /// A worker finished its message: it either retires (its task was removed) or takes
    /// the next queued message, which is returned.
    pub fn finish(&mut self, now: Nanos) -> Option<T> {
        self.advance(now);
        if self.workers > self.running * self.workers_per_task {
            self.workers -= 1;
            self.busy -= 1;
            return None;
        }
        match self.queue.pop_front() {
            Some(slot) => Some(slot),
            None => {
                self.busy -= 1;
                None
            }
        }
    }

    /// Capacity a scale-out has asked for.
    pub fn start_tasks(&mut self, n: u32) {
        self.starting += n;
    }

    /// A started task is ready; returns the queued messages its workers take.
    pub fn task_ready(&mut self, now: Nanos) -> impl Iterator<Item = T> + '_ {
        self.advance(now);
        self.starting -= 1;
        self.running += 1;
        self.workers += self.workers_per_task;
        let free = self.serving_workers().saturating_sub(self.busy);
        let take = (free as usize).min(self.queue.len());
        self.busy += take as u32;
        self.queue.drain(..take)
    }

    /// Removes `n` running tasks: idle workers go at once, busy ones after their message.
    pub fn remove_tasks(&mut self, now: Nanos, n: u32) {
        self.advance(now);
        self.running -= n.min(self.running);
        let idle = self.workers - self.busy;
        let excess = self
            .workers
            .saturating_sub(self.running * self.workers_per_task);
        self.workers -= excess.min(idle);
    }

    fn serving_workers(&self) -> u32 {
        self.workers.min(self.running * self.workers_per_task)
    }

    /// The running totals at `now`.
    pub fn integrals(&mut self, now: Nanos) -> Integrals {
        self.advance(now);
        Integrals {
            at: self.last,
            busy: self.busy_time,
            workers: self.worker_time,
            queue: self.queue_time,
        }
    }

    pub fn running(&self) -> u32 {
        self.running
    }

    pub fn starting(&self) -> u32 {
        self.starting
    }

    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    pub fn busy(&self) -> u32 {
        self.busy
    }

    /// Workers taking messages now (those of removed tasks still finishing are not).
    pub fn serving(&self) -> u32 {
        self.serving_workers()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_time_is_the_draw_over_the_worker_share() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../profiles/local.toml");
        let mut m = surge_profile::Profile::load(path)
            .unwrap()
            .system
            .orchestrator;
        (m.vcpu_per_task, m.workers_per_task) = (1.0, 1);
        assert_eq!(WorkerShare::new(&m).service_time(25_000_000), 25_000_000);
        (m.vcpu_per_task, m.workers_per_task) = (1.0, 4);
        assert_eq!(WorkerShare::new(&m).service_time(25_000_000), 100_000_000);
        (m.vcpu_per_task, m.workers_per_task) = (2.0, 1);
        assert_eq!(WorkerShare::new(&m).service_time(25_000_000), 12_500_000);
    }

    #[test]
    fn fifo_queue_and_cpu_average() {
        let mut o = Orchestrator::new(1, 1);
        assert!(o.try_start(0));
        assert!(!o.try_start(0));
        o.enqueue(0, 7);
        o.enqueue(0, 8);
        assert_eq!(o.finish(10), Some(7));
        assert_eq!(o.finish(20), Some(8));
        assert_eq!(o.finish(30), None);
        let w = o.integrals(40);
        let zero = Integrals::default();
        assert!((w.cpu_since(&zero) - 0.75).abs() < 1e-12);
        assert!((w.queue_since(&zero) - 30.0 / 40.0).abs() < 1e-12);
    }

    #[test]
    fn removed_tasks_drain_and_started_tasks_take_the_queue() {
        let mut o = Orchestrator::new(2, 1);
        assert!(o.try_start(0) && o.try_start(0));
        o.remove_tasks(0, 1);
        assert_eq!(o.finish(5), None, "the removed task's worker retires");
        assert!(!o.try_start(5));
        o.enqueue(5, 1);
        o.start_tasks(1);
        let taken: Vec<u32> = o.task_ready(6).collect();
        assert_eq!(taken, [1]);
        assert_eq!((o.running(), o.starting(), o.busy()), (2, 0, 2));
    }
}
