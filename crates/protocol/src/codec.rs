//! One interface over both frame shapes: encode a user message, classify a server frame.

use std::borrow::Cow;

use serde_json::Value;
use surge_profile::target::{Correlate, FrameMatch, ProtocolMapping};

use crate::frames::{ChatMessage, ErrorCode, ServerFrame};
use crate::template::SendTemplate;

/// What an incoming frame means to the client.
#[derive(Debug, Clone, PartialEq)]
pub enum IncomingKind {
    /// Streamed tokens (`tokens` of them; 1 when the shape does not say).
    Token { tokens: u32 },
    /// The answer is complete.
    Done,
    /// The chatbot throttled the message.
    Throttle,
    /// The chatbot failed the message.
    Error { message: String },
}

/// A classified incoming frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    pub kind: IncomingKind,
    /// Message id the frame answers, when the shape carries one.
    pub id: Option<String>,
    /// Model that answered, from a done frame, when the shape carries one.
    pub model: Option<String>,
}

/// Why a frame could not be understood: a protocol violation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("frame is not JSON: {0}")]
    NotJson(String),
    #[error("frame matches no token, done, error or throttle rule: {0}")]
    Unrecognised(String),
}

/// Encodes messages and classifies frames for one frame shape.
#[derive(Debug, Clone)]
pub enum Codec {
    /// surge's own shape ([`crate::frames`]), spoken by `surge mock`.
    Default,
    /// A shape described by a profile's `[protocol]` table.
    Mapped(Box<Mapped>),
}

/// A compiled protocol mapping.
#[derive(Debug, Clone)]
pub struct Mapped {
    send: SendTemplate,
    correlate: Correlate,
    message_id: Option<String>,
    model: Option<String>,
    token: FrameMatch,
    done: FrameMatch,
    error: FrameMatch,
    throttle: Option<FrameMatch>,
}

impl Codec {
    /// The codec a profile asks for: its `[protocol]` mapping, or the default shape.
    pub fn for_profile(mapping: Option<&ProtocolMapping>) -> Self {
        match mapping {
            None => Self::Default,
            Some(m) => Self::Mapped(Box::new(Mapped {
                send: SendTemplate::compile(&m.send),
                correlate: m.correlate,
                message_id: m.message_id.clone(),
                model: m.model.clone(),
                token: m.token.clone(),
                done: m.done.clone(),
                error: m.error.clone(),
                throttle: m.throttle.clone(),
            })),
        }
    }

    /// Whether answers are matched to messages by id or by order.
    pub fn correlate(&self) -> Correlate {
        match self {
            Self::Default => Correlate::Id,
            Self::Mapped(m) => m.correlate,
        }
    }

    /// The text frame that sends `text` as message `id` of `session` to `store`.
    pub fn encode(&self, session: &str, id: &str, store: &str, text: &str) -> String {
        match self {
            Self::Default => ChatMessage::json_of(session, id, store, text),
            Self::Mapped(m) => m.send.render(session, id, store, text),
        }
    }

    /// Classifies one incoming text frame.
    pub fn decode(&self, frame: &str) -> Result<Incoming, DecodeError> {
        match self {
            Self::Default => decode_default(frame),
            Self::Mapped(m) => m.decode(frame),
        }
    }
}

fn snippet(frame: &str) -> String {
    let mut s: String = frame.chars().take(120).collect();
    if s.len() < frame.len() {
        s.push('…');
    }
    s
}

/// The fields of a token or done frame, borrowed from the frame (no copy of the text).
///
/// Token and done frames are nearly all a load generator reads (one per token, or per
/// tick, and one per answer), and `ServerFrame`'s internally tagged enum buffers every
/// field of every frame before it knows the variant. This reads them in one pass, with
/// the same required fields as [`ServerFrame`]; a frame it does not take for a
/// well-formed token or done frame goes to the full parse, which decides.
#[derive(serde::Deserialize)]
struct FastFrame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
    tokens: Option<u32>,
    #[serde(borrow)]
    usage: Option<FastUsage<'a>>,
}

/// [`crate::frames::Usage`], borrowed; only the model is kept.
#[derive(serde::Deserialize)]
#[allow(dead_code)] // the fields are read to check the frame, as the full parse does
struct FastUsage<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    intent: Cow<'a, str>,
    #[serde(borrow)]
    store: Cow<'a, str>,
    input_tokens: u32,
    output_tokens: u32,
    cache_hit: bool,
    cost_usd: f64,
}

fn decode_fast(frame: &str) -> Option<Incoming> {
    let f: FastFrame<'_> = serde_json::from_str(frame).ok()?;
    let id = Some(f.id?.into_owned());
    match f.kind.as_ref() {
        "token" if f.text.is_some() => Some(Incoming {
            kind: IncomingKind::Token {
                tokens: f.tokens.unwrap_or(1),
            },
            id,
            model: None,
        }),
        "done" => Some(Incoming {
            kind: IncomingKind::Done,
            id,
            model: f.usage?.model.map(Cow::into_owned),
        }),
        _ => None,
    }
}

fn decode_default(frame: &str) -> Result<Incoming, DecodeError> {
    if let Some(incoming) = decode_fast(frame) {
        return Ok(incoming);
    }
    let parsed: ServerFrame = serde_json::from_str(frame).map_err(|e| {
        if serde_json::from_str::<Value>(frame).is_ok() {
            DecodeError::Unrecognised(format!("{e} in {}", snippet(frame)))
        } else {
            DecodeError::NotJson(snippet(frame))
        }
    })?;
    Ok(match parsed {
        ServerFrame::Token { id, tokens, .. } => Incoming {
            kind: IncomingKind::Token { tokens },
            id: Some(id),
            model: None,
        },
        ServerFrame::Done { id, usage } => Incoming {
            kind: IncomingKind::Done,
            id: Some(id),
            model: usage.model,
        },
        ServerFrame::Error { id, code, message } => Incoming {
            kind: match code {
                ErrorCode::Throttled => IncomingKind::Throttle,
                ErrorCode::ServerError | ErrorCode::BadRequest => IncomingKind::Error { message },
            },
            id,
            model: None,
        },
    })
}

fn matches(v: &Value, rule: &FrameMatch) -> bool {
    match v.pointer(&rule.pointer) {
        Some(Value::String(s)) => s == &rule.equals,
        Some(Value::Bool(b)) => rule.equals == b.to_string(),
        Some(Value::Number(n)) => rule.equals == n.to_string(),
        _ => false,
    }
}

fn text_at(v: &Value, pointer: Option<&String>) -> Option<String> {
    match v.pointer(pointer?)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Mapped {
    fn decode(&self, frame: &str) -> Result<Incoming, DecodeError> {
        let v: Value =
            serde_json::from_str(frame).map_err(|_| DecodeError::NotJson(snippet(frame)))?;
        // Throttle is checked before error: a throttle is usually an error with a code.
        let kind = if self.throttle.as_ref().is_some_and(|t| matches(&v, t)) {
            IncomingKind::Throttle
        } else if matches(&v, &self.error) {
            IncomingKind::Error {
                message: snippet(frame),
            }
        } else if matches(&v, &self.done) {
            IncomingKind::Done
        } else if matches(&v, &self.token) {
            IncomingKind::Token { tokens: 1 }
        } else {
            return Err(DecodeError::Unrecognised(snippet(frame)));
        };
        let model = match kind {
            IncomingKind::Done => text_at(&v, self.model.as_ref()),
            _ => None,
        };
        Ok(Incoming {
            kind,
            id: text_at(&v, self.message_id.as_ref()),
            model,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::Usage;

    #[test]
    fn default_codec_round_trips_the_mock_frames() {
        let c = Codec::for_profile(None);
        let sent = c.encode("s1", "m1", "manga_jp", "hello");
        assert_eq!(ChatMessage::from_json(&sent).unwrap().text, "hello");
        let done = ServerFrame::Done {
            id: "m1".into(),
            usage: Usage {
                model: Some("haiku".into()),
                intent: "chitchat".into(),
                store: "manga_jp".into(),
                input_tokens: 10,
                output_tokens: 3,
                cache_hit: false,
                cost_usd: 0.0,
            },
        };
        let inc = c.decode(&done.to_json()).unwrap();
        assert_eq!(inc.kind, IncomingKind::Done);
        assert_eq!(inc.model.as_deref(), Some("haiku"));
        let thr = ServerFrame::Error {
            id: Some("m1".into()),
            code: ErrorCode::Throttled,
            message: "x".into(),
        };
        assert_eq!(
            c.decode(&thr.to_json()).unwrap().kind,
            IncomingKind::Throttle
        );
        assert!(matches!(c.decode("not json"), Err(DecodeError::NotJson(_))));
        // Token frames take the one-pass path; it must agree with the full parse.
        for (frame, tokens) in [
            (
                r#"{"type":"token","id":"m1","text":"Hi \"there\"","tokens":3}"#,
                Some(3),
            ),
            (
                r#"{"tokens":2,"text":"ワン","id":"m\u0031","type":"token"}"#,
                Some(2),
            ),
            (r#"{"type":"token","id":"m1","text":"x"}"#, Some(1)),
            (
                r#"{"type":"token","id":"m1","text":"x","extra":[1,{"a":null}]}"#,
                Some(1),
            ),
            (r#"{"type":"token","id":"m1"}"#, None),
            (r#"{"type":"token","text":"x"}"#, None),
            (r#"{"type":"token","id":"m1","text":7}"#, None),
            (r#"{"type":"token","id":"m1","text":"x","tokens":-1}"#, None),
            (r#"{"type":"token","id":"m1","id":"m2","text":"x"}"#, None),
            (r#"{"type":"done","id":"m1","text":"x"}"#, None),
        ] {
            let full = match serde_json::from_str::<ServerFrame>(frame) {
                Ok(ServerFrame::Token { tokens, .. }) => Some(tokens),
                _ => None,
            };
            assert_eq!(full, tokens, "{frame}");
            match c.decode(frame) {
                Ok(inc) => {
                    assert_eq!(
                        Some(inc.kind),
                        tokens.map(|tokens| IncomingKind::Token { tokens })
                    );
                    assert_eq!(inc.id.as_deref(), Some("m1"), "{frame}");
                }
                Err(_) => assert_eq!(tokens, None, "{frame}"),
            }
        }
        // Done frames too: the model is kept, a usage missing a field is refused.
        let done = r#"{"type":"done","id":"m1","usage":{"intent":"chitchat","store":"kindle","input_tokens":1,"output_tokens":2,"cache_hit":true,"cost_usd":0.5,"model":"haiku"}}"#;
        let inc = c.decode(done).unwrap();
        assert_eq!(
            (inc.kind, inc.id.as_deref(), inc.model.as_deref()),
            (IncomingKind::Done, Some("m1"), Some("haiku"))
        );
        let template = done.replace(r#","model":"haiku""#, "");
        assert_eq!(c.decode(&template).unwrap().model, None);
        let partial = done.replace(r#""cache_hit":true,"#, "");
        assert!(serde_json::from_str::<ServerFrame>(&partial).is_err());
        assert!(matches!(
            c.decode(&partial),
            Err(DecodeError::Unrecognised(_))
        ));
        assert!(matches!(
            c.decode(r#"{"type":"weird"}"#),
            Err(DecodeError::Unrecognised(_))
        ));
    }

    fn mapping() -> ProtocolMapping {
        ProtocolMapping {
            send: r#"{"action":"ask","conv":"{session}","n":"{message}","q":"{text}","shop":"{store}"}"#.into(),
            correlate: Correlate::Id,
            message_id: Some("/n".into()),
            token_text: Some("/delta".into()),
            model: Some("/meta/model".into()),
            token: FrameMatch { pointer: "/event".into(), equals: "delta".into() },
            done: FrameMatch { pointer: "/event".into(), equals: "end".into() },
            error: FrameMatch { pointer: "/event".into(), equals: "fail".into() },
            throttle: Some(FrameMatch { pointer: "/status".into(), equals: "429".into() }),
        }
    }

    #[test]
    fn mapped_codec_follows_the_profile() {
        let c = Codec::for_profile(Some(&mapping()));
        let sent: Value = serde_json::from_str(&c.encode("s", "7", "kindle", "q\"")).unwrap();
        assert_eq!(sent["q"], "q\"");
        let t = c.decode(r#"{"event":"delta","n":7,"delta":"Hi"}"#).unwrap();
        assert_eq!(t.kind, IncomingKind::Token { tokens: 1 });
        assert_eq!(t.id.as_deref(), Some("7"));
        let d = c
            .decode(r#"{"event":"end","n":"7","meta":{"model":"m"}}"#)
            .unwrap();
        assert_eq!(
            (d.kind, d.model.as_deref()),
            (IncomingKind::Done, Some("m"))
        );
        let th = c
            .decode(r#"{"event":"fail","status":429,"n":"7"}"#)
            .unwrap();
        assert_eq!(th.kind, IncomingKind::Throttle);
        let e = c.decode(r#"{"event":"fail","status":500}"#).unwrap();
        assert!(matches!(e.kind, IncomingKind::Error { .. }));
        assert!(c.decode(r#"{"event":"ping"}"#).is_err());
    }
}
