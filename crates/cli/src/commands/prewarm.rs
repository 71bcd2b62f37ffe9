//! `surge prewarm PROFILE --target URL`: the profile's `[prewarm]` HTTP calls, before a spike.
//!
//! Argument parsing and wiring only; the calls are described by `surge_profile::prewarm`.
//! The calls go to the target's own host (http/https from ws/wss) or to a URL whose host
//! the profile allows, with the target's headers and bearer token; redirects are not
//! followed, so an answer cannot send the token elsewhere. Nothing printed carries a
//! credential: URLs are redacted and header values are never shown.

use std::path::PathBuf;
use std::time::Instant;

use surge_profile::Profile;
use surge_profile::prewarm::{Prewarm, http_base, parse_http_url};
use surge_profile::target::parse_ws_url;

use super::run::parse_header;
use crate::{Failure, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The profile whose [prewarm] calls are made (a TOML file).
    pub profile: PathBuf,
    /// The chatbot's WebSocket URL, ws://HOST:PORT/PATH or wss://… (default: the
    /// profile's target.url). The calls go to its host over http (ws) or https (wss); the
    /// host must be loopback or match the profile's target.allowed.
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// Extra header on every call (repeatable). Never put secrets here: use --token-env.
    #[arg(long = "header", value_name = "K:V")]
    pub headers: Vec<String>,
    /// Environment variable holding a bearer token (default: the profile's
    /// target.token_env); sent as Authorization: Bearer, never printed.
    #[arg(long, value_name = "VAR")]
    pub token_env: Option<String>,
    /// Check the target, the token and the calls and print what would be called, without
    /// calling anything (what a rehearsal script runs before it starts). A profile without
    /// [prewarm] passes, with nothing to call.
    #[arg(long)]
    pub dry_run: bool,
}

/// What one call came to.
struct Made {
    ok: bool,
    line: String,
}

pub async fn run(args: &Args) -> Result<Outcome, Failure> {
    let profile = Profile::load(&args.profile)?;
    let target = crate::commands::run::target_of(args.target.as_deref(), &profile, &args.profile)?;
    let (_, host) = parse_ws_url(&target).map_err(|e| Failure::Usage(format!("--target: {e}")))?;
    if !profile.target.allows(host) {
        return Err(Failure::Usage(format!(
            "refusing to pre-warm \"{host}\": it is not loopback and matches no pattern in \
             target.allowed of {} (add it there if this target is meant to take load)",
            args.profile.display()
        )));
    }
    let base = http_base(&target).map_err(|e| Failure::Usage(format!("--target: {e}")))?;
    let extra = args
        .headers
        .iter()
        .map(|h| parse_header(h))
        .collect::<Result<Vec<_>, _>>()?;
    let headers = profile.target.headers_with(extra);
    let token = profile
        .target
        .token(args.token_env.as_deref())
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let Some(prewarm) = profile.prewarm.clone() else {
        if args.dry_run {
            // What a rehearsal script asks first: the target and token are fine, and
            // there is simply nothing to call.
            println!(
                "pre-warm: {} has no [prewarm] table; nothing to call (target {} allowed)",
                args.profile.display(),
                surge_record_redact(&base)
            );
            return Ok(Outcome::Success);
        }
        return Err(Failure::Usage(format!(
            "{} has no [prewarm] table: add [[prewarm.calls]] with method and path (see `surge help prewarm`)",
            args.profile.display()
        )));
    };
    // Calls with their own URL were checked against target.allowed when the profile
    // loaded; check again here, where the request is made.
    for call in &prewarm.calls {
        if let Some(url) = &call.url {
            let (_, h) = parse_http_url(url).map_err(Failure::Usage)?;
            if !profile.target.allows(h) {
                return Err(Failure::Usage(format!(
                    "refusing to call \"{h}\": not loopback and not in target.allowed"
                )));
            }
        }
    }

    println!(
        "pre-warm: {} call{} on {} (profile {}{})",
        prewarm.calls.len(),
        if prewarm.calls.len() == 1 { "" } else { "s" },
        surge_record_redact(&base),
        profile.name,
        if token.is_some() {
            ", with bearer token"
        } else {
            ""
        }
    );
    if args.dry_run {
        for call in &prewarm.calls {
            println!(
                "  would call  {:<6} {}  ({})",
                call.method,
                surge_record_redact(&call.url_on(&base)),
                call.label()
            );
        }
        return Ok(Outcome::Success);
    }
    let made = make_calls(&prewarm, &base, &headers, token.as_deref()).await?;
    let failed = made.iter().filter(|m| !m.ok).count();
    for m in &made {
        println!("{}", m.line);
    }
    if failed > 0 {
        return Err(Failure::could_not_run(format!(
            "{failed} of {} pre-warm call{} failed",
            made.len(),
            if made.len() == 1 { "" } else { "s" }
        )));
    }
    println!("pre-warm done");
    Ok(Outcome::Success)
}

/// A URL with any credentials removed, for printing.
fn surge_record_redact(url: &str) -> String {
    surge_record::redact_url(url)
}

async fn make_calls(
    prewarm: &Prewarm,
    base: &str,
    headers: &[(String, String)],
    token: Option<&str>,
) -> Result<Vec<Made>, Failure> {
    let client = reqwest::Client::builder()
        .timeout(prewarm.timeout.to_std())
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("surge/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Failure::could_not_run(format!("HTTP client: {e}")))?;
    let mut made = Vec::new();
    for call in &prewarm.calls {
        let url = call.url_on(base);
        let shown = surge_record_redact(&url);
        let method = reqwest::Method::from_bytes(call.method.as_bytes())
            .map_err(|e| Failure::Usage(format!("method {}: {e}", call.method)))?;
        let mut req = client.request(method, &url);
        for (k, v) in headers.iter().map(|(k, v)| (k, v)).chain(&call.headers) {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(body) = &call.body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let started = Instant::now();
        let result = req.send().await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let (ok, outcome) = match result {
            Ok(resp) => {
                let status = resp.status();
                let ok = call.accepts(status.as_u16());
                let mut s = status.to_string();
                if !ok {
                    let expected = call
                        .expect
                        .map_or_else(|| "2xx".to_string(), |e| e.to_string());
                    let text = resp.text().await.unwrap_or_default();
                    let snippet: String = text.trim().chars().take(200).collect();
                    s = format!("{s}, expected {expected}");
                    if !snippet.is_empty() {
                        s = format!("{s}: {snippet}");
                    }
                }
                (ok, s)
            }
            // The error's own text would repeat the URL: it is shown redacted already.
            Err(e) => (false, format!("failed: {}", describe(&e))),
        };
        made.push(Made {
            ok,
            line: format!(
                "  {}  {:<6} {}  {}  {:.0} ms  ({})",
                if ok { "ok  " } else { "FAIL" },
                call.method,
                shown,
                outcome,
                ms,
                call.label()
            ),
        });
    }
    Ok(made)
}

/// Why a request failed, without its URL.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_redirect() {
        "redirect"
    } else {
        "request error"
    };
    let mut s = kind.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s = format!("{s}: {inner}");
        source = inner.source();
    }
    s
}
