//! Where load may be sent, and how to speak to a chatbot whose frames differ from ours.
//!
//! A profile names the hosts it may target (`allowed`), so a typo in `--target` cannot
//! aim 25,000 sessions at production; loopback is always allowed. Credentials never live
//! in a profile: only the name of the environment variable that holds the token.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The system under test.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Default WebSocket URL (`ws://` or `wss://`); `surge run --target` overrides it.
    #[serde(default)]
    pub url: Option<String>,
    /// Host patterns load may be sent to: `staging.example.com`, `*.staging.example.com`.
    #[serde(default)]
    pub allowed: Vec<String>,
    /// Extra headers on the WebSocket upgrade.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Environment variable holding a bearer token, sent as `Authorization: Bearer …`.
    #[serde(default)]
    pub token_env: Option<String>,
}

impl Target {
    /// Whether `host` may be targeted: loopback always, otherwise an `allowed` pattern.
    pub fn allows(&self, host: &str) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        is_loopback(&host)
            || self
                .allowed
                .iter()
                .any(|pattern| host_matches(&pattern.to_ascii_lowercase(), &host))
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.len() > suffix.len() && host.ends_with(&format!(".{suffix}")),
        None => pattern == host,
    }
}

/// Splits `ws://host:port/path` into scheme and host, or says what is wrong.
pub fn parse_ws_url(url: &str) -> Result<(&str, &str), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("expected a ws:// or wss:// URL, found \"{url}\""))?;
    if scheme != "ws" && scheme != "wss" {
        return Err(format!(
            "expected a ws:// or wss:// URL, found scheme \"{scheme}\""
        ));
    }
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(stripped) = host_port.strip_prefix('[') {
        stripped.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    if host.is_empty() {
        return Err(format!("the URL \"{url}\" has no host"));
    }
    Ok((scheme, host))
}

/// How to talk to a chatbot whose frames are not surge's default JSON shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolMapping {
    /// Outgoing message as a JSON template; placeholders `{session}`, `{message}`,
    /// `{store}`, `{text}` are replaced by JSON-escaped values.
    pub send: String,
    /// How answers are matched to messages.
    pub correlate: Correlate,
    /// JSON pointer to the message id in incoming frames (needed for `correlate = "id"`).
    #[serde(default)]
    pub message_id: Option<String>,
    /// JSON pointer to the token text in token frames.
    #[serde(default)]
    pub token_text: Option<String>,
    /// JSON pointer to the model name in done frames, for per-model tags.
    #[serde(default)]
    pub model: Option<String>,
    pub token: FrameMatch,
    pub done: FrameMatch,
    pub error: FrameMatch,
    #[serde(default)]
    pub throttle: Option<FrameMatch>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Correlate {
    Id,
    Order,
}

/// A frame is of a kind when the value at `pointer` equals `equals`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameMatch {
    pub pointer: String,
    pub equals: String,
}

/// Placeholders the `send` template may use.
pub const SEND_PLACEHOLDERS: [&str; 4] = ["{session}", "{message}", "{store}", "{text}"];

impl ProtocolMapping {
    /// Problems with the mapping, as (key, message) pairs relative to `[protocol]`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut pointers: Vec<(String, &str)> = vec![
            ("token.pointer".into(), &self.token.pointer),
            ("done.pointer".into(), &self.done.pointer),
            ("error.pointer".into(), &self.error.pointer),
        ];
        if let Some(t) = &self.throttle {
            pointers.push(("throttle.pointer".into(), &t.pointer));
        }
        for (key, p) in [
            ("message_id", &self.message_id),
            ("token_text", &self.token_text),
            ("model", &self.model),
        ] {
            if let Some(p) = p {
                pointers.push((key.into(), p));
            }
        }
        for (key, p) in pointers {
            if !p.is_empty() && !p.starts_with('/') {
                out.push((
                    key,
                    format!("expected a JSON pointer such as \"/type\", found \"{p}\""),
                ));
            }
        }
        if self.correlate == Correlate::Id && self.message_id.is_none() {
            out.push((
                "message_id".into(),
                "correlate = \"id\" needs a JSON pointer to the message id in incoming frames"
                    .into(),
            ));
        }
        let sample = SEND_PLACEHOLDERS
            .iter()
            .fold(self.send.clone(), |s, p| s.replace(p, "x"));
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&sample) {
            out.push((
                "send".into(),
                format!("the template is not valid JSON once placeholders are filled in: {e}"),
            ));
        }
        if !self.send.contains("{text}") {
            out.push((
                "send".into(),
                "the template must contain the {text} placeholder".into(),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_always_allowed_and_patterns_match() {
        let t = Target {
            allowed: vec!["*.staging.example.com".into(), "chat.example.org".into()],
            ..Default::default()
        };
        for ok in [
            "127.0.0.1",
            "127.3.0.9",
            "localhost",
            "[::1]",
            "a.staging.example.com",
            "chat.example.org",
        ] {
            assert!(t.allows(ok), "{ok}");
        }
        for bad in [
            "staging.example.com",
            "evil.com",
            "chat.example.org.evil.com",
            "10.0.0.1",
        ] {
            assert!(!t.allows(bad), "{bad}");
        }
    }

    #[test]
    fn parses_ws_urls() {
        assert_eq!(
            parse_ws_url("ws://127.0.0.1:8080/chat").unwrap(),
            ("ws", "127.0.0.1")
        );
        assert_eq!(
            parse_ws_url("wss://u:p@host.example/x?y").unwrap(),
            ("wss", "host.example")
        );
        assert_eq!(parse_ws_url("ws://[::1]:9/").unwrap(), ("ws", "::1"));
        assert!(parse_ws_url("http://host/").is_err());
        assert!(parse_ws_url("ws:///chat").is_err());
    }
}
