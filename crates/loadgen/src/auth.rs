//! Getting through the door: how each session's WebSocket upgrade is authorised.
//!
//! An API Gateway WebSocket API authorises `$connect` in one of three ways, and a
//! rehearsal must use the one staging uses: a bearer token header, a token in the query
//! string (Lambda REQUEST authorizers read `route.request.querystring.*`, because browsers
//! cannot set headers on a WebSocket), or IAM (the upgrade signed with Signature Version 4
//! for `execute-api`). Signing and the credential chain are AWS's own crates; this module
//! only decides what goes where. Secrets stay out of everything surge writes: header values
//! are marked sensitive, and no token, key or signature is ever put in a failure message.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use surge_profile::Profile;
use surge_profile::target::{Auth, SignAt, execute_api_region, parse_ws_url};
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue, Uri};

use crate::errors::{ErrorClass, Failure};

/// The service IAM signs WebSocket upgrades for.
const EXECUTE_API: &str = "execute-api";
/// How long a presigned upgrade URL stays valid.
const PRESIGNED_FOR: Duration = Duration::from_secs(300);
/// Credentials this close to their expiry are refreshed before signing.
const REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// How a shard's sessions authorise their upgrades, ready to use.
#[derive(Clone, Default)]
pub enum Door {
    /// Nothing to add (or only the profile's plain headers).
    #[default]
    Open,
    /// `Authorization: Bearer …`, the same for every session.
    Bearer(HeaderValue),
    /// `?param=token`, session `k` taking pair `k mod n` (encoded once, here).
    Query { pairs: Arc<[String]> },
    /// Every upgrade signed with SigV4 when it is made.
    Sigv4(Arc<Signer>),
}

impl std::fmt::Debug for Door {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Open => f.write_str("Open"),
            Self::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Self::Query { pairs } => write!(f, "Query {{ tokens: {} }}", pairs.len()),
            Self::Sigv4(s) => write!(f, "Sigv4 {{ region: {:?}, at: {:?} }}", s.region, s.at),
        }
    }
}

impl Door {
    /// The door the profile asks for. `token` is the bearer token already read from its
    /// variable; query tokens are read from their file, AWS credentials from the chain.
    pub async fn open(
        profile: &Profile,
        target: &str,
        token: Option<&str>,
    ) -> Result<Self, String> {
        if let Some(token) = token {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| "the bearer token is not a valid header value".to_string())?;
            value.set_sensitive(true);
            return Ok(Self::Bearer(value));
        }
        match &profile.target.auth {
            None | Some(Auth::Bearer { .. }) => Ok(Self::Open),
            Some(Auth::Query { param, tokens_file }) => Ok(Self::Query {
                pairs: query_tokens(&profile.files.profile, tokens_file)?
                    .iter()
                    .map(|t| query_pair(param, t))
                    .collect(),
            }),
            Some(Auth::Sigv4 { sign, region }) => {
                let region = sigv4_region(target, region.as_deref())?;
                Ok(Self::Sigv4(Arc::new(
                    Signer::from_chain(region, *sign).await?,
                )))
            }
        }
    }

    /// Adds session `k`'s credentials to its upgrade request.
    pub async fn authorise(&self, k: u64, req: &mut Request) -> Result<(), Failure> {
        match self {
            Self::Open => Ok(()),
            Self::Bearer(value) => {
                req.headers_mut()
                    .insert(HeaderName::from_static("authorization"), value.clone());
                Ok(())
            }
            Self::Query { pairs } => {
                let pair = &pairs[(k % pairs.len() as u64) as usize];
                *req.uri_mut() = with_query_param(req.uri(), pair);
                Ok(())
            }
            Self::Sigv4(signer) => signer.sign(req).await,
        }
    }
}

/// The tokens of a `kind = "query"` door: one per line, blank lines and surrounding
/// spaces ignored; `file` is relative to the profile's directory.
pub fn query_tokens(profile: &Path, file: &Path) -> Result<Vec<String>, String> {
    let path: PathBuf = match profile.parent() {
        Some(dir) if file.is_relative() => dir.join(file),
        _ => file.to_path_buf(),
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "target.auth.tokens_file: cannot read {}: {e} (one token per line)",
            path.display()
        )
    })?;
    let tokens = surge_profile::target::tokens_of(&text);
    if tokens.is_empty() {
        return Err(format!(
            "target.auth.tokens_file: {} holds no token (one per line)",
            path.display()
        ));
    }
    Ok(tokens)
}

/// The region to sign for: the profile's, else the one in an `execute-api` host name.
pub fn sigv4_region(target: &str, region: Option<&str>) -> Result<String, String> {
    if let Some(r) = region {
        return Ok(r.to_string());
    }
    let (_, host) = parse_ws_url(target)?;
    execute_api_region(host).map(str::to_owned).ok_or_else(|| {
        format!(
            "target.auth: SigV4 needs the API's region, and \"{host}\" is not an execute-api \
             host name ({{id}}.execute-api.{{region}}.amazonaws.com); set region = \"…\" in \
             [target.auth]"
        )
    })
}

/// `name=value`, both percent-encoded as a query string carries them.
fn query_pair(name: &str, value: &str) -> String {
    let mut u = reqwest::Url::parse("http://x/").expect("a valid URL");
    u.query_pairs_mut().append_pair(name, value);
    u.query().unwrap_or_default().to_string()
}

/// `uri` with the encoded `pair` added to its query string.
fn with_query_param(uri: &Uri, pair: &str) -> Uri {
    let s = uri.to_string();
    let joined = match uri.query() {
        Some(q) if !q.is_empty() => format!("{s}&{pair}"),
        _ => format!("{}?{pair}", s.trim_end_matches('?')),
    };
    joined.parse().unwrap_or_else(|_| uri.clone())
}

/// Signs upgrades with SigV4, refreshing expiring credentials before they expire.
pub struct Signer {
    region: String,
    at: SignAt,
    provider: SharedCredentialsProvider,
    current: tokio::sync::Mutex<Option<Credentials>>,
}

impl Signer {
    /// A signer with credentials from the AWS default chain, checked once now so a run
    /// without credentials stops before it starts.
    pub async fn from_chain(region: String, at: SignAt) -> Result<Self, String> {
        let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
        let provider = config.credentials_provider().ok_or_else(|| {
            "target.auth: SigV4 signing found no AWS credential provider".to_string()
        })?;
        let signer = Self::new(region, at, provider);
        signer.credentials().await.map_err(|e| {
            format!(
                "target.auth: no AWS credentials to sign with ({e}); set AWS_PROFILE, or \
                 AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where a role is attached"
            )
        })?;
        Ok(signer)
    }

    pub fn new(region: String, at: SignAt, provider: SharedCredentialsProvider) -> Self {
        Self {
            region,
            at,
            provider,
            current: tokio::sync::Mutex::new(None),
        }
    }

    /// The credentials to sign with now: the cached ones, unless they expire within
    /// [`REFRESH_BEFORE`].
    async fn credentials(&self) -> Result<Credentials, String> {
        let mut current = self.current.lock().await;
        let soon = SystemTime::now() + REFRESH_BEFORE;
        if let Some(c) = current
            .as_ref()
            .filter(|c| c.expiry().is_none_or(|e| e > soon))
        {
            return Ok(c.clone());
        }
        let fresh = self
            .provider
            .provide_credentials()
            .await
            .map_err(|e| e.to_string())?;
        *current = Some(fresh.clone());
        Ok(fresh)
    }

    /// Signs `req` (its host and path, an empty body) for `execute-api` now.
    pub async fn sign(&self, req: &mut Request) -> Result<(), Failure> {
        let unsigned = |why: String| {
            Failure::new(
                ErrorClass::UpgradeRejected,
                format!("the upgrade could not be signed: {why}"),
            )
        };
        let identity = self.credentials().await.map_err(unsigned)?.into();
        let mut settings = SigningSettings::default();
        if self.at == SignAt::Query {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(PRESIGNED_FOR);
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(EXECUTE_API)
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| unsigned(e.to_string()))?
            .into();
        let host = req
            .headers()
            .get("host")
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| unsigned("the upgrade request has no Host header".into()))?;
        let uri = req.uri().to_string();
        let signable = SignableRequest::new(
            "GET",
            uri.as_str(),
            std::iter::once(("host", host.as_str())),
            SignableBody::Bytes(&[]),
        )
        .map_err(|e| unsigned(e.to_string()))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| unsigned(e.to_string()))?
            .into_parts();
        instructions.apply_to_request_http1x(req);
        for (name, value) in req.headers_mut().iter_mut() {
            if name == "authorization" || name.as_str().starts_with("x-amz-") {
                value.set_sensitive(true);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    #[test]
    fn query_tokens_go_round_robin_and_are_encoded() {
        let door = Door::Query {
            pairs: ["a+b/c", "two"]
                .iter()
                .map(|t| query_pair("token", t))
                .collect(),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let uris: Vec<String> = (0..3)
            .map(|k| {
                let mut req = "ws://127.0.0.1:9/chat?v=1".into_client_request().unwrap();
                rt.block_on(door.authorise(k, &mut req)).unwrap();
                req.uri().to_string()
            })
            .collect();
        assert_eq!(
            uris,
            [
                "ws://127.0.0.1:9/chat?v=1&token=a%2Bb%2Fc",
                "ws://127.0.0.1:9/chat?v=1&token=two",
                "ws://127.0.0.1:9/chat?v=1&token=a%2Bb%2Fc"
            ]
        );
        let bare = with_query_param(&"ws://h/chat".parse().unwrap(), &query_pair("t", "x y"));
        assert_eq!(bare.to_string(), "ws://h/chat?t=x+y");
        assert!(!format!("{door:?}").contains("two"));
    }

    #[test]
    fn the_region_comes_from_the_profile_or_the_host() {
        let host = "wss://abc123.execute-api.eu-west-1.amazonaws.com/staging";
        assert_eq!(sigv4_region(host, None).unwrap(), "eu-west-1");
        assert_eq!(sigv4_region(host, Some("us-east-1")).unwrap(), "us-east-1");
        let err = sigv4_region("wss://chat.example.com/", None).unwrap_err();
        assert!(err.contains("region = "), "{err}");
    }

    #[test]
    fn tokens_file_is_read_relative_to_the_profile() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tokens.txt"), " t1 \n\n t2\n").unwrap();
        let profile = dir.path().join("p.toml");
        assert_eq!(
            query_tokens(&profile, Path::new("tokens.txt")).unwrap(),
            ["t1", "t2"]
        );
        std::fs::write(dir.path().join("empty.txt"), "\n").unwrap();
        let err = query_tokens(&profile, Path::new("empty.txt")).unwrap_err();
        assert!(err.contains("holds no token"), "{err}");
        assert!(query_tokens(&profile, Path::new("missing.txt")).is_err());
    }

    /// Signing with fixed credentials: the signature goes where it is asked, every
    /// header that carries it is sensitive, and expiring credentials are refreshed.
    #[tokio::test]
    async fn sigv4_signs_headers_or_query_and_refreshes_expiring_credentials() {
        use std::sync::atomic::{AtomicU32, Ordering};

        #[derive(Debug)]
        struct Counting(Arc<AtomicU32>, SystemTime);
        impl ProvideCredentials for Counting {
            fn provide_credentials<'a>(
                &'a self,
            ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
            where
                Self: 'a,
            {
                self.0.fetch_add(1, Ordering::SeqCst);
                aws_credential_types::provider::future::ProvideCredentials::ready(Ok(
                    Credentials::new(
                        "AKIDEXAMPLE",
                        "SECRET",
                        Some("TOKEN".into()),
                        Some(self.1),
                        "test",
                    ),
                ))
            }
        }
        let calls = Arc::new(AtomicU32::new(0));
        let expiring = SystemTime::now() + Duration::from_secs(60);
        let provider = SharedCredentialsProvider::new(Counting(calls.clone(), expiring));
        let headers = Signer::new("eu-west-1".into(), SignAt::Headers, provider.clone());
        let mut req = "ws://abc.execute-api.eu-west-1.amazonaws.com/prod"
            .into_client_request()
            .unwrap();
        headers.sign(&mut req).await.unwrap();
        let auth = req.headers()["authorization"].to_str().unwrap().to_string();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{auth}"
        );
        assert!(
            auth.contains("/eu-west-1/execute-api/aws4_request"),
            "{auth}"
        );
        assert!(req.headers()["authorization"].is_sensitive());
        assert!(req.headers()["x-amz-security-token"].is_sensitive());
        // Credentials within five minutes of expiry are fetched again for the next upgrade.
        headers.sign(&mut req).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        let query = Signer::new("eu-west-1".into(), SignAt::Query, provider);
        let mut req = "ws://abc.execute-api.eu-west-1.amazonaws.com/prod"
            .into_client_request()
            .unwrap();
        query.sign(&mut req).await.unwrap();
        let q = req.uri().query().unwrap();
        for p in [
            "X-Amz-Algorithm=",
            "X-Amz-Credential=",
            "X-Amz-Signature=",
            "X-Amz-Expires=300",
        ] {
            assert!(q.contains(p), "{q}");
        }
        assert!(!req.headers().contains_key("authorization"));
    }
}
