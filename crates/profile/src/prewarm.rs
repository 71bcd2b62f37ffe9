//! The `[prewarm]` table: HTTP calls that warm the system's caches before a spike.
//!
//! The seed's Q19 (Layer 6) calls `pre_warm_for_release(asin, release_datetime)` an hour
//! before a major release: product details, similar items and the product FAQ go into the
//! cache with a 1–2 h TTL, lifting the hit rate to ~85 %. A rehearsal makes the same calls
//! against the system under test before the load starts (`surge prewarm`):
//!
//! ```toml
//! [prewarm]
//! timeout = "30s"                        # per call (default 30s)
//!
//! [[prewarm.calls]]
//! name = "One Piece vol. 110"
//! method = "POST"
//! path = "/admin/prewarm"                # relative to the target's HTTP base
//! body = { asin = "B0DFGT5L9Q", ttl = "2h", release = "2026-12-04T00:00:00+09:00" }
//! headers = { "X-Surge-Run" = "rehearsal" }
//! expect = 200                           # default: any 2xx
//! ```
//!
//! A call names either a `path` on the target's host (http/https derived from ws/wss) or
//! a full `url`, whose host must then pass `target.allowed` like the target itself.
//! Credentials never live here: the bearer token comes from `target.token_env`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::target::{Target, host_and_port, parse_ws_url, scheme_and_host};
use crate::units::Duration;

/// HTTP methods a pre-warm call may use.
pub const METHODS: [&str; 6] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"];

/// Headers that carry credentials: never in a profile.
const CREDENTIAL_HEADERS: [&str; 4] = [
    "authorization",
    "cookie",
    "x-api-key",
    "proxy-authorization",
];

/// The `[prewarm]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prewarm {
    /// How long one call may take, connection included, before it counts as failed.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    /// The calls, made in order.
    pub calls: Vec<PrewarmCall>,
}

fn default_timeout() -> Duration {
    Duration::from_secs_f64(30.0)
}

/// One HTTP call of the pre-warm step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrewarmCall {
    /// What the call is for, as printed (default: METHOD PATH).
    #[serde(default)]
    pub name: Option<String>,
    /// GET, POST, PUT, PATCH, DELETE or HEAD.
    pub method: String,
    /// Path on the target's HTTP base (`/admin/prewarm`); or give `url`.
    #[serde(default)]
    pub path: Option<String>,
    /// A full http(s) URL whose host `target.allowed` must match; or give `path`.
    #[serde(default)]
    pub url: Option<String>,
    /// JSON body (a TOML table or array), sent as `application/json`.
    #[serde(default)]
    pub body: Option<serde_json::Value>,
    /// Extra request headers (never credentials: use `target.token_env`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The status the call must answer with (default: any 2xx).
    #[serde(default)]
    pub expect: Option<u16>,
}

impl PrewarmCall {
    /// `name`, or `METHOD PATH`.
    pub fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            format!(
                "{} {}",
                self.method,
                self.path.as_deref().or(self.url.as_deref()).unwrap_or("")
            )
        })
    }

    /// The URL to call, given the target's HTTP base (`http://host:port`).
    pub fn url_on(&self, base: &str) -> String {
        match (&self.url, &self.path) {
            (Some(url), _) => url.clone(),
            (None, Some(path)) => format!("{}{path}", base.trim_end_matches('/')),
            (None, None) => base.to_string(),
        }
    }

    /// Whether `status` is what the call expects.
    pub fn accepts(&self, status: u16) -> bool {
        match self.expect {
            Some(e) => status == e,
            None => (200..300).contains(&status),
        }
    }
}

impl Prewarm {
    /// Problems, as (key, message) pairs relative to `[prewarm]`.
    pub fn problems(&self, target: &Target) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.timeout == Duration::ZERO {
            out.push(("timeout".into(), "must be longer than zero".into()));
        }
        if self.calls.is_empty() {
            out.push((
                "calls".into(),
                "at least one call is needed ([[prewarm.calls]])".into(),
            ));
        }
        for (i, call) in self.calls.iter().enumerate() {
            let key = |k: &str| format!("calls[{i}].{k}");
            if !METHODS.contains(&call.method.as_str()) {
                out.push((
                    key("method"),
                    format!(
                        "expected one of {}, found \"{}\"",
                        METHODS.join(", "),
                        call.method
                    ),
                ));
            }
            match (&call.path, &call.url) {
                (None, None) => out.push((
                    key("path"),
                    "required key is missing (a path such as \"/admin/prewarm\", or a url)".into(),
                )),
                (Some(_), Some(_)) => out.push((
                    key("url"),
                    "give either path (on the target's host) or url, not both".into(),
                )),
                (Some(p), None) if !p.starts_with('/') => out.push((
                    key("path"),
                    format!("expected a path starting with \"/\", found \"{p}\""),
                )),
                (None, Some(u)) => match parse_http_url(u) {
                    Ok((_, host)) if !target.allows(host) => out.push((
                        key("url"),
                        format!(
                            "host \"{host}\" is not loopback and matches no pattern in target.allowed"
                        ),
                    )),
                    Ok(_) => {}
                    Err(e) => out.push((key("url"), e)),
                },
                _ => {}
            }
            if call.body.is_some() && matches!(call.method.as_str(), "GET" | "HEAD") {
                out.push((
                    key("body"),
                    format!("a {} request has no body", call.method),
                ));
            }
            for name in call.headers.keys() {
                let lower = name.to_ascii_lowercase();
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_!#$%&'*+.^`|~".contains(c))
                {
                    out.push((
                        format!("calls[{i}].headers.{name}"),
                        "not a valid HTTP header name".into(),
                    ));
                } else if CREDENTIAL_HEADERS.contains(&lower.as_str()) {
                    out.push((
                        format!("calls[{i}].headers.{name}"),
                        "credentials never live in a profile: name the environment variable in target.token_env"
                            .into(),
                    ));
                }
            }
            if let Some(e) = call.expect {
                if !(100..=599).contains(&e) {
                    out.push((
                        key("expect"),
                        format!("expected an HTTP status between 100 and 599, found {e}"),
                    ));
                }
            }
        }
        out
    }
}

/// Splits `http(s)://host:port/path` into scheme and host, or says what is wrong.
pub fn parse_http_url(url: &str) -> Result<(&str, &str), String> {
    scheme_and_host(url, ["http", "https"], "an http:// or https://")
}

/// The HTTP base of a WebSocket URL: `wss://u:p@host:443/chat?x` → `https://host:443`.
/// Credentials in the URL are dropped; the path and query are not part of the base.
pub fn http_base(ws_url: &str) -> Result<String, String> {
    let (scheme, _) = parse_ws_url(ws_url)?;
    let host_port = host_and_port(&ws_url[scheme.len() + 3..]);
    let http = if scheme == "wss" { "https" } else { "http" };
    Ok(format!("{http}://{host_port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_base_follows_the_websocket_scheme_and_drops_credentials() {
        assert_eq!(
            http_base("ws://127.0.0.1:8787/chat").unwrap(),
            "http://127.0.0.1:8787"
        );
        assert_eq!(
            http_base("wss://user:secret@chat.staging.example.com/ws?token=x").unwrap(),
            "https://chat.staging.example.com"
        );
        assert_eq!(http_base("ws://[::1]:9/").unwrap(), "http://[::1]:9");
        assert!(http_base("http://host/").is_err());
    }

    #[test]
    fn expected_status_defaults_to_any_2xx() {
        let mut call = PrewarmCall {
            name: None,
            method: "POST".into(),
            path: Some("/admin/prewarm".into()),
            url: None,
            body: None,
            headers: BTreeMap::new(),
            expect: None,
        };
        assert!(call.accepts(200) && call.accepts(204) && !call.accepts(404));
        call.expect = Some(202);
        assert!(call.accepts(202) && !call.accepts(200));
        assert_eq!(
            call.url_on("http://127.0.0.1:9/"),
            "http://127.0.0.1:9/admin/prewarm"
        );
        assert_eq!(call.label(), "POST /admin/prewarm");
    }
}
