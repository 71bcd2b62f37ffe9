//! Messages in flight, kept in a slab of reused slots.
//!
//! Events carry a slot index, not the message, so they stay small and `Copy`; a finished
//! message's slot is handed to the next arrival, so memory follows the number of messages
//! in flight, never the number sent.

use surge_model::bedrock::Lease;
use surge_model::time::Nanos;

/// [`Message::session`] once the session no longer waits for this message.
pub const NO_SESSION: u32 = u32::MAX;

/// What a turn is waiting for, when it has to wait.
#[derive(Debug, Clone, Copy, Default)]
pub struct Message {
    /// Intended send time: every latency starts here.
    pub t0: Nanos,
    /// Start of the step the message is in (queue, memory, LLM), for time-per-step.
    pub mark: Nanos,
    /// When orchestration was done (a speculative retrieval starts here).
    pub orchestrated: Nanos,
    /// When the first token frame reaches the user.
    pub first_token: Nanos,
    /// The user's session; [`NO_SESSION`] once the answer (or error) reached it.
    pub session: u32,
    pub input_tokens: f32,
    pub output_tokens: u32,
    /// Time per output token after the first, as the user sees the frames (set when the
    /// model finishes an answer of two tokens or more).
    pub tpot: Option<Nanos>,
    pub store: u8,
    pub intent: u8,
    pub model: u8,
    pub stage: u8,
    /// Retries of the current contended step.
    pub attempts: u8,
    /// Messages its session sent before it (counted only when the context grows with
    /// them, at most 255).
    pub earlier_turns: u8,
    /// Requests of the current DynamoDB step still to be served.
    pub pending: u8,
    pub lease: Option<Lease>,
    pub fell_back: bool,
    /// Whether the call reads the store's system prompt from Bedrock's prompt cache
    /// (`input_tokens` are then the rest of the input).
    pub prompt_cached: bool,
    pub generated: bool,
    /// Whether the message counts in the statistics (sent after the warm-up).
    pub measured: bool,
    /// Whether the user sent it again after a failure (`traffic.retry_after_error`): a
    /// retry is not retried.
    pub retry: bool,
    /// Whether its user gave up waiting (`traffic.abandon_after`); counted once.
    pub abandoned: bool,
}

#[derive(Default)]
pub struct Slab {
    slots: Vec<Message>,
    free: Vec<u32>,
}

impl Slab {
    #[inline]
    pub fn insert(&mut self, m: Message) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = m;
                i
            }
            None => {
                self.slots.push(m);
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 messages in flight")
            }
        }
    }

    #[inline]
    pub fn remove(&mut self, i: u32) {
        self.free.push(i);
    }

    pub fn in_use(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

impl std::ops::Index<u32> for Slab {
    type Output = Message;
    #[inline]
    fn index(&self, i: u32) -> &Message {
        &self.slots[i as usize]
    }
}

impl std::ops::IndexMut<u32> for Slab {
    #[inline]
    fn index_mut(&mut self, i: u32) -> &mut Message {
        &mut self.slots[i as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused() {
        let mut s = Slab::default();
        let a = s.insert(Message::default());
        let b = s.insert(Message::default());
        s.remove(a);
        assert_eq!(
            s.insert(Message {
                t0: 5,
                ..Default::default()
            }),
            a
        );
        assert_eq!(s[a].t0, 5);
        assert_eq!((s.in_use(), b), (2, 1));
    }
}
