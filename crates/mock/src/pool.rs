//! Servers in front of one FIFO queue, on the wall clock: the model's
//! [`Orchestrator`] with a waker for every queued caller.
//!
//! The orchestrator's workers and a Bedrock model's serving slots are both such a pool. A
//! caller that finds a free server holds it at once. Otherwise it queues, and a server that
//! frees itself hands itself to the first caller still waiting. A caller cancelled while
//! waiting or while holding a server never keeps one.

use std::sync::{Mutex, MutexGuard};

use surge_model::orchestrator::Orchestrator;
use tokio::sync::oneshot;

use crate::clock;

/// A queued caller: completed when a server takes it.
pub type Waiter = oneshot::Sender<()>;

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
    /// A server was free: the caller holds it.
    Served,
    /// The caller waits for a server ([`Pool::hold`]).
    Queued(oneshot::Receiver<()>),
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
            Entry::Served
        } else {
            Self::queue_locked(servers, now)
        }
    }

    /// Joins the queue of servers already locked (the caller found none free).
    pub fn queue_locked(servers: &mut Orchestrator<Waiter>, now: u64) -> Entry {
        let (tx, rx) = oneshot::channel();
        servers.enqueue(now, tx);
        Entry::Queued(rx)
    }

    /// Takes a free server or joins the queue.
    pub fn enter(&self) -> Entry {
        Self::enter_locked(&mut self.lock(), clock::now())
    }

    /// Holds a server: at once, or once one hands itself over.
    pub async fn hold(&self, entry: Entry) -> Held<'_> {
        if let Entry::Queued(rx) = entry {
            let mut queued = Queued(self, Some(rx));
            if let Some(rx) = queued.1.as_mut() {
                // The sender lives in the queue until a server hands itself over.
                let _ = rx.await;
            }
            queued.1 = None;
        }
        Held(self)
    }

    /// Takes a server, waiting in the queue when none is free.
    pub async fn acquire(&self) -> Held<'_> {
        let entry = self.enter();
        self.hold(entry).await
    }

    /// A server is done: it takes the next caller that still waits, or goes idle.
    fn release(&self) {
        let mut servers = self.lock();
        Self::hand_over(&mut servers, clock::now());
    }

    /// The server that `finish` frees goes to the first waiter still waiting.
    pub fn hand_over(servers: &mut Orchestrator<Waiter>, now: u64) {
        while let Some(next) = servers.finish(now) {
            if next.send(()).is_ok() {
                break;
            }
        }
    }

    /// Hands the servers of a task that just became ready to the waiters it takes; a
    /// server handed to a waiter that stopped waiting takes the next one instead.
    pub fn task_ready(servers: &mut Orchestrator<Waiter>, now: u64) {
        let gone: u32 = servers
            .task_ready(now)
            .map(|waiter| u32::from(waiter.send(()).is_err()))
            .sum();
        for _ in 0..gone {
            Self::hand_over(servers, now);
        }
    }
}

/// A caller in the queue. Cancelled after a server was handed to it but before it noticed,
/// it hands the server on.
struct Queued<'a>(&'a Pool, Option<oneshot::Receiver<()>>);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if let Some(mut rx) = self.1.take() {
            rx.close();
            if rx.try_recv().is_ok() {
                self.0.release();
            }
        }
    }
}

/// A server held by a caller; dropping it (also when the caller is cancelled) frees it.
pub struct Held<'a>(&'a Pool);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.release();
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
