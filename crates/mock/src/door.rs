//! The chat endpoint's door, kept the way API Gateway keeps it when asked to
//! (`surge mock --auth …`), so a rehearsal's credentials are exercised offline too.
//!
//! - `sigv4`: IAM authorization. Each upgrade's Signature Version 4 (in the headers or a
//!   presigned query string) must be the signature AWS's own signer (`aws-sigv4`) gives the
//!   same request with the secret of the key it names, for `execute-api`, in the region
//!   the mock is told (any region when none is), dated within five minutes of now and,
//!   presigned, not past its expiry. The keys are the mock's own AWS credentials from its
//!   environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`).
//!   Refused: HTTP 403, as API Gateway answers an IAM failure.
//! - `query:PARAM`: a Lambda REQUEST authorizer reading `?PARAM=token`; the token must be
//!   one of a file's lines. Refused: HTTP 401 without a token, 403 with a wrong one.
//!
//! Nothing presented at the door is logged or counted by value.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use http::{HeaderMap, Uri};

/// How far a signature's date may be from the mock's clock.
const MAX_SKEW: Duration = Duration::from_secs(300);
/// The service IAM signs WebSocket upgrades for.
const EXECUTE_API: &str = "execute-api";

/// Who may open a chat WebSocket.
#[derive(Default)]
pub enum Door {
    /// Anyone (the default, like a route without authorization).
    #[default]
    Open,
    Sigv4 {
        key: SigningKey,
        /// The region signatures must name; `None` takes any.
        region: Option<String>,
    },
    Query {
        param: String,
        tokens: HashSet<String>,
    },
}

impl std::fmt::Debug for Door {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Open => f.write_str("Open"),
            Self::Sigv4 { region, .. } => write!(f, "Sigv4 {{ region: {region:?} }}"),
            Self::Query { param, tokens } => {
                write!(f, "Query {{ param: {param:?}, tokens: {} }}", tokens.len())
            }
        }
    }
}

/// The one key the mock accepts signatures of.
pub struct SigningKey {
    access_key_id: String,
    secret: String,
    session_token: Option<String>,
}

/// Why an upgrade is refused: the HTTP status and a reason that names no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: &'static str,
}

fn refuse(status: u16, reason: &'static str) -> Refusal {
    Refusal { status, reason }
}

impl Door {
    /// Parses `--auth`: `sigv4`, `sigv4:REGION` or `query:PARAM` (with `tokens_file`).
    pub fn parse(spec: &str, tokens_file: Option<&Path>) -> Result<Self, String> {
        let (kind, arg) = spec.split_once(':').unwrap_or((spec, ""));
        match kind {
            "none" => Ok(Self::Open),
            "sigv4" => {
                let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
                let (Some(access_key_id), Some(secret)) =
                    (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
                else {
                    return Err(
                        "--auth sigv4 accepts the signatures of the mock's own AWS key: \
                                set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and \
                                AWS_SESSION_TOKEN for temporary credentials) in its environment"
                            .into(),
                    );
                };
                Ok(Self::Sigv4 {
                    key: SigningKey {
                        access_key_id,
                        secret,
                        session_token: var("AWS_SESSION_TOKEN"),
                    },
                    region: (!arg.is_empty()).then(|| arg.to_string()),
                })
            }
            "query" if !arg.is_empty() => {
                let file = tokens_file.ok_or_else(|| {
                    format!("--auth query:{arg} checks tokens from a file: give --auth-tokens FILE")
                })?;
                let text = std::fs::read_to_string(file)
                    .map_err(|e| format!("--auth-tokens {}: {e}", file.display()))?;
                let tokens: HashSet<String> = surge_profile::target::tokens_of(&text)
                    .into_iter()
                    .collect();
                if tokens.is_empty() {
                    return Err(format!(
                        "--auth-tokens {}: no token in it (one per line)",
                        file.display()
                    ));
                }
                Ok(Self::Query {
                    param: arg.to_string(),
                    tokens,
                })
            }
            _ => Err(format!(
                "--auth {spec}: expected none, sigv4, sigv4:REGION or query:PARAM"
            )),
        }
    }

    /// Lets an upgrade through, or says why not.
    pub fn check(&self, uri: &Uri, headers: &HeaderMap, now: SystemTime) -> Result<(), Refusal> {
        match self {
            Self::Open => Ok(()),
            Self::Query { param, tokens } => {
                let presented = query_pairs(uri).find(|(k, _)| k == param).map(|(_, v)| v);
                match presented {
                    None => Err(refuse(401, "no token")),
                    Some(t) if tokens.contains(&t) => Ok(()),
                    Some(_) => Err(refuse(403, "token not accepted")),
                }
            }
            Self::Sigv4 { key, region } => verify_sigv4(key, region.as_deref(), uri, headers, now),
        }
    }
}

/// The query string's pairs, percent-decoded.
fn query_pairs(uri: &Uri) -> impl Iterator<Item = (String, String)> + '_ {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(k), decode(v))
        })
}

/// What a SigV4 signature says about itself.
struct Presented {
    credential: String,
    signed_headers: Vec<String>,
    signature: String,
    date: String,
    expires: Option<u64>,
    token: Option<String>,
}

fn presented(uri: &Uri, headers: &HeaderMap) -> Result<Presented, Refusal> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(auth) = header("authorization") {
        let rest = auth
            .strip_prefix("AWS4-HMAC-SHA256 ")
            .ok_or(refuse(403, "not a SigV4 Authorization header"))?;
        let mut credential = None;
        let mut signed = None;
        let mut signature = None;
        for part in rest.split(',') {
            match part.trim().split_once('=') {
                Some(("Credential", v)) => credential = Some(v.to_string()),
                Some(("SignedHeaders", v)) => signed = Some(v.to_string()),
                Some(("Signature", v)) => signature = Some(v.to_string()),
                _ => {}
            }
        }
        let malformed = refuse(403, "malformed Authorization header");
        return Ok(Presented {
            credential: credential.ok_or(malformed.clone())?,
            signed_headers: signed
                .ok_or(malformed.clone())?
                .split(';')
                .map(str::to_owned)
                .collect(),
            signature: signature.ok_or(malformed)?,
            date: header("x-amz-date")
                .ok_or(refuse(403, "no X-Amz-Date"))?
                .to_string(),
            expires: None,
            token: header("x-amz-security-token").map(str::to_owned),
        });
    }
    let q: Vec<(String, String)> = query_pairs(uri).collect();
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let signature = get("X-Amz-Signature").ok_or(refuse(403, "no signature"))?;
    let malformed = refuse(403, "malformed presigned URL");
    Ok(Presented {
        credential: get("X-Amz-Credential").ok_or(malformed.clone())?,
        signed_headers: get("X-Amz-SignedHeaders")
            .ok_or(malformed.clone())?
            .split(';')
            .map(str::to_owned)
            .collect(),
        signature,
        date: get("X-Amz-Date").ok_or(malformed.clone())?,
        expires: Some(
            get("X-Amz-Expires")
                .and_then(|e| e.parse().ok())
                .ok_or(malformed)?,
        ),
        token: get("X-Amz-Security-Token"),
    })
}

/// `20261204T153400Z` as a time.
fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (h, mi, se) = (n(9..11)?, n(11..13)?, n(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    let (y2, m2) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + se;
    u64::try_from(secs)
        .ok()
        .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
}

fn verify_sigv4(
    key: &SigningKey,
    region: Option<&str>,
    uri: &Uri,
    headers: &HeaderMap,
    now: SystemTime,
) -> Result<(), Refusal> {
    let p = presented(uri, headers)?;
    let scope: Vec<&str> = p.credential.split('/').collect();
    let [akid, date, scope_region, service, "aws4_request"] = scope[..] else {
        return Err(refuse(403, "malformed credential scope"));
    };
    if akid != key.access_key_id {
        return Err(refuse(403, "unknown access key"));
    }
    if service != EXECUTE_API || region.is_some_and(|r| r != scope_region) {
        return Err(refuse(403, "signed for another service or region"));
    }
    if !p.date.starts_with(date) {
        return Err(refuse(403, "credential date and signing date disagree"));
    }
    if p.token != key.session_token {
        return Err(refuse(403, "session token missing or wrong"));
    }
    let signed_at = parse_amz_date(&p.date).ok_or(refuse(403, "malformed X-Amz-Date"))?;
    let ahead = signed_at.duration_since(now).unwrap_or_default();
    let behind = now.duration_since(signed_at).unwrap_or_default();
    match p.expires {
        None if ahead > MAX_SKEW || behind > MAX_SKEW => {
            return Err(refuse(403, "signature date too far from now"));
        }
        Some(_) if ahead > MAX_SKEW => return Err(refuse(403, "signed in the future")),
        Some(e) if behind > Duration::from_secs(e) => {
            return Err(refuse(403, "presigned URL expired"));
        }
        _ => {}
    }

    // Sign the same request with the key's secret and compare.
    let identity = Credentials::new(
        &key.access_key_id,
        &key.secret,
        key.session_token.clone(),
        None,
        "surge-mock",
    )
    .into();
    let mut settings = SigningSettings::default();
    let unsigned_uri = if let Some(expires) = p.expires {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(expires));
        // The signer adds its own X-Amz-* parameters; sign the rest of the query.
        strip_signing_params(uri)
    } else {
        uri.to_string()
    };
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(scope_region)
        .name(EXECUTE_API)
        .time(signed_at)
        .settings(settings)
        .build()
        .map_err(|_| refuse(403, "cannot sign"))?
        .into();
    // The signer adds X-Amz-Date and the session token itself.
    let signed: Vec<(&str, &str)> = p
        .signed_headers
        .iter()
        .filter(|h| !matches!(h.as_str(), "x-amz-date" | "x-amz-security-token"))
        .map(|h| {
            let v = headers
                .get(h.as_str())
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            (h.as_str(), v)
        })
        .collect();
    let signable = SignableRequest::new(
        "GET",
        unsigned_uri.as_str(),
        signed.into_iter(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|_| refuse(403, "cannot sign"))?;
    let (_, expected) = sign(signable, &params)
        .map_err(|_| refuse(403, "cannot sign"))?
        .into_parts();
    if constant_time_eq(expected.as_bytes(), p.signature.as_bytes()) {
        Ok(())
    } else {
        Err(refuse(403, "signature does not match"))
    }
}

/// `uri` without the query parameters a presigned URL's signer adds.
fn strip_signing_params(uri: &Uri) -> String {
    let kept: Vec<&str> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("X-Amz-"))
        .collect();
    let path = uri.path();
    let authority = uri
        .authority()
        .map(|a| format!("http://{a}"))
        .unwrap_or_default();
    if kept.is_empty() {
        format!("{authority}{path}")
    } else {
        format!("{authority}{path}?{}", kept.join("&"))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(token: Option<&str>) -> SigningKey {
        SigningKey {
            access_key_id: "AKIDMOCK".into(),
            secret: "mock-secret".into(),
            session_token: token.map(str::to_owned),
        }
    }

    /// Signs like a client would (aws-sigv4), at `when`.
    fn signed(
        secret: &str,
        token: Option<&str>,
        region: &str,
        query: bool,
        when: SystemTime,
    ) -> (Uri, HeaderMap) {
        let identity =
            Credentials::new("AKIDMOCK", secret, token.map(str::to_owned), None, "t").into();
        let mut settings = SigningSettings::default();
        if query {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(Duration::from_secs(300));
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(EXECUTE_API)
            .time(when)
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let mut req = http::Request::builder()
            .uri("http://127.0.0.1:9/chat?user=7")
            .header("host", "127.0.0.1:9")
            .body(())
            .unwrap();
        let signable = SignableRequest::new(
            "GET",
            "http://127.0.0.1:9/chat?user=7",
            std::iter::once(("host", "127.0.0.1:9")),
            SignableBody::Bytes(&[]),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        instructions.apply_to_request_http1x(&mut req);
        let (parts, ()) = req.into_parts();
        (parts.uri, parts.headers)
    }

    #[test]
    fn sigv4_lets_the_right_signature_in_and_keeps_the_rest_out() {
        let now = SystemTime::now();
        let door = Door::Sigv4 {
            key: key(Some("tok")),
            region: Some("eu-west-1".into()),
        };
        for query in [false, true] {
            let (uri, h) = signed("mock-secret", Some("tok"), "eu-west-1", query, now);
            assert_eq!(door.check(&uri, &h, now), Ok(()), "query {query}");
            let (uri, h) = signed("wrong", Some("tok"), "eu-west-1", query, now);
            assert_eq!(door.check(&uri, &h, now).unwrap_err().status, 403);
            let (uri, h) = signed("mock-secret", Some("tok"), "us-east-1", query, now);
            assert!(door.check(&uri, &h, now).is_err());
            let (uri, h) = signed("mock-secret", None, "eu-west-1", query, now);
            assert!(door.check(&uri, &h, now).is_err(), "no session token");
            let old = now - Duration::from_secs(600);
            let (uri, h) = signed("mock-secret", Some("tok"), "eu-west-1", query, old);
            assert!(door.check(&uri, &h, now).is_err(), "expired or skewed");
        }
        assert_eq!(
            door.check(&"http://h/chat".parse().unwrap(), &HeaderMap::new(), now),
            Err(refuse(403, "no signature"))
        );
    }

    #[test]
    fn query_tokens_come_from_the_list() {
        let door = Door::Query {
            param: "token".into(),
            tokens: ["a+b/c".to_string()].into_iter().collect(),
        };
        let h = HeaderMap::new();
        let now = SystemTime::now();
        assert_eq!(
            door.check(&"http://h/chat?token=a%2Bb%2Fc".parse().unwrap(), &h, now),
            Ok(())
        );
        assert_eq!(
            door.check(&"http://h/chat".parse().unwrap(), &h, now)
                .unwrap_err()
                .status,
            401
        );
        assert_eq!(
            door.check(&"http://h/chat?token=x".parse().unwrap(), &h, now)
                .unwrap_err()
                .status,
            403
        );
    }

    #[test]
    fn amz_dates_parse() {
        let t = parse_amz_date("20261204T153400Z").unwrap();
        let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(secs, 1_796_398_440);
        assert!(parse_amz_date("2026-12-04").is_none());
        assert!(parse_amz_date("20261304T153400Z").is_none());
    }
}
