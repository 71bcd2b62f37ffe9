//! One interface over both frame shapes: encode a user message, classify a server frame.
//!
//! Classifying is one pass in a fixed order, the same for both shapes: an answer frame of
//! the shape (token, done, throttle, error), API Gateway's own error frames
//! ([`crate::gateway`]), then the profile's `ignore` rules; what is left is JSON that
//! answers nothing (a greeting, a typing indicator, a push, a pong) or not JSON at all.
//! What such a frame means to a session — counted, or an error — is the session's call.

use std::borrow::Cow;

use serde_json::Value;
use surge_profile::Protocol;
use surge_profile::target::{Correlate, FrameMatch};

use crate::frames::{ChatMessage, ErrorCode, ServerFrame};
use crate::gateway;
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

/// A classified answer frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    pub kind: IncomingKind,
    /// Message id the frame answers, when the shape carries one.
    pub id: Option<String>,
    /// Model that answered, from a done frame, when the shape carries one.
    pub model: Option<String>,
    /// Tokens the done frame reports, when the shape carries them.
    pub usage: Option<TokenUsage>,
}

/// The usage a done frame reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    pub input: Option<u64>,
    pub output: Option<u64>,
}

/// What a text frame is, as far as the frame shape can tell.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// Part or end of an answer, or a refusal (maybe API Gateway's).
    Answer(Incoming),
    /// A frame the profile's `[protocol] ignore` names: dropped without a trace.
    Ignored,
    /// JSON that matches no rule: not an answer to anything.
    Unmatched,
    /// Not JSON.
    NotJson,
    /// A default-shape frame whose `type` says it is an answer, but that does not parse:
    /// a broken answer, never taken for an unsolicited frame.
    Malformed(String),
}

/// Encodes messages and classifies frames for one frame shape.
#[derive(Debug, Clone)]
pub struct Codec {
    shape: Shape,
    /// Frames to drop, looked at only when no answer rule matches.
    ignore: Vec<FrameMatch>,
}

#[derive(Debug, Clone)]
enum Shape {
    /// surge's own shape ([`crate::frames`]), spoken by `surge mock`.
    Default,
    /// A shape described by a profile's `[protocol]` table.
    Mapped(Box<Mapped>),
}

/// A compiled protocol mapping.
#[derive(Debug, Clone)]
struct Mapped {
    send: SendTemplate,
    correlate: Correlate,
    message_id: Option<String>,
    model: Option<String>,
    input_tokens: Option<String>,
    output_tokens: Option<String>,
    token: FrameMatch,
    done: FrameMatch,
    error: Option<FrameMatch>,
    throttle: Option<FrameMatch>,
}

/// `type`s of the default shape's answer frames.
const ANSWER_TYPES: [&str; 3] = ["token", "done", "error"];

impl Codec {
    /// The codec a profile's `[protocol]` table asks for.
    pub fn for_profile(protocol: &Protocol) -> Self {
        let shape = match &protocol.mapping {
            None => Shape::Default,
            Some(m) => Shape::Mapped(Box::new(Mapped {
                send: SendTemplate::compile(&m.send),
                correlate: m.correlate,
                message_id: m.message_id.clone(),
                model: m.model.clone(),
                input_tokens: m.input_tokens.clone(),
                output_tokens: m.output_tokens.clone(),
                token: m.token.clone(),
                done: m.done.clone(),
                error: m.error.clone(),
                throttle: m.throttle.clone(),
            })),
        };
        Self {
            shape,
            ignore: protocol.ignore.clone(),
        }
    }

    /// surge's default shape with no `ignore` rules (what `surge mock` speaks).
    pub fn default_shape() -> Self {
        Self::for_profile(&Protocol::default())
    }

    /// Whether answers are matched to messages by id or by order.
    pub fn correlate(&self) -> Correlate {
        match &self.shape {
            Shape::Default => Correlate::Id,
            Shape::Mapped(m) => m.correlate,
        }
    }

    /// The text frame that sends `text` as message `id` of `session` to `store`.
    pub fn encode(&self, session: &str, id: &str, store: &str, text: &str) -> String {
        match &self.shape {
            Shape::Default => ChatMessage::json_of(session, id, store, text),
            Shape::Mapped(m) => m.send.render(session, id, store, text),
        }
    }

    /// Classifies one incoming text frame.
    pub fn decode(&self, frame: &str) -> Decoded {
        match &self.shape {
            Shape::Default => self.decode_default(frame),
            Shape::Mapped(m) => match serde_json::from_str::<Value>(frame) {
                Err(_) => Decoded::NotJson,
                Ok(v) => match gateway::error_frame(&v).or_else(|| m.answer(&v, frame)) {
                    Some(inc) => Decoded::Answer(inc),
                    None => self.unmatched(&v),
                },
            },
        }
    }

    fn decode_default(&self, frame: &str) -> Decoded {
        if let Some(incoming) = decode_fast(frame) {
            return Decoded::Answer(incoming);
        }
        let parse_error = match serde_json::from_str::<ServerFrame>(frame) {
            Ok(parsed) => return Decoded::Answer(from_default(parsed)),
            Err(e) => e,
        };
        let Ok(v) = serde_json::from_str::<Value>(frame) else {
            return Decoded::NotJson;
        };
        if let Some(incoming) = gateway::error_frame(&v) {
            return Decoded::Answer(incoming);
        }
        let claims_answer = v
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| ANSWER_TYPES.contains(&t));
        if claims_answer {
            return Decoded::Malformed(format!("{parse_error} in {}", snippet(frame)));
        }
        self.unmatched(&v)
    }

    /// A JSON frame that answers nothing: ignored, or unmatched.
    fn unmatched(&self, v: &Value) -> Decoded {
        if self.ignore.iter().any(|rule| matches(v, rule)) {
            Decoded::Ignored
        } else {
            Decoded::Unmatched
        }
    }
}

/// The first 120 characters of a frame, for messages and samples.
pub fn snippet(frame: &str) -> String {
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

/// [`crate::frames::Usage`], borrowed; the model and the token counts are kept.
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
            usage: None,
        }),
        "done" => {
            let u = f.usage?;
            Some(Incoming {
                kind: IncomingKind::Done,
                id,
                usage: Some(TokenUsage {
                    input: Some(u64::from(u.input_tokens)),
                    output: Some(u64::from(u.output_tokens)),
                }),
                model: u.model.map(Cow::into_owned),
            })
        }
        _ => None,
    }
}

fn from_default(parsed: ServerFrame) -> Incoming {
    match parsed {
        ServerFrame::Token { id, tokens, .. } => Incoming {
            kind: IncomingKind::Token { tokens },
            id: Some(id),
            model: None,
            usage: None,
        },
        ServerFrame::Done { id, usage } => Incoming {
            kind: IncomingKind::Done,
            id: Some(id),
            usage: Some(TokenUsage {
                input: Some(u64::from(usage.input_tokens)),
                output: Some(u64::from(usage.output_tokens)),
            }),
            model: usage.model,
        },
        ServerFrame::Error { id, code, message } => Incoming {
            kind: match code {
                ErrorCode::Throttled => IncomingKind::Throttle,
                ErrorCode::ServerError | ErrorCode::BadRequest => IncomingKind::Error { message },
            },
            id,
            model: None,
            usage: None,
        },
    }
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
    /// The answer frame `v` is by the mapping's rules, if any.
    fn answer(&self, v: &Value, frame: &str) -> Option<Incoming> {
        let is = |rule: &Option<FrameMatch>| rule.as_ref().is_some_and(|r| matches(v, r));
        // Throttle is checked before error: a throttle is usually an error with a code.
        let kind = if is(&self.throttle) {
            IncomingKind::Throttle
        } else if is(&self.error) {
            IncomingKind::Error {
                message: snippet(frame),
            }
        } else if matches(v, &self.done) {
            IncomingKind::Done
        } else if matches(v, &self.token) {
            IncomingKind::Token { tokens: 1 }
        } else {
            return None;
        };
        let (model, usage) = match kind {
            IncomingKind::Done => {
                let count = |p: &Option<String>| v.pointer(p.as_ref()?)?.as_u64();
                let usage = TokenUsage {
                    input: count(&self.input_tokens),
                    output: count(&self.output_tokens),
                };
                (
                    text_at(v, self.model.as_ref()),
                    (usage != TokenUsage::default()).then_some(usage),
                )
            }
            _ => (None, None),
        };
        Some(Incoming {
            kind,
            id: text_at(v, self.message_id.as_ref()),
            model,
            usage,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::Usage;
    use surge_profile::target::ProtocolMapping;

    fn answer(d: Decoded) -> Incoming {
        match d {
            Decoded::Answer(inc) => inc,
            other => panic!("not an answer: {other:?}"),
        }
    }

    #[test]
    fn default_codec_round_trips_the_mock_frames() {
        let c = Codec::default_shape();
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
        let inc = answer(c.decode(&done.to_json()));
        assert_eq!(inc.kind, IncomingKind::Done);
        assert_eq!(inc.model.as_deref(), Some("haiku"));
        let thr = ServerFrame::Error {
            id: Some("m1".into()),
            code: ErrorCode::Throttled,
            message: "x".into(),
        };
        assert_eq!(
            answer(c.decode(&thr.to_json())).kind,
            IncomingKind::Throttle
        );
        assert_eq!(c.decode("not json"), Decoded::NotJson);
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
                Decoded::Answer(inc) => {
                    assert_eq!(
                        Some(inc.kind),
                        tokens.map(|tokens| IncomingKind::Token { tokens })
                    );
                    assert_eq!(inc.id.as_deref(), Some("m1"), "{frame}");
                }
                _ => assert_eq!(tokens, None, "{frame}"),
            }
        }
        // Done frames too: the model is kept, a usage missing a field is refused.
        let done = r#"{"type":"done","id":"m1","usage":{"intent":"chitchat","store":"kindle","input_tokens":1,"output_tokens":2,"cache_hit":true,"cost_usd":0.5,"model":"haiku"}}"#;
        let inc = answer(c.decode(done));
        assert_eq!(
            (inc.kind, inc.id.as_deref(), inc.model.as_deref()),
            (IncomingKind::Done, Some("m1"), Some("haiku"))
        );
        let template = done.replace(r#","model":"haiku""#, "");
        assert_eq!(answer(c.decode(&template)).model, None);
        let partial = done.replace(r#""cache_hit":true,"#, "");
        assert!(serde_json::from_str::<ServerFrame>(&partial).is_err());
        assert!(matches!(c.decode(&partial), Decoded::Malformed(_)));
        assert_eq!(c.decode(r#"{"type":"weird"}"#), Decoded::Unmatched);
        assert_eq!(c.decode(r#"{"type":"typing"}"#), Decoded::Unmatched);
    }

    fn mapping() -> ProtocolMapping {
        ProtocolMapping {
            send: r#"{"action":"ask","conv":"{session}","n":"{message}","q":"{text}","shop":"{store}"}"#.into(),
            correlate: Correlate::Id,
            message_id: Some("/n".into()),
            token_text: Some("/delta".into()),
            model: Some("/meta/model".into()),
            input_tokens: Some("/meta/usage/in".into()),
            output_tokens: Some("/meta/usage/out".into()),
            token: FrameMatch { pointer: "/event".into(), equals: "delta".into() },
            done: FrameMatch { pointer: "/event".into(), equals: "end".into() },
            error: Some(FrameMatch { pointer: "/event".into(), equals: "fail".into() }),
            throttle: Some(FrameMatch { pointer: "/status".into(), equals: "429".into() }),
        }
    }

    #[test]
    fn mapped_codec_follows_the_profile() {
        let c = Codec::for_profile(&Protocol {
            mapping: Some(mapping()),
            ..Protocol::default()
        });
        let sent: Value = serde_json::from_str(&c.encode("s", "7", "kindle", "q\"")).unwrap();
        assert_eq!(sent["q"], "q\"");
        let t = answer(c.decode(r#"{"event":"delta","n":7,"delta":"Hi"}"#));
        assert_eq!(t.kind, IncomingKind::Token { tokens: 1 });
        assert_eq!(t.id.as_deref(), Some("7"));
        let d = answer(c.decode(r#"{"event":"end","n":"7","meta":{"model":"m"}}"#));
        assert_eq!(
            (d.kind, d.model.as_deref(), d.usage),
            (IncomingKind::Done, Some("m"), None)
        );
        // Usage where the frame reports it; a count that is not a number is not one.
        let d =
            answer(c.decode(r#"{"event":"end","n":"7","meta":{"usage":{"in":12,"out":"many"}}}"#));
        assert_eq!(
            d.usage,
            Some(TokenUsage {
                input: Some(12),
                output: None
            })
        );
        let th = answer(c.decode(r#"{"event":"fail","status":429,"n":"7"}"#));
        assert_eq!(th.kind, IncomingKind::Throttle);
        let e = answer(c.decode(r#"{"event":"fail","status":500}"#));
        assert!(matches!(e.kind, IncomingKind::Error { .. }));
        assert_eq!(c.decode(r#"{"event":"ping"}"#), Decoded::Unmatched);
        assert_eq!(c.decode("pong"), Decoded::NotJson);
        // No error rule: a failure frame is then just a frame that answers nothing.
        let mut m = mapping();
        m.error = None;
        let c = Codec::for_profile(&Protocol {
            mapping: Some(m),
            ..Protocol::default()
        });
        assert_eq!(
            c.decode(r#"{"event":"fail","status":500}"#),
            Decoded::Unmatched
        );
    }

    #[test]
    fn gateway_frames_come_first_and_ignore_rules_last() {
        let typing = FrameMatch {
            pointer: "/type".into(),
            equals: "typing".into(),
        };
        let greedy = FrameMatch {
            pointer: "/event".into(),
            equals: "delta".into(),
        };
        let gateway = r#"{"message":"Internal server error","connectionId":"c=","requestId":"r="}"#;
        let throttled = r#"{"message":"Too Many Requests","connectionId":"c=","requestId":"r="}"#;
        for mapping in [None, Some(mapping())] {
            let c = Codec::for_profile(&Protocol {
                mapping: mapping.clone(),
                ignore: vec![typing.clone(), greedy.clone()],
                ..Protocol::default()
            });
            let e = answer(c.decode(gateway));
            assert_eq!(e.id, None);
            assert_eq!(
                e.kind,
                IncomingKind::Error {
                    message: "API Gateway: Internal server error".into()
                }
            );
            assert_eq!(answer(c.decode(throttled)).kind, IncomingKind::Throttle);
            assert_eq!(c.decode(r#"{"type":"typing","n":"7"}"#), Decoded::Ignored);
            assert_eq!(c.decode(r#"{"type":"greeting"}"#), Decoded::Unmatched);
            assert_eq!(c.decode("hello"), Decoded::NotJson);
        }
        // An ignore rule never hides an answer.
        let c = Codec::for_profile(&Protocol {
            mapping: Some(mapping()),
            ignore: vec![greedy],
            ..Protocol::default()
        });
        assert!(matches!(
            c.decode(r#"{"event":"delta","n":7,"delta":"Hi"}"#),
            Decoded::Answer(_)
        ));
    }
}
