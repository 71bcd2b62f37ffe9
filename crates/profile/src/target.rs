//! Where load may be sent, and how to speak to a chatbot whose frames differ from ours.
//!
//! A profile names the hosts it may target (`allowed`), so a typo in `--target` cannot
//! aim 25,000 sessions at production; loopback is always allowed. Credentials never live
//! in a profile: only where they come from (an environment variable, a file of tokens, or
//! the AWS credential chain for IAM-signed upgrades).

use std::collections::BTreeMap;
use std::path::PathBuf;

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
    /// Environment variable holding a bearer token, sent as `Authorization: Bearer …`:
    /// the short form of `[target.auth] kind = "bearer"`.
    #[serde(default)]
    pub token_env: Option<String>,
    /// How sessions get through the door (API Gateway's authorizers, IAM).
    #[serde(default)]
    pub auth: Option<Auth>,
}

/// How a session's WebSocket upgrade is authorised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// `Authorization: Bearer <token>`, the token read from an environment variable.
    Bearer { token_env: String },
    /// A token per session in the URL's query string (`?param=token`), as Lambda REQUEST
    /// authorizers read it (`route.request.querystring.*`: browsers cannot set WebSocket
    /// headers). Tokens come one per line from `tokens_file` (relative to the profile),
    /// assigned to sessions round-robin.
    Query { param: String, tokens_file: PathBuf },
    /// IAM authorization: the upgrade signed with AWS Signature Version 4 for the service
    /// `execute-api`, credentials from the AWS chain (environment, shared config and
    /// credentials files, `AWS_PROFILE`, SSO, container and instance roles).
    Sigv4 {
        /// Signature in the headers or as a presigned query string.
        #[serde(default)]
        sign: SignAt,
        /// The API's region; by default read from an `execute-api` host name
        /// (`{id}.execute-api.{region}.amazonaws.com`).
        #[serde(default)]
        region: Option<String>,
    },
}

/// Where a SigV4 signature goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignAt {
    /// `Authorization`, `X-Amz-Date` (and `X-Amz-Security-Token`) headers.
    #[default]
    Headers,
    /// `X-Amz-*` query parameters (a presigned URL, valid five minutes).
    Query,
}

/// The tokens of a tokens file (`[target.auth] tokens_file`, `surge mock --auth-tokens`):
/// one per line, blank lines and surrounding spaces ignored.
pub fn tokens_of(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The region of an API Gateway host name: `abc123.execute-api.eu-west-1.amazonaws.com`
/// gives `eu-west-1`.
pub fn execute_api_region(host: &str) -> Option<&str> {
    let rest = host.split_once(".execute-api.")?.1;
    let (region, domain) = rest.split_once('.')?;
    (domain.starts_with("amazonaws.com") && !region.is_empty()).then_some(region)
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

    /// The profile's headers followed by `extra` (a command's `--header` flags).
    pub fn headers_with(
        &self,
        extra: impl IntoIterator<Item = (String, String)>,
    ) -> Vec<(String, String)> {
        self.headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .chain(extra)
            .collect()
    }

    /// The environment variable the bearer token comes from: `override_var` (a run's
    /// `--token-env`) if given, else `token_env` or a bearer `[target.auth]`.
    pub fn token_var<'a>(&'a self, override_var: Option<&'a str>) -> Option<&'a str> {
        override_var
            .or(self.token_env.as_deref())
            .or(match &self.auth {
                Some(Auth::Bearer { token_env }) => Some(token_env.as_str()),
                _ => None,
            })
    }

    /// Problems with the auth settings, as `(key, message)` for the profile's diagnostics.
    pub fn auth_problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let is_var =
            |v: &str| !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if let Some(env) = &self.token_env {
            if !is_var(env) {
                out.push((
                    "target.token_env",
                    format!("expected the name of an environment variable, found \"{env}\""),
                ));
            }
            if self.auth.is_some() {
                out.push((
                    "target.token_env",
                    "give either token_env (a bearer token) or [target.auth], not both: \
                     token_env = \"VAR\" is the short form of kind = \"bearer\", token_env = \"VAR\""
                        .into(),
                ));
            }
        }
        match &self.auth {
            Some(Auth::Bearer { token_env }) if !is_var(token_env) => out.push((
                "target.auth.token_env",
                format!("expected the name of an environment variable, found \"{token_env}\""),
            )),
            Some(Auth::Query { param, tokens_file }) => {
                let plain = |c: char| c.is_ascii_alphanumeric() || "-_.~".contains(c);
                if param.is_empty() || !param.chars().all(plain) {
                    out.push((
                        "target.auth.param",
                        format!(
                            "expected a query parameter name (letters, digits, - _ . ~), \
                             found \"{param}\""
                        ),
                    ));
                }
                if tokens_file.as_os_str().is_empty() {
                    out.push((
                        "target.auth.tokens_file",
                        "name the file of tokens, one per line (never the tokens themselves)"
                            .into(),
                    ));
                }
            }
            Some(Auth::Sigv4 {
                region: Some(region),
                ..
            }) if region.is_empty()
                || !region
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') =>
            {
                out.push((
                    "target.auth.region",
                    format!("expected an AWS region such as \"us-east-1\", found \"{region}\""),
                ));
            }
            _ => {}
        }
        out
    }

    /// The bearer token, read from the variable [`Target::token_var`] names; `None` when
    /// no variable is named, an error when the named one is not set.
    pub fn token(&self, override_var: Option<&str>) -> Result<Option<String>, TokenError> {
        self.token_var(override_var)
            .map(|var| {
                std::env::var(var).map_err(|_| TokenError {
                    var: var.to_string(),
                })
            })
            .transpose()
    }
}

/// A bearer token that could not be read: its variable is not set (or not Unicode).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the token variable {var} is not set (credentials come only from the environment)")]
pub struct TokenError {
    /// The environment variable that was named.
    pub var: String,
}

/// Whether `host` (lower case, without brackets) is this machine: load sent there costs
/// nothing and needs no `target.allowed` entry.
pub fn is_loopback(host: &str) -> bool {
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
    scheme_and_host(url, ["ws", "wss"], "a ws:// or wss://")
}

/// Splits `scheme://[user@]host[:port]/path` into scheme and host, accepting only the
/// two `schemes`; `expected` names them in the errors (`"a ws:// or wss://"`).
pub(crate) fn scheme_and_host<'a>(
    url: &'a str,
    schemes: [&str; 2],
    expected: &str,
) -> Result<(&'a str, &'a str), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("expected {expected} URL, found \"{url}\""))?;
    if !schemes.contains(&scheme) {
        return Err(format!(
            "expected {expected} URL, found scheme \"{scheme}\""
        ));
    }
    let host_port = host_and_port(rest);
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

/// The `host[:port]` of what follows `scheme://`: up to the path, query or fragment,
/// without any `user:password@`.
pub(crate) fn host_and_port(after_scheme: &str) -> &str {
    let authority = after_scheme.split(['/', '?', '#']).next().unwrap_or("");
    authority.rsplit_once('@').map_or(authority, |(_, h)| h)
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
    /// JSON pointers to the usage a done frame reports: input and output tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<String>,
    pub token: FrameMatch,
    pub done: FrameMatch,
    /// Frames that fail a message; a chatbot that never fails one in a frame has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<FrameMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

/// What is wrong with a JSON pointer (`""` is the whole frame, anything else starts
/// with `/`), if anything.
pub(crate) fn pointer_problem(p: &str) -> Option<String> {
    (!p.is_empty() && !p.starts_with('/'))
        .then(|| format!("expected a JSON pointer such as \"/type\", found \"{p}\""))
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
        ];
        for (key, rule) in [("error", &self.error), ("throttle", &self.throttle)] {
            if let Some(rule) = rule {
                pointers.push((format!("{key}.pointer"), &rule.pointer));
            }
        }
        for (key, p) in [
            ("message_id", &self.message_id),
            ("token_text", &self.token_text),
            ("model", &self.model),
            ("input_tokens", &self.input_tokens),
            ("output_tokens", &self.output_tokens),
        ] {
            if let Some(p) = p {
                pointers.push((key.into(), p));
            }
        }
        for (key, p) in pointers {
            if let Some(problem) = pointer_problem(p) {
                out.push((key, problem));
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

    #[test]
    fn token_comes_from_the_named_variable() {
        let target = Target {
            token_env: Some("SURGE_TEST_TOKEN_THAT_IS_NEVER_SET".into()),
            ..Target::default()
        };
        assert_eq!(Target::default().token(None), Ok(None));
        assert_eq!(
            target.token_var(None),
            Some("SURGE_TEST_TOKEN_THAT_IS_NEVER_SET")
        );
        assert_eq!(target.token_var(Some("OTHER")), Some("OTHER"));
        let err = target.token(None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the token variable SURGE_TEST_TOKEN_THAT_IS_NEVER_SET is not set \
             (credentials come only from the environment)"
        );
        if let Ok(path) = std::env::var("PATH") {
            assert_eq!(target.token(Some("PATH")), Ok(Some(path)));
        }
    }
}
