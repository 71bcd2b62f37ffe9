//! The users: one question at a time each.
//!
//! A chat user does not send while the previous answer is still arriving; a message due
//! meanwhile waits on the user's side and goes out when the answer lands. The load
//! generator behaves the same way, counts such a message as late and still measures its
//! latency from the intended time, so a prediction must do the same to compare. With S
//! sessions and L messages in flight, a message finds its session busy with probability
//! about L / S: noticeable for the `local` profile (200 sessions, LLM answers of ~2 s),
//! negligible for queueing checks that use many sessions.

use std::collections::{HashMap, VecDeque};

use crate::time::Nanos;

/// A session's state in 8 bytes (a run may have a million, touched at random): when its
/// last answer landed (or will land: answers are sometimes recorded ahead), or one of two
/// markers while an answer is on its way, whose landing time is not known yet.
type State = Nanos;
/// An answer is on its way.
const BUSY: State = Nanos::MAX - 1;
/// An answer is on its way and messages wait in [`Sessions::waiting`].
const BUSY_QUEUED: State = Nanos::MAX;

/// Every session's state, grown on first use.
#[derive(Debug, Default)]
pub struct Sessions {
    states: Vec<State>,
    /// Messages (slab indices) due while their session was busy, oldest first; only
    /// sessions in [`BUSY_QUEUED`] have an entry.
    waiting: HashMap<u32, VecDeque<u32>>,
    /// Messages sent after their intended time.
    pub late: u64,
}

impl Sessions {
    fn state(&mut self, s: u32) -> &mut State {
        let i = s as usize;
        if i >= self.states.len() {
            self.states.resize(i + 1, 0);
        }
        &mut self.states[i]
    }

    /// Message `m` of session `s` is due at `t0`: when it goes out, or `None` when it waits
    /// for the answer in flight (see [`release`](Self::release)).
    pub fn arrive(&mut self, s: u32, t0: Nanos, m: u32) -> Option<Nanos> {
        let state = self.state(s);
        match *state {
            BUSY | BUSY_QUEUED => {
                *state = BUSY_QUEUED;
                self.waiting.entry(s).or_default().push_back(m);
                self.late += 1;
                None
            }
            free_at => {
                *state = BUSY;
                if t0 < free_at {
                    self.late += 1;
                    Some(free_at)
                } else {
                    Some(t0)
                }
            }
        }
    }

    /// The answer (or error) in flight on session `s` landed at `t`: the next waiting
    /// message, to send at `t`, if any.
    pub fn release(&mut self, s: u32, t: Nanos) -> Option<u32> {
        let state = self.state(s);
        match *state {
            BUSY_QUEUED => {
                let queue = self
                    .waiting
                    .get_mut(&s)
                    .expect("queued sessions have an entry");
                let next = queue.pop_front().expect("entries are removed when empty");
                if queue.is_empty() {
                    self.waiting.remove(&s);
                    self.states[s as usize] = BUSY;
                }
                Some(next)
            }
            BUSY => {
                *state = t;
                None
            }
            free_at => {
                *state = free_at.max(t);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_due_during_an_answer_waits_for_it() {
        let mut s = Sessions::default();
        assert_eq!(s.arrive(3, 100, 0), Some(100));
        assert_eq!(s.arrive(3, 150, 1), None, "the session is busy");
        assert_eq!(s.arrive(4, 150, 2), Some(150), "other sessions are not");
        assert_eq!(s.release(3, 400), Some(1));
        assert_eq!(s.release(3, 900), None);
        // Recorded ahead: the answer lands at 900, a message due at 800 goes out then.
        assert_eq!(s.arrive(3, 800, 5), Some(900));
        assert_eq!(s.release(3, 1_000), None);
        assert_eq!(s.arrive(3, 2_000, 6), Some(2_000));
        assert_eq!(s.late, 2);
    }
}
