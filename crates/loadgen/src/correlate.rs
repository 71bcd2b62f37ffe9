//! Which message an incoming frame answers.
//!
//! A session has at most one message in flight (users wait for answers), so correlation
//! only has to decide whether a frame is for that message: by id when the shape carries
//! one, by order otherwise. A frame naming another id is a protocol violation, not a
//! silently mis-attributed latency. A message given up on (a reply timeout, or its user
//! gave up: `traffic.abandon_after`) may still be answered late; with ids those frames are
//! recognised and dropped ([`Abandoned`]), so the session keeps its connection. By order
//! they cannot be told apart: the session reconnects instead.

use std::collections::VecDeque;

use surge_profile::target::Correlate;
use surge_protocol::{Incoming, IncomingKind};

/// Whether `frame` answers the message `in_flight`.
pub fn answers(mode: Correlate, in_flight: &str, frame: &Incoming) -> bool {
    match (mode, frame.id.as_deref()) {
        (Correlate::Order, _) | (Correlate::Id, None) => true,
        (Correlate::Id, Some(id)) => id == in_flight,
    }
}

/// Ids of messages a session gave up on, whose late frames may still arrive.
#[derive(Debug, Default)]
pub struct Abandoned {
    ids: VecDeque<String>,
}

impl Abandoned {
    /// Most ids remembered; older ones are forgotten (their frames then count as violations).
    const KEEP: usize = 8;

    pub fn add(&mut self, id: String) {
        if self.ids.len() == Self::KEEP {
            self.ids.pop_front();
        }
        self.ids.push_back(id);
    }

    /// Whether `frame` is a late frame of an abandoned message (to be dropped); the message
    /// is forgotten once its last frame (done, error, throttle) has come.
    pub fn absorbs(&mut self, frame: &Incoming) -> bool {
        let Some(id) = frame.id.as_deref() else {
            return false;
        };
        let Some(i) = self.ids.iter().position(|a| a == id) else {
            return false;
        };
        if !matches!(frame.kind, IncomingKind::Token { .. }) {
            self.ids.remove(i);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(id: Option<&str>) -> Incoming {
        Incoming {
            kind: IncomingKind::Done,
            id: id.map(str::to_string),
            model: None,
            usage: None,
        }
    }

    #[test]
    fn by_id_and_by_order() {
        assert!(answers(Correlate::Id, "7-1", &frame(Some("7-1"))));
        assert!(!answers(Correlate::Id, "7-1", &frame(Some("7-0"))));
        assert!(answers(Correlate::Id, "7-1", &frame(None)));
        assert!(answers(Correlate::Order, "7-1", &frame(Some("whatever"))));
    }

    #[test]
    fn late_frames_of_abandoned_messages_are_absorbed_until_done() {
        let mut a = Abandoned::default();
        a.add("7-1".into());
        let token = Incoming {
            kind: IncomingKind::Token { tokens: 1 },
            id: Some("7-1".into()),
            model: None,
            usage: None,
        };
        assert!(a.absorbs(&token));
        assert!(!a.absorbs(&frame(Some("7-2"))));
        assert!(a.absorbs(&frame(Some("7-1"))));
        assert!(!a.absorbs(&frame(Some("7-1"))), "forgotten after done");
        for i in 0..20 {
            a.add(format!("x-{i}"));
        }
        assert!(a.ids.len() <= Abandoned::KEEP);
    }
}
