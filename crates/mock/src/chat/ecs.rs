//! The ECS orchestrator and its Lambda burst workers, by the model's rules, on the wall clock.
//!
//! Messages wait in one FIFO queue for a worker ([`surge_model::orchestrator`]). A worker
//! is held for the CPU draw over its share of the task's vCPUs. While the queue is deep, a
//! burst worker takes the message instead if Lambda admits it ([`surge_model::burst`]).
//! Target tracking ([`surge_model::autoscaling`]) runs once per datapoint on the measured
//! average CPU. The tasks it starts join after `task_start`, and the tasks it removes
//! leave when their message is done. So the mock scales as the simulator predicts.
//!
//! What is the mock's own: a queued message waits on a oneshot channel that the worker
//! handing itself over completes. With `--workers N`, each worker process runs one N-th of
//! the service (task counts rounded up) and scales it on its own CPU.

use std::sync::{Arc, Mutex, MutexGuard};

use surge_model::autoscaling::TargetTracking;
use surge_model::burst::{Burst, Start};
use surge_model::draw::Shared;
use surge_model::orchestrator::{Orchestrator, WorkerShare};
use surge_model::turn;
use surge_profile::SystemModel;
use surge_profile::system::{BurstWorkers, Orchestrator as OrchestratorModel};
use tokio::sync::oneshot;
use tokio::time::sleep;

use crate::clock;
use crate::metrics::Metrics;

/// A queued message: completed when a worker takes it.
type Waiter = oneshot::Sender<()>;

struct State {
    service: Orchestrator<Waiter>,
    scaling: TargetTracking,
    burst: Option<Burst>,
}

/// One process's share of the orchestrator service.
pub struct Ecs {
    model: OrchestratorModel,
    burst_model: BurstWorkers,
    sys: SystemModel,
    share: WorkerShare,
    state: Mutex<State>,
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
        let burst = sys.burst.enabled.then(|| Burst::new(&sys.burst));
        let ecs = Self {
            share: WorkerShare::new(&model),
            state: Mutex::new(State {
                service: Orchestrator::new(model.initial_tasks, model.workers_per_task),
                scaling: TargetTracking::new(&model),
                burst,
            }),
            burst_model: sys.burst.clone(),
            sys: sys.clone(),
            model,
            metrics,
        };
        ecs.report(&ecs.lock());
        ecs
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("orchestrator lock")
    }

    fn report(&self, s: &State) {
        let service = &s.service;
        self.metrics.orchestrator(
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
            Worker,
            Queued(oneshot::Receiver<()>),
            Burst(Start),
        }
        let now = clock::now();
        let way = {
            let mut s = self.lock();
            let queue = s.service.queue_len();
            if s.service.try_start(now) {
                Way::Worker
            } else if let Some(start) = s
                .burst
                .as_mut()
                .filter(|_| turn::overflows(&self.burst_model, queue))
                .and_then(|b| b.try_invoke(now))
            {
                Way::Burst(start)
            } else {
                let (tx, rx) = oneshot::channel();
                s.service.enqueue(now, tx);
                self.report(&s);
                Way::Queued(rx)
            }
        };
        match way {
            Way::Worker => {}
            Way::Burst(start) => {
                let busy = turn::burst_busy(&self.burst_model, start, &mut Shared(rand::rng()));
                sleep(clock::span(busy)).await;
                if let Some(b) = &mut self.lock().burst {
                    b.release(clock::now());
                }
                return;
            }
            Way::Queued(rx) => {
                let mut queued = Queued(self, Some(rx));
                if let Some(rx) = queued.1.as_mut() {
                    // The sender lives in the queue until a worker hands itself over.
                    let _ = rx.await;
                }
                queued.1 = None;
            }
        }
        let held = Held(self);
        let service = turn::service_time(&self.sys, self.share, &mut Shared(rand::rng()));
        sleep(clock::span(service)).await;
        drop(held);
    }

    /// A worker finished its message: it takes the next waiter that still waits, or goes
    /// idle (or retires, when its task was removed).
    fn finish(&self) {
        let mut s = self.lock();
        let now = clock::now();
        while let Some(next) = s.service.finish(now) {
            if next.send(()).is_ok() {
                break;
            }
        }
        self.report(&s);
    }

    /// Target tracking, one datapoint per period, until the process ends.
    pub async fn autoscale(self: Arc<Self>) {
        let period = {
            let s = self.lock();
            if !(self.model.enabled && s.scaling.enabled()) {
                return;
            }
            clock::span(s.scaling.period())
        };
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            ticks.tick().await;
            let mut s = self.lock();
            let State {
                service, scaling, ..
            } = &mut *s;
            for _ in 0..scaling.evaluate(clock::now(), service) {
                let start = turn::task_start(&self.sys, &mut Shared(rand::rng()));
                tokio::spawn(self.clone().task_ready_after(start));
            }
            self.report(&s);
        }
    }

    /// A started task joins after `start` and takes queued messages.
    async fn task_ready_after(self: Arc<Self>, start: u64) {
        sleep(clock::span(start)).await;
        let mut s = self.lock();
        let now = clock::now();
        let gone: u32 = s
            .service
            .task_ready(now)
            .map(|waiter| u32::from(waiter.send(()).is_err()))
            .sum();
        // A worker handed to a waiter that stopped waiting takes the next one instead.
        for _ in 0..gone {
            while let Some(next) = s.service.finish(now) {
                if next.send(()).is_ok() {
                    break;
                }
            }
        }
        self.report(&s);
    }
}

/// A message in the queue. Cancelled after a worker was handed to it but before it
/// noticed, it hands the worker on.
struct Queued<'a>(&'a Ecs, Option<oneshot::Receiver<()>>);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if let Some(mut rx) = self.1.take() {
            rx.close();
            if rx.try_recv().is_ok() {
                self.0.finish();
            }
        }
    }
}

/// A worker held by a message; dropping it (also when the turn is cancelled) frees it.
struct Held<'a>(&'a Ecs);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.finish();
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
        let s = ecs.lock();
        assert_eq!((s.service.busy(), s.service.queue_len()), (0, 0));
    }

    #[tokio::test]
    async fn a_cancelled_waiter_does_not_keep_a_worker() {
        let ecs = Arc::new(Ecs::new(&system(1), 1, Arc::new(Metrics::new())));
        let first = tokio::spawn({
            let ecs = ecs.clone();
            async move { ecs.orchestrate().await }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        let waiting = tokio::spawn({
            let ecs = ecs.clone();
            async move { ecs.orchestrate().await }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        waiting.abort();
        first.await.unwrap();
        // The worker skipped the cancelled waiter and is free again.
        tokio::time::timeout(Duration::from_secs(5), ecs.orchestrate())
            .await
            .expect("a free worker");
        assert_eq!(ecs.lock().service.busy(), 0);
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
