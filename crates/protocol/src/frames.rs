//! surge's default frame shape: small JSON objects tagged by `type`.
//!
//! ```text
//! client → server  {"type":"message","session":"s-17","id":"m-42","store":"manga_jp","text":"…"}
//! server → client  {"type":"token","id":"m-42","text":"…","tokens":1}
//!                  {"type":"done","id":"m-42","usage":{"model":"sonnet","intent":"recommendation",…}}
//!                  {"type":"error","id":"m-42","code":"throttled","message":"…"}
//! ```
//!
//! Every server frame carries the id of the message it answers, so answers correlate by id
//! even when a client pipelines. A message answered from a template or a cache still sends
//! at least one token frame before `done`, so time-to-first-token is defined for every answer.

use serde::{Deserialize, Serialize};

/// A user message, client → server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub session: String,
    pub id: String,
    pub store: String,
    pub text: String,
}

/// A frame from the chatbot, server → client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// One or more streamed tokens of the answer to `id`.
    Token {
        id: String,
        text: String,
        /// Tokens in `text` (a frame may batch several).
        #[serde(default = "one")]
        tokens: u32,
    },
    /// The answer to `id` is complete.
    Done { id: String, usage: Usage },
    /// The message `id` failed (or, without an id, the connection is being refused).
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        code: ErrorCode,
        message: String,
    },
}

fn one() -> u32 {
    1
}

/// What answering one message used, reported in the done frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Model that generated the answer; `None` for templates and cache hits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub intent: String,
    pub store: String,
    pub input_tokens: u32,
    pub output_tokens: u32,
    /// Answered from the semantic cache or a precomputed answer.
    pub cache_hit: bool,
    /// What the answer cost in LLM tokens, in US dollars.
    pub cost_usd: f64,
}

/// Why the chatbot refused or failed a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A rate limit (per user, account, or a throttled back end).
    Throttled,
    /// The chatbot failed while answering.
    ServerError,
    /// The message was malformed or too large.
    BadRequest,
}

impl ServerFrame {
    /// Encodes the frame as the JSON text sent on the WebSocket.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server frames always serialize")
    }
}

/// Client frames on the wire; `message` is the only kind, the tag makes it checkable.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientFrame<M> {
    Message(M),
}

/// [`ChatMessage`] borrowed: the same JSON without copying the fields first.
#[derive(Serialize)]
struct ChatMessageRef<'a> {
    session: &'a str,
    id: &'a str,
    store: &'a str,
    text: &'a str,
}

impl ChatMessage {
    pub fn to_json(&self) -> String {
        serde_json::to_string(&ClientFrame::Message(self)).expect("chat messages always serialize")
    }

    /// The JSON of a message with these fields (what `to_json` of one would give).
    pub fn json_of(session: &str, id: &str, store: &str, text: &str) -> String {
        let m = ChatMessageRef {
            session,
            id,
            store,
            text,
        };
        serde_json::to_string(&ClientFrame::Message(m)).expect("chat messages always serialize")
    }

    /// Parses a client message, or says what is wrong with it.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str::<ClientFrame<Self>>(text).map(|ClientFrame::Message(m)| m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_the_documented_shape() {
        let m = ChatMessage {
            session: "s-1".into(),
            id: "m-2".into(),
            store: "manga_jp".into(),
            text: "こんにちは \"quoted\"".into(),
        };
        let json = m.to_json();
        assert!(
            json.starts_with(r#"{"type":"message","session":"s-1""#),
            "{json}"
        );
        assert_eq!(ChatMessage::from_json(&json).unwrap(), m);
        assert_eq!(
            ChatMessage::json_of(&m.session, &m.id, &m.store, &m.text),
            json
        );

        let t = ServerFrame::Token {
            id: "m-2".into(),
            text: "Hi".into(),
            tokens: 1,
        };
        assert_eq!(
            t.to_json(),
            r#"{"type":"token","id":"m-2","text":"Hi","tokens":1}"#
        );
        let e = ServerFrame::Error {
            id: None,
            code: ErrorCode::Throttled,
            message: "slow down".into(),
        };
        assert_eq!(
            e.to_json(),
            r#"{"type":"error","code":"throttled","message":"slow down"}"#
        );
    }

    #[test]
    fn token_count_defaults_to_one_and_unknown_types_fail() {
        let f: ServerFrame =
            serde_json::from_str(r#"{"type":"token","id":"a","text":"x"}"#).unwrap();
        assert!(matches!(f, ServerFrame::Token { tokens: 1, .. }));
        assert!(serde_json::from_str::<ServerFrame>(r#"{"type":"bogus"}"#).is_err());
        assert!(ChatMessage::from_json(r#"{"type":"message","id":"1"}"#).is_err());
        let wrong_type = r#"{"type":"token","session":"s","id":"1","store":"x","text":"t"}"#;
        assert!(ChatMessage::from_json(wrong_type).is_err());
    }
}
