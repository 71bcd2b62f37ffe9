//! API Gateway's own frames: what the gateway sends in place of the chatbot's answer.
//!
//! When a WebSocket API throttles a message, its integration fails, or a message matches
//! no route, API Gateway answers on the socket itself with a frame no chatbot wrote —
//! `{"message": "Internal server error", "connectionId": "…", "requestId": "…"}` — and
//! keeps the connection open. The frame names no message (the gateway does not know the
//! chatbot's ids), so it fails the message in flight. It is recognised before any rule of
//! the chatbot's own shape, by its form: an object of `message` (a string) and
//! `connectionId` and/or `requestId`, nothing else — a chatbot's frame with more keys is
//! never taken for one.

use serde_json::Value;

use crate::codec::{Incoming, IncomingKind};

/// Messages of the gateway's throttling answers (account or route throttle, quota).
const THROTTLED: [&str; 2] = ["Too Many Requests", "Limit Exceeded"];

/// The keys besides `message` a gateway frame carries.
const IDS: [&str; 2] = ["connectionId", "requestId"];

/// The gateway's error frame `v` as a refusal of the message in flight, if it is one:
/// throttled for "Too Many Requests" and "Limit Exceeded", a server error for anything
/// else ("Internal server error", "Forbidden", "No method found matching route …").
pub fn error_frame(v: &Value) -> Option<Incoming> {
    let fields = v.as_object()?;
    let message = fields.get("message")?.as_str()?;
    let only_gateway_keys = fields
        .keys()
        .all(|k| k == "message" || IDS.contains(&k.as_str()));
    if !only_gateway_keys || !IDS.iter().any(|k| fields.contains_key(*k)) {
        return None;
    }
    let kind = if THROTTLED.iter().any(|t| t.eq_ignore_ascii_case(message)) {
        IncomingKind::Throttle
    } else {
        IncomingKind::Error {
            message: format!("API Gateway: {message}"),
        }
    };
    Some(Incoming {
        kind,
        id: None,
        model: None,
        usage: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(frame: &str) -> Option<IncomingKind> {
        error_frame(&serde_json::from_str(frame).unwrap()).map(|i| {
            assert_eq!(i.id, None);
            i.kind
        })
    }

    #[test]
    fn the_gateways_frames_and_nothing_else() {
        let ids = r#""connectionId":"L0SM9cOFvHcCIhw=","requestId":"L0SM9FRGvHcF5Xg=""#;
        for m in ["Too Many Requests", "Limit Exceeded", "too many requests"] {
            assert_eq!(
                kind(&format!(r#"{{"message":"{m}",{ids}}}"#)),
                Some(IncomingKind::Throttle)
            );
        }
        for m in [
            "Internal server error",
            "Forbidden",
            "No method found matching route sendMessage for http method POST.",
        ] {
            assert_eq!(
                kind(&format!(r#"{{"message":"{m}",{ids}}}"#)),
                Some(IncomingKind::Error {
                    message: format!("API Gateway: {m}")
                })
            );
        }
        assert!(kind(r#"{"message":"Forbidden","requestId":"x"}"#).is_some());
        // A chatbot's own frames are not the gateway's.
        for frame in [
            r#"{"message":"Forbidden"}"#,
            r#"{"message":"hi","requestId":"x","type":"token"}"#,
            r#"{"message":7,"requestId":"x"}"#,
            r#"{"type":"error","code":"throttled","message":"slow down"}"#,
            r#"["message"]"#,
        ] {
            assert_eq!(kind(frame), None, "{frame}");
        }
    }
}
