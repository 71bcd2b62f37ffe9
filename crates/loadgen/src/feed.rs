//! Messages handed to sessions from one process for all of them: gamma bursts, traces.
//!
//! Poisson and constant sessions draw their own gaps ([`crate::plan::Plan::next_due`]). Bursty
//! arrivals cannot: the burstiness is a property of all sessions' messages together
//! ([`surge_profile::burst`]), so the feed draws the one aggregate process and hands each
//! arrival to a session chosen uniformly among those open at that time (session `k` is
//! open while sessions(t) > k). Every shard draws the *same* global sequence from the run's
//! seed — the same times, the same choices — and keeps the arrivals of its own sessions,
//! so the shards together send exactly the global process whatever their number.
//!
//! A trace is the same shape without the drawing: each message goes to its session's queue.
//!
//! The process is drawn lazily, as sessions ask: never more than 10 s (`LOOKAHEAD`) beyond
//! the asking session's time, so a two-hour spike is not held in memory. A session whose next
//! message is not drawn yet is told when to ask again ([`What::Recheck`]).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use surge_profile::Profile;
use surge_profile::burst::GammaArrivals;
use surge_profile::traffic::{Arrival, Schedule};

use crate::plan::Plan;

/// How far ahead of the asking session the process is drawn.
const LOOKAHEAD: Duration = Duration::from_secs(10);

/// What a session's next time is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    /// A message, with its trace row (index into the replay's messages) if it has one.
    Message(Option<u32>),
    /// Nothing yet: ask the feed again then.
    Recheck,
}

/// The next thing a session does, and when (from the start of the run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub at: Duration,
    pub what: What,
}

impl Due {
    pub fn message(at: Duration, row: Option<u32>) -> Self {
        Self {
            at,
            what: What::Message(row),
        }
    }
}

/// The feed of one shard.
pub struct Feed {
    state: Mutex<State>,
}

struct State {
    source: Source,
    /// Every arrival up to here has been drawn and queued.
    frontier: Duration,
    exhausted: bool,
    /// Per session of this shard (global index / shard count).
    queues: Vec<VecDeque<Due>>,
    shard: u64,
    shards: u64,
}

enum Source {
    Gamma {
        process: GammaArrivals,
        schedule: Schedule,
        rng: SmallRng,
    },
    /// Queued whole when the feed is made.
    Trace,
}

impl Feed {
    /// The feed of shard `shard` of `shards`, or `None` when sessions draw their own gaps.
    pub fn new(profile: &Profile, plan: &Plan, shard: u64, shards: u64) -> Option<Self> {
        if plan.draws_gaps() {
            return None;
        }
        let mine = plan.sessions().saturating_sub(shard).div_ceil(shards) as usize;
        let mut state = State {
            source: Source::Trace,
            frontier: Duration::ZERO,
            exhausted: false,
            queues: vec![VecDeque::new(); mine],
            shard,
            shards,
        };
        match (&profile.traffic.arrival, plan.replay()) {
            (Arrival::Gamma(cv), _) => {
                state.source = Source::Gamma {
                    process: GammaArrivals::new(plan.schedule(), *cv),
                    schedule: plan.schedule().clone(),
                    rng: SmallRng::seed_from_u64(plan.seed ^ 0x6761_6d6d_6162_7572),
                };
            }
            (_, Some(replay)) => {
                for (i, m) in replay.messages.iter().enumerate() {
                    state.queue(
                        u64::from(m.session),
                        Due::message(m.at.to_std(), Some(i as u32)),
                    );
                }
                state.exhausted = true;
            }
            _ => unreachable!("only gamma and trace arrivals are fed"),
        }
        Some(Self {
            state: Mutex::new(state),
        })
    }

    /// Session `k`'s next due at or after `from` and before `close` (the end of its window),
    /// drawing the process as far as needed; `None` when it has no more in this window.
    pub fn next(&self, k: u64, from: Duration, close: Duration) -> Option<Due> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let slot = st.slot(k);
        let horizon = (from + LOOKAHEAD).min(close);
        while st.queues[slot].is_empty() && !st.exhausted && st.frontier < horizon {
            st.advance();
        }
        let front = st.queues[slot].front().copied();
        match front {
            Some(due) if due.at < close => st.queues[slot].pop_front(),
            // It belongs to a later window of the session.
            Some(_) => None,
            None if st.exhausted || st.frontier >= close => None,
            None => Some(Due {
                at: st.frontier.max(from),
                what: What::Recheck,
            }),
        }
    }
}

impl State {
    fn slot(&self, k: u64) -> usize {
        debug_assert_eq!(
            k % self.shards,
            self.shard,
            "session {k} is another shard's"
        );
        (k / self.shards) as usize
    }

    fn queue(&mut self, k: u64, due: Due) {
        if k % self.shards == self.shard {
            let slot = self.slot(k);
            if let Some(q) = self.queues.get_mut(slot) {
                q.push_back(due);
            }
        }
    }

    /// Draws one arrival of the global process and queues it if it is this shard's.
    fn advance(&mut self) {
        let Source::Gamma {
            process,
            schedule,
            rng,
        } = &mut self.source
        else {
            self.exhausted = true;
            return;
        };
        let Some(t) = process.next(rng) else {
            self.exhausted = true;
            return;
        };
        // Drawn on every shard, ours or not, so that all shards stay in step.
        let u: f64 = rng.random();
        let open = schedule.sessions_at(t);
        let t = t.to_std();
        self.frontier = t;
        if open > 0.0 {
            let k = ((u * open) as u64).min(open.ceil() as u64 - 1);
            self.queue(k, Due::message(t, None));
        }
    }
}
