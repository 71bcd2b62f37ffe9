//! Error classes: what went wrong, named the way an operator reads a spike rehearsal.
//!
//! Every failure a session meets is put in exactly one class, so the timeline, the summary
//! and the Prometheus counters agree, and the error rate is a plain sum. The classes follow
//! the life of a session: connecting (refused, timeout, tls, upgrade_rejected), answering
//! (throttled, server_error, protocol_violation, reply_timeout, closed_mid_answer) and idling
//! (dropped).

use serde::{Deserialize, Serialize};

/// One class of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The TCP connection was refused (nothing listening, or a full backlog).
    Refused,
    /// Connecting (TCP, TLS and upgrade together) took longer than the reply timeout.
    Timeout,
    /// The TLS handshake failed.
    Tls,
    /// The server answered the WebSocket upgrade with an HTTP status (401, 429, 503, …).
    UpgradeRejected,
    /// The chatbot throttled a message.
    Throttled,
    /// The chatbot failed a message.
    ServerError,
    /// A frame the protocol does not allow: not JSON, no rule matches, wrong message id.
    ProtocolViolation,
    /// No complete answer within `traffic.reply_timeout` of sending.
    ReplyTimeout,
    /// The connection closed while an answer was due.
    ClosedMidAnswer,
    /// The connection closed while the session was idle.
    Dropped,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 10] = [
        Self::Refused,
        Self::Timeout,
        Self::Tls,
        Self::UpgradeRejected,
        Self::Throttled,
        Self::ServerError,
        Self::ProtocolViolation,
        Self::ReplyTimeout,
        Self::ClosedMidAnswer,
        Self::Dropped,
    ];

    pub const COUNT: usize = Self::ALL.len();

    pub const fn name(self) -> &'static str {
        match self {
            Self::Refused => "refused",
            Self::Timeout => "timeout",
            Self::Tls => "tls",
            Self::UpgradeRejected => "upgrade_rejected",
            Self::Throttled => "throttled",
            Self::ServerError => "server_error",
            Self::ProtocolViolation => "protocol_violation",
            Self::ReplyTimeout => "reply_timeout",
            Self::ClosedMidAnswer => "closed_mid_answer",
            Self::Dropped => "dropped",
        }
    }

    pub const fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A failure with what is worth keeping as a sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub class: ErrorClass,
    pub message: String,
    /// The HTTP status of a rejected upgrade.
    pub status: Option<u16>,
}

impl Failure {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
            status: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_follow_the_list_and_names_are_column_safe() {
        for (i, c) in ErrorClass::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
            assert!(
                c.name()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_')
            );
            let json = serde_json::to_string(c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.name()));
        }
    }
}
