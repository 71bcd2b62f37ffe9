//! The ECS orchestrator and its Lambda burst workers, by the model's rules, on the wall clock.
//!
//! Messages wait in one FIFO queue for a worker ([`surge_model::orchestrator`]). A worker
//! is held for the CPU draw over its share of the task's vCPUs. While the queue is deep, a
//! burst worker takes the message instead if Lambda admits it ([`surge_model::burst`]).
//! Target tracking ([`surge_model::autoscaling`]) runs once per datapoint on the measured
//! average CPU. The tasks it starts join after `task_start`, and the tasks it removes
//! leave when their message is done. So the mock scales as the simulator predicts.
//!
//! What is the mock's own: queued messages wait in a [`Pool`] for a worker to hand itself
//! over. With `--workers N`, each worker process runs one N-th of the service (task counts
//! rounded up) and scales it on its own CPU.

use std::sync::{Arc, Mutex, MutexGuard};

use surge_model::autoscaling::TargetTracking;
use surge_model::burst::{Burst, Start};
use surge_model::draw::Shared;
use surge_model::orchestrator::{Orchestrator, WorkerShare};
use surge_model::turn;
use surge_profile::SystemModel;
use tokio::time::sleep;

use crate::clock;
use crate::metrics::Metrics;
use crate::pool::{Entry, Pool};

/// One process's share of the orchestrator service.
pub struct Ecs {
    sys: SystemModel,
    share: WorkerShare,
    workers: Pool,
    scaling: Mutex<TargetTracking>,
    burst: Option<Mutex<Burst>>,
    metrics: Arc<Metrics>,
}

/// The share of `n` tasks one of `workers` processes runs (at least one when `n` is not 0).
fn share_of(n: u32, workers: u32) -> u32 {
    n.div_ceil(workers.max(1))
}

impl Ecs {
    pub fn new(sys: &SystemModel, workers: u32, metrics: Arc<Metrics>) -> Self {
        let mut model = sys.orchestrator.clone();
        model.initial_tasks = share_of(model.initial_tasks, workers);
        model.min_tasks = share_of(model.min_tasks, workers);
        model.max_tasks = share_of(model.max_tasks, workers).max(model.min_tasks);
        let ecs = Self {
            share: WorkerShare::new(&model),
            workers: Pool::new(Orchestrator::new(
                model.initial_tasks,
                model.workers_per_task,
            )),
            scaling: Mutex::new(TargetTracking::new(&model)),
            burst: sys
                .burst
                .enabled
                .then(|| Mutex::new(Burst::new(&sys.burst))),
            sys: sys.clone(),
            metrics,
        };
        ecs.report(&ecs.workers.lock(), clock::now());
        ecs
    }

    fn burst(&self) -> Option<MutexGuard<'_, Burst>> {
        self.burst.as_ref().map(|b| b.lock().expect("burst lock"))
    }

    /// Reports the service's state as of model time `at`.
    fn report(&self, service: &Orchestrator<crate::pool::Waiter>, at: u64) {
        self.metrics.orchestrator(
            clock::instant(at),
            service.running(),
            service.starting(),
            service.busy(),
            service.queue_len(),
        );
    }

    /// One message's orchestration: waits for a worker (or takes a burst worker) and holds
    /// it for the message's service time.
    pub async fn orchestrate(&self) {
        /// Where a message goes when it reaches the service.
        enum Way {
            Worker(Entry),
            Burst(Start),
        }
        let now = clock::now();
        let way = {
            let mut service = self.workers.lock();
            let way = if service.try_start(now) {
                Way::Worker(Entry::Served { at: now })
            } else if let Some(start) = turn::overflows(&self.sys.burst, service.queue_len())
                .then(|| self.burst().and_then(|mut b| b.try_invoke(now)))
                .flatten()
            {
                Way::Burst(start)
            } else {
                Way::Worker(Pool::queue_locked(&mut service, now))
            };
            self.report(&service, now);
            way
        };
        match way {
            Way::Burst(start) => {
                let busy = turn::burst_busy(&self.sys.burst, start, &mut Shared(rand::rng()));
                sleep(clock::span(busy)).await;
                if let Some(mut b) = self.burst() {
                    b.release(clock::now());
                }
            }
            Way::Worker(entry) => {
                let held = self.workers.hold(entry).await;
                let service = turn::service_time(&self.sys, self.share, &mut Shared(rand::rng()));
                // The model's schedule, not the wake-ups' (see crate::pool).
                let due = held.from() + service;
                tokio::time::sleep_until(clock::instant(due).into()).await;
                held.done_at(due);
                self.report(&self.workers.lock(), due);
            }
        }
    }

    /// Target tracking, one datapoint per period, until the process ends.
    pub async fn autoscale(self: Arc<Self>) {
        let period = {
            let scaling = self.scaling.lock().expect("scaling lock");
            if !scaling.enabled() {
                return;
            }
            clock::span(scaling.period())
        };
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            ticks.tick().await;
            let mut service = self.workers.lock();
            let started = self
                .scaling
                .lock()
                .expect("scaling lock")
                .evaluate(clock::now(), &mut service);
            for _ in 0..started {
                let start = turn::task_start(&self.sys, &mut Shared(rand::rng()));
                tokio::spawn(self.clone().task_ready_after(start));
            }
            self.report(&service, clock::now());
        }
    }

    /// A started task joins after `start` and takes queued messages.
    async fn task_ready_after(self: Arc<Self>, start: u64) {
        sleep(clock::span(start)).await;
        let mut service = self.workers.lock();
        let now = clock::now();
        Pool::task_ready(&mut service, now);
        self.report(&service, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn system(tasks: u32) -> SystemModel {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../profiles/local.toml");
        let mut sys = surge_profile::Profile::load(path).unwrap().system;
        let o = &mut sys.orchestrator;
        (
            o.initial_tasks,
            o.min_tasks,
            o.workers_per_task,
            o.vcpu_per_task,
        ) = (tasks, tasks, 1, 1.0);
        o.cpu_per_message = "50ms".parse().unwrap();
        sys.burst.enabled = false;
        sys
    }

    #[tokio::test]
    async fn messages_beyond_the_workers_wait_their_turn() {
        let ecs = Arc::new(Ecs::new(&system(2), 1, Arc::new(Metrics::new())));
        let started = std::time::Instant::now();
        let turns: Vec<_> = (0..4)
            .map(|_| {
                let ecs = ecs.clone();
                tokio::spawn(async move { ecs.orchestrate().await })
            })
            .collect();
        for t in turns {
            t.await.unwrap();
        }
        // Two workers, four 50 ms messages: two rounds.
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(100), "{took:?}");
        let s = ecs.workers.lock();
        assert_eq!((s.busy(), s.queue_len()), (0, 0));
    }

    #[test]
    fn worker_processes_split_the_tasks() {
        assert_eq!(
            (
                share_of(10, 4),
                share_of(1, 4),
                share_of(0, 4),
                share_of(7, 1)
            ),
            (3, 1, 0, 7)
        );
    }
}
