//! `[protocol]`: the chatbot's frame shape, and what to make of frames nobody asked for.
//!
//! One table serves both shapes. With `send`, `correlate`, `token` and `done` it describes
//! a shape of the chatbot's own ([`ProtocolMapping`]); without them the target speaks
//! surge's default shape. Either way it may name frames to drop unseen (`ignore`), say
//! whether frames that answer no message are counted or are errors (`unsolicited`), and
//! keep idle connections open (`keepalive`): a chatbot behind API Gateway greets, shows
//! typing, pushes, and has its idle connections closed after 10 minutes.

use serde::{Deserialize, Serialize};

use crate::target::{Correlate, FrameMatch, ProtocolMapping, pointer_problem};
use crate::units::Duration;

/// The `[protocol]` table, resolved.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Protocol {
    /// The chatbot's own frame shape; `None`: surge's default shape.
    #[serde(flatten)]
    pub mapping: Option<ProtocolMapping>,
    /// Frames dropped without a trace (typing indicators, pongs): neither answers nor
    /// unsolicited. Only frames that match no answer rule are looked at.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<FrameMatch>,
    pub unsolicited: Unsolicited,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keepalive: Option<Keepalive>,
}

/// What a frame that answers no message is: counted (`count`), or a protocol violation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unsolicited {
    #[default]
    Count,
    Error,
}

/// Something sent on a connection the session has sent nothing on for `every`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(into = "KeepaliveTable")]
pub struct Keepalive {
    /// Longer than zero.
    pub every: Duration,
    pub action: KeepaliveAction,
}

/// What a keepalive sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeepaliveAction {
    /// This text frame (e.g. `{"action":"ping"}` to a route that answers it).
    Send(String),
    /// A WebSocket ping.
    Ping,
}

/// `keepalive = { every = "5m", send = '…' }` or `{ every = "5m", ping = true }`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeepaliveTable {
    every: Duration,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    send: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    ping: bool,
}

impl From<Keepalive> for KeepaliveTable {
    fn from(k: Keepalive) -> Self {
        let (send, ping) = match k.action {
            KeepaliveAction::Send(text) => (Some(text), false),
            KeepaliveAction::Ping => (None, true),
        };
        Self {
            every: k.every,
            send,
            ping,
        }
    }
}

/// `[protocol]` as written: every key optional, checked together by [`ProtocolTable::resolve`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolTable {
    #[serde(default)]
    send: Option<String>,
    #[serde(default)]
    correlate: Option<Correlate>,
    #[serde(default)]
    message_id: Option<String>,
    #[serde(default)]
    token_text: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    input_tokens: Option<String>,
    #[serde(default)]
    output_tokens: Option<String>,
    #[serde(default)]
    token: Option<FrameMatch>,
    #[serde(default)]
    done: Option<FrameMatch>,
    #[serde(default)]
    error: Option<FrameMatch>,
    #[serde(default)]
    throttle: Option<FrameMatch>,
    #[serde(default)]
    ignore: Vec<FrameMatch>,
    #[serde(default)]
    unsolicited: Unsolicited,
    #[serde(default)]
    keepalive: Option<KeepaliveTable>,
}

/// What to write for each key a frame shape of its own needs.
const MAPPING_NEEDS: [(&str, &str); 4] = [
    (
        "send",
        "send = '{\"action\":\"sendMessage\",\"text\":\"{text}\"}'",
    ),
    ("correlate", "correlate = \"id\" (or \"order\")"),
    (
        "token",
        "token = { pointer = \"/type\", equals = \"token\" }",
    ),
    ("done", "done = { pointer = \"/type\", equals = \"done\" }"),
];

impl ProtocolTable {
    /// The resolved table, or every problem as (key relative to `[protocol]`, message).
    pub fn resolve(self) -> Result<Protocol, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let mapping = self.mapping(&mut problems);
        for (i, rule) in self.ignore.iter().enumerate() {
            if let Some(p) = pointer_problem(&rule.pointer) {
                problems.push((format!("ignore[{i}].pointer"), p));
            }
        }
        let keepalive = self.keepalive.and_then(|k| keepalive(k, &mut problems));
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Protocol {
            mapping,
            ignore: self.ignore,
            unsolicited: self.unsolicited,
            keepalive,
        })
    }

    /// The frame shape of the chatbot's own, when any of its keys is given.
    fn mapping(&self, problems: &mut Vec<(String, String)>) -> Option<ProtocolMapping> {
        let given: Vec<&str> = [
            ("send", self.send.is_some()),
            ("correlate", self.correlate.is_some()),
            ("message_id", self.message_id.is_some()),
            ("token_text", self.token_text.is_some()),
            ("model", self.model.is_some()),
            ("input_tokens", self.input_tokens.is_some()),
            ("output_tokens", self.output_tokens.is_some()),
            ("token", self.token.is_some()),
            ("done", self.done.is_some()),
            ("error", self.error.is_some()),
            ("throttle", self.throttle.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, given)| given.then_some(k))
        .collect();
        let first = given.first()?;
        let (Some(send), Some(correlate), Some(token), Some(done)) = (
            self.send.clone(),
            self.correlate,
            self.token.clone(),
            self.done.clone(),
        ) else {
            for (key, write) in MAPPING_NEEDS {
                if !given.contains(&key) {
                    problems.push((
                        key.to_string(),
                        format!(
                            "required for a frame shape of the chatbot's own (protocol.{first} \
                             is given): write {write}; without send, correlate, token and done \
                             the target speaks surge's default shape"
                        ),
                    ));
                }
            }
            return None;
        };
        let m = ProtocolMapping {
            send,
            correlate,
            message_id: self.message_id.clone(),
            token_text: self.token_text.clone(),
            model: self.model.clone(),
            input_tokens: self.input_tokens.clone(),
            output_tokens: self.output_tokens.clone(),
            token,
            done,
            error: self.error.clone(),
            throttle: self.throttle.clone(),
        };
        problems.extend(m.problems());
        Some(m)
    }
}

fn keepalive(k: KeepaliveTable, problems: &mut Vec<(String, String)>) -> Option<Keepalive> {
    if k.every == Duration::ZERO {
        problems.push((
            "keepalive.every".into(),
            "must be longer than zero: write every = \"5m\" (API Gateway closes connections \
             idle for 10 minutes)"
                .into(),
        ));
    }
    let action = match (k.send, k.ping) {
        (Some(_), true) => {
            problems.push((
                "keepalive".into(),
                "give send = '…' (a text frame) or ping = true (a WebSocket ping), not both".into(),
            ));
            return None;
        }
        (None, false) => {
            problems.push((
                "keepalive".into(),
                "say what to send: send = '{\"action\":\"ping\"}' (a text frame) or ping = true \
                 (a WebSocket ping)"
                    .into(),
            ));
            return None;
        }
        (Some(text), false) if text.trim().is_empty() => {
            problems.push((
                "keepalive.send".into(),
                "the keepalive frame is empty: write send = '{\"action\":\"ping\"}' or ping = true"
                    .into(),
            ));
            return None;
        }
        (Some(text), false) => KeepaliveAction::Send(text),
        (None, true) => KeepaliveAction::Ping,
    };
    Some(Keepalive {
        every: k.every,
        action,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(toml: &str) -> Result<Protocol, Vec<(String, String)>> {
        toml::from_str::<ProtocolTable>(toml).unwrap().resolve()
    }

    fn keys(problems: &[(String, String)]) -> Vec<&str> {
        problems.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn without_a_shape_the_default_one_is_spoken() {
        let p = table(
            r#"
ignore = [ { pointer = "/type", equals = "typing" } ]
unsolicited = "error"
keepalive = { every = "5m", send = '{"action":"ping"}' }
"#,
        )
        .unwrap();
        assert_eq!(p.mapping, None);
        assert_eq!(p.unsolicited, Unsolicited::Error);
        assert_eq!(p.ignore[0].equals, "typing");
        let k = p.keepalive.clone().unwrap();
        assert_eq!(k.every, "5m".parse().unwrap());
        assert_eq!(
            k.action,
            KeepaliveAction::Send(r#"{"action":"ping"}"#.into())
        );
        // The resolved profile shows the table as it was written.
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["keepalive"]["every"], "5m");
        assert_eq!(json["keepalive"]["send"], r#"{"action":"ping"}"#);
        assert!(json.get("ping").is_none() && json.get("send").is_none());
        assert_eq!(Protocol::default().unsolicited, Unsolicited::Count);
        let ping = table(r#"keepalive = { every = "30s", ping = true }"#).unwrap();
        assert_eq!(ping.keepalive.unwrap().action, KeepaliveAction::Ping);
    }

    #[test]
    fn a_shape_of_its_own_needs_its_four_keys_and_no_error_rule() {
        let p = table(
            r#"
send = '{"action":"sendMessage","q":"{text}"}'
correlate = "order"
token = { pointer = "/type", equals = "chunk" }
done = { pointer = "/type", equals = "end" }
"#,
        )
        .unwrap();
        let m = p.mapping.unwrap();
        assert_eq!((m.error, m.throttle), (None, None));

        let e = table(r#"send = '{"q":"{text}"}'"#).unwrap_err();
        assert_eq!(keys(&e), ["correlate", "token", "done"]);
        assert!(e[0].1.contains("protocol.send is given"), "{e:?}");
        assert!(e[2].1.contains("done = { pointer"), "{e:?}");
        let e = table(r#"error = { pointer = "/kind", equals = "fail" }"#).unwrap_err();
        assert_eq!(keys(&e), ["send", "correlate", "token", "done"]);
        // The mapping's own checks still run.
        let e = table(
            r#"
send = '{"q":"x"}'
correlate = "id"
token = { pointer = "type", equals = "chunk" }
done = { pointer = "/type", equals = "end" }
"#,
        )
        .unwrap_err();
        assert_eq!(keys(&e), ["token.pointer", "message_id", "send"]);
    }

    #[test]
    fn bad_ignore_rules_and_keepalives_name_their_key() {
        let e = table(r#"ignore = [ { pointer = "/a", equals = "x" }, { pointer = "type", equals = "typing" } ]"#)
            .unwrap_err();
        assert_eq!(keys(&e), ["ignore[1].pointer"]);
        for (toml, key, says) in [
            (
                r#"keepalive = { every = "0", ping = true }"#,
                "keepalive.every",
                "longer than zero",
            ),
            (r#"keepalive = { every = "1m" }"#, "keepalive", "send = '"),
            (
                r#"keepalive = { every = "1m", ping = false }"#,
                "keepalive",
                "ping = true",
            ),
            (
                r#"keepalive = { every = "1m", ping = true, send = "x" }"#,
                "keepalive",
                "not both",
            ),
            (
                r#"keepalive = { every = "1m", send = " " }"#,
                "keepalive.send",
                "empty",
            ),
        ] {
            let e = table(toml).unwrap_err();
            assert_eq!(keys(&e), [key], "{toml}");
            assert!(e[0].1.contains(says), "{toml}: {e:?}");
        }
        assert!(toml::from_str::<ProtocolTable>(r#"unsolicited = "maybe""#).is_err());
        assert!(
            toml::from_str::<ProtocolTable>(r#"keepalive = { every = "1m", pong = true }"#)
                .is_err()
        );
    }
}
