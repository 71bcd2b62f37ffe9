//! Servers in front of one FIFO queue, on the wall clock: the model's
//! [`Orchestrator`] with a waker for every queued caller.
//!
//! The orchestrator's workers and a Bedrock model's serving slots are both such a pool. A
//! caller that finds a free server holds it at once. Otherwise it queues, and a server that
//! frees itself hands itself to the first caller still waiting. A caller cancelled while
//! waiting or while holding a server never keeps one.
//!
//! Why the hand-over carries a time: on a busy host a server's holder wakes a little after
//! its service was due to end, and the next caller wakes a little after that. Counted from
//! the wake-ups, every queued service would start late, the servers would be busier than
//! the model says, and near saturation the queue would grow by that host jitter, not by the
//! model. So a server hands itself over at the model time it became free
//! ([`Held::done_at`]), and the next holder counts its service from then ([`Held::from`]):
//! the queue keeps the model's schedule and the jitter stays a delay of one wake-up.

use std::sync::{Mutex, MutexGuard};

use surge_model::orchestrator::Orchestrator;
use surge_model::time::Nanos;
use tokio::sync::oneshot;

use crate::clock;

/// A queued caller: completed, with the model time the server became free, when a server
/// takes it.
pub type Waiter = oneshot::Sender<Nanos>;

pub struct Pool {
    servers: Mutex<Orchestrator<Waiter>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.lock();
        f.debug_struct("Pool")
            .field("serving", &s.serving())
            .field("busy", &s.busy())
            .field("queued", &s.queue_len())
            .finish()
    }
}

/// How a caller got in.
pub enum Entry {
    /// A server was free at `at`: the caller holds it.
    Served { at: Nanos },
    /// The caller waits, since `since`, for a server ([`Pool::hold`]).
    Queued {
        since: Nanos,
        handed: oneshot::Receiver<Nanos>,
    },
}

impl Pool {
    pub fn new(servers: Orchestrator<Waiter>) -> Self {
        Self {
            servers: Mutex::new(servers),
        }
    }

    /// The servers and their queue, for decisions that need more than [`Pool::enter`].
    pub fn lock(&self) -> MutexGuard<'_, Orchestrator<Waiter>> {
        self.servers.lock().expect("pool lock")
    }

    /// Takes a free server or joins the queue, on servers already locked.
    pub fn enter_locked(servers: &mut Orchestrator<Waiter>, now: u64) -> Entry {
        if servers.try_start(now) {
            Entry::Served { at: now }
        } else {
            Self::queue_locked(servers, now)
        }
    }

    /// Joins the queue of servers already locked (the caller found none free).
    pub fn queue_locked(servers: &mut Orchestrator<Waiter>, now: u64) -> Entry {
        let (tx, handed) = oneshot::channel();
        servers.enqueue(now, tx);
        Entry::Queued { since: now, handed }
    }

    /// Takes a free server or joins the queue.
    pub fn enter(&self) -> Entry {
        Self::enter_locked(&mut self.lock(), clock::now())
    }

    /// Holds a server: at once, or once one hands itself over.
    pub async fn hold(&self, entry: Entry) -> Held<'_> {
        let from = match entry {
            Entry::Served { at } => at,
            Entry::Queued { since, handed } => {
                let mut queued = Queued(self, Some(handed));
                let freed = match queued.1.as_mut() {
                    // The sender lives in the queue until a server hands itself over.
                    Some(rx) => rx.await.unwrap_or_else(|_| clock::now()),
                    None => clock::now(),
                };
                queued.1 = None;
                // A server that became free before this caller queued (its holder woke
                // late) serves it from its arrival.
                freed.max(since)
            }
        };
        Held {
            pool: self,
            from,
            done: false,
        }
    }

    /// Takes a server, waiting in the queue when none is free.
    pub async fn acquire(&self) -> Held<'_> {
        let entry = self.enter();
        self.hold(entry).await
    }

    /// A server became free at model time `freed`: it takes the next caller that still
    /// waits, or goes idle.
    fn release(&self, freed: Nanos) {
        let mut servers = self.lock();
        Self::hand_over(&mut servers, clock::now(), freed);
    }

    /// The server that `finish` frees (at `freed`, noticed `now`) goes to the first waiter
    /// still waiting.
    pub fn hand_over(servers: &mut Orchestrator<Waiter>, now: Nanos, freed: Nanos) {
        while let Some(next) = servers.finish(now) {
            if next.send(freed.min(now)).is_ok() {
                break;
            }
        }
    }

    /// Hands the servers of a task that just became ready to the waiters it takes; a
    /// server handed to a waiter that stopped waiting takes the next one instead.
    pub fn task_ready(servers: &mut Orchestrator<Waiter>, now: u64) {
        let gone: u32 = servers
            .task_ready(now)
            .map(|waiter| u32::from(waiter.send(now).is_err()))
            .sum();
        for _ in 0..gone {
            Self::hand_over(servers, now, now);
        }
    }
}

/// A caller in the queue. Cancelled after a server was handed to it but before it noticed,
/// it hands the server on.
struct Queued<'a>(&'a Pool, Option<oneshot::Receiver<Nanos>>);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if let Some(mut rx) = self.1.take() {
            rx.close();
            if let Ok(freed) = rx.try_recv() {
                self.0.release(freed);
            }
        }
    }
}

/// A server held by a caller; dropping it (also when the caller is cancelled) frees it
/// now, [`Held::done_at`] at the model time its service was due to end.
pub struct Held<'a> {
    pool: &'a Pool,
    from: Nanos,
    done: bool,
}

impl Held<'_> {
    /// The model time this holder's service began: when it found the server free, or when
    /// the server handed itself over.
    pub fn from(&self) -> Nanos {
        self.from
    }

    /// Frees the server as of model time `due` (the end of its service, even if this task
    /// woke later), so the next caller's service counts from there.
    pub fn done_at(mut self, due: Nanos) {
        self.done = true;
        self.pool.release(due);
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.pool.release(clock::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[tokio::test]
    async fn callers_beyond_the_servers_wait_their_turn() {
        let pool = Arc::new(Pool::new(Orchestrator::new(1, 2)));
        let started = Instant::now();
        let callers: Vec<_> = (0..4)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    let _held = pool.acquire().await;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                })
            })
            .collect();
        for c in callers {
            c.await.unwrap();
        }
        // Two servers, four 50 ms callers: two rounds.
        assert!(started.elapsed() >= Duration::from_millis(100));
        let s = pool.lock();
        assert_eq!((s.busy(), s.queue_len()), (0, 0));
    }

    #[tokio::test]
    async fn a_server_hands_itself_over_at_the_model_time_it_became_free() {
        let pool = Pool::new(Orchestrator::new(1, 1));
        let t = clock::now();
        let entry = Pool::enter_locked(&mut pool.lock(), t);
        let first = pool.hold(entry).await;
        assert_eq!(first.from(), t);
        let queued = Pool::enter_locked(&mut pool.lock(), t + 1_000);
        tokio::time::sleep(Duration::from_millis(2)).await;
        // The first holder woke late: its service was due to end at t + 5 µs.
        first.done_at(t + 5_000);
        let second = pool.hold(queued).await;
        assert_eq!(second.from(), t + 5_000, "counted from the model's end");
        // Freed before the next caller arrived: its service starts at its arrival.
        let third = Pool::enter_locked(&mut pool.lock(), t + 9_000);
        second.done_at(t + 6_000);
        assert_eq!(pool.hold(third).await.from(), t + 9_000);
    }

    #[tokio::test]
    async fn a_cancelled_waiter_does_not_keep_a_server() {
        let pool = Arc::new(Pool::new(Orchestrator::new(1, 1)));
        let first = tokio::spawn({
            let pool = pool.clone();
            async move {
                let _held = pool.acquire().await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move {
                let _held = pool.acquire().await;
            }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        waiting.abort();
        first.await.unwrap();
        // The server skipped the cancelled waiter and is free again.
        let held = tokio::time::timeout(Duration::from_secs(5), pool.acquire())
            .await
            .expect("a free server");
        drop(held);
        assert_eq!(pool.lock().busy(), 0);
    }
}
