//! The users: one question at a time each.
//!
//! A chat user does not send while the previous answer is still arriving; a message due
//! meanwhile waits on the user's side and goes out when the answer lands. The load
//! generator behaves the same way, counts such a message as late and still measures its
//! latency from the intended time, so a prediction must do the same to compare. With S
//! sessions and L messages in flight, a message finds its session busy with probability
//! about L / S: noticeable for the `local` profile (200 sessions, LLM answers of ~2 s),
//! negligible for queueing checks that use many sessions.
//!
//! A run may have a million sessions, picked at random, of which only those with an answer
//! in flight matter. So the state that every message touches is one bit per session ("not
//! simply free"), which stays in cache. An answer recorded ahead of the clock sets a second
//! bit and writes its landing time to a per-session table that only such answers touch,
//! for a later message of the session must not go out before it. Bits are cleared once no
//! future message can be due before the answer lands.

use std::collections::{HashMap, VecDeque};

use rustc_hash::FxBuildHasher;

use surge_model::time::Nanos;

/// One bit per session, grown on first use.
#[derive(Debug, Default)]
struct Bits(Vec<u64>);

impl Bits {
    #[inline]
    fn get(&self, s: u32) -> bool {
        self.0
            .get(s as usize / 64)
            .is_some_and(|w| w & (1 << (s % 64)) != 0)
    }

    #[inline]
    fn set(&mut self, s: u32) {
        let word = s as usize / 64;
        if word >= self.0.len() {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1 << (s % 64);
    }

    #[inline]
    fn clear(&mut self, s: u32) {
        if let Some(w) = self.0.get_mut(s as usize / 64) {
            *w &= !(1 << (s % 64));
        }
    }
}

/// Every session's state.
#[derive(Debug, Default)]
pub struct Sessions {
    /// Set while an answer is on its way or lands after the horizon (see
    /// [`release`](Self::release)); a clear bit is a free session.
    engaged: Bits,
    /// Engaged sessions whose answer lands at `landing_at[s]`, after the horizon.
    landing: Bits,
    landing_at: Vec<Nanos>,
    /// Answers recorded ahead, to forget once landed ([`forget_landed`](Self::forget_landed)).
    ahead: Vec<(u32, Nanos)>,
    /// Messages (slab indices) due while their session's answer was on its way, oldest
    /// first.
    waiting: HashMap<u32, VecDeque<u32>, FxBuildHasher>,
    /// Messages sent after their intended time.
    pub late: u64,
}

impl Sessions {
    /// Message `m` of session `s` is due at `t0`: when it goes out, or `None` when it waits
    /// for the answer in flight (see [`release`](Self::release)).
    #[inline]
    pub fn arrive(&mut self, s: u32, t0: Nanos, m: u32) -> Option<Nanos> {
        if !self.engaged.get(s) {
            self.engaged.set(s);
            return Some(t0);
        }
        if self.landing.get(s) {
            // The previous answer is recorded ahead: this message goes out when it lands.
            self.landing.clear(s);
            let free_at = self.landing_at[s as usize];
            if t0 < free_at {
                self.late += 1;
                return Some(free_at);
            }
            return Some(t0);
        }
        self.waiting.entry(s).or_default().push_back(m);
        self.late += 1;
        None
    }

    /// The answer (or error) in flight on session `s` landed at `t`: the next waiting
    /// message, to send at `t`, if any. `horizon` is the earliest time a message not yet
    /// arrived can be due: an answer landing by then frees its session at once.
    #[inline]
    pub fn release(&mut self, s: u32, t: Nanos, horizon: Nanos) -> Option<u32> {
        if !self.waiting.is_empty() {
            if let Some(queue) = self.waiting.get_mut(&s) {
                let next = queue.pop_front().expect("empty queues are removed");
                if queue.is_empty() {
                    self.waiting.remove(&s);
                }
                return Some(next);
            }
        }
        if t <= horizon {
            self.engaged.clear(s);
            return None;
        }
        let i = s as usize;
        if i >= self.landing_at.len() {
            self.landing_at.resize(i + 1, 0);
        }
        self.landing_at[i] = t;
        self.landing.set(s);
        self.ahead.push((s, t));
        None
    }

    /// Frees the sessions whose answers landed by `horizon` (see [`release`](Self::release)).
    pub fn forget_landed(&mut self, horizon: Nanos) {
        let (engaged, landing, at) = (&mut self.engaged, &mut self.landing, &self.landing_at);
        self.ahead.retain(|&(s, t)| {
            if t > horizon {
                return true;
            }
            // Unless a later message of the session took its place meanwhile.
            if landing.get(s) && at[s as usize] == t {
                landing.clear(s);
                engaged.clear(s);
            }
            false
        });
    }

    /// Answers recorded ahead and sessions with waiting messages (for tests and sizing).
    pub fn tracked(&self) -> usize {
        self.ahead.len() + self.waiting.len()
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
        assert_eq!(s.release(3, 400, 400), Some(1));
        // Recorded ahead: the answer lands at 900, after the horizon (the next arrival may
        // be due from 700 on), so a message due at 800 goes out then.
        assert_eq!(s.release(3, 900, 700), None);
        assert_eq!(s.arrive(3, 800, 5), Some(900));
        assert_eq!(s.release(3, 1_000, 1_000), None);
        assert_eq!(s.arrive(3, 2_000, 6), Some(2_000));
        assert_eq!(s.late, 2);
    }

    #[test]
    fn landed_answers_are_forgotten_once_no_message_can_precede_them() {
        let mut s = Sessions::default();
        for session in [1, 70, 1_000_000] {
            assert_eq!(s.arrive(session, 10, session), Some(10));
        }
        assert_eq!(s.release(1, 50, 20), None);
        assert_eq!(s.release(70, 90, 20), None);
        assert_eq!(s.release(1_000_000, 30, 30), None, "landed by the horizon");
        assert_eq!(s.tracked(), 2);
        s.forget_landed(60);
        assert_eq!(s.tracked(), 1, "session 70's answer lands at 90");
        assert_eq!(s.arrive(1, 61, 7), Some(61), "session 1 is free");
        assert_eq!(
            s.arrive(70, 61, 8),
            Some(90),
            "session 70 waits for its answer"
        );
        assert_eq!(s.arrive(1_000_000, 61, 9), Some(61));
        assert_eq!(s.late, 1);
    }
}
