//! Opening one session's WebSocket: TCP (from a chosen source address), TLS, upgrade.
//!
//! Each step fails in its own way and is classified here ([`ErrorClass`]), so an operator
//! can tell a full backlog (refused) from a certificate problem (tls) from a gateway that
//! says 429 to the upgrade (upgrade_rejected). Buffers are kept small: tungstenite's default
//! 128 KiB read buffer per connection would take 3 GB for 25,000 sessions.

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use tokio::net::{TcpStream, lookup_host};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::auth::Door;
use crate::errors::{ErrorClass, Failure};
use crate::fence::Fenced;

/// An open session connection.
pub type Ws = WebSocketStream<MaybeTlsStream<Fenced<TcpStream>>>;

/// Per-connection buffers: chat frames are small, and there are tens of thousands.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_write_buffer_size(256 * 1024)
        .max_message_size(Some(1024 * 1024))
        .max_frame_size(Some(1024 * 1024))
}

/// Where and how sessions connect; built once, shared by every session.
#[derive(Debug)]
pub struct Connector {
    url: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    door: Door,
    bind: Vec<IpAddr>,
    timeout: Duration,
    resolved: tokio::sync::OnceCell<SocketAddr>,
}

impl Connector {
    /// `headers` are sent on every upgrade; `door` adds each session's credentials.
    pub fn new(
        url: &str,
        headers: &[(String, String)],
        door: Door,
        bind: Vec<IpAddr>,
        timeout: Duration,
    ) -> Result<Self, String> {
        url.into_client_request()
            .map_err(|e| format!("--target {}: {e}", surge_record::redact_url(url)))?;
        let mut out = Vec::new();
        for (k, v) in headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("header name \"{k}\" is not valid"))?;
            let value = HeaderValue::from_str(v)
                .map_err(|_| format!("the value of header \"{k}\" is not valid"))?;
            out.push((name, value));
        }
        Ok(Self {
            url: url.to_string(),
            headers: out,
            door,
            bind,
            timeout,
            resolved: tokio::sync::OnceCell::new(),
        })
    }

    fn request(&self) -> Request {
        let mut req = self
            .url
            .as_str()
            .into_client_request()
            .expect("checked in Connector::new");
        for (k, v) in &self.headers {
            req.headers_mut().insert(k.clone(), v.clone());
        }
        req
    }

    async fn destination(&self, req: &Request) -> Result<SocketAddr, Failure> {
        self.resolved
            .get_or_try_init(|| async {
                let uri = req.uri();
                let host = uri.host().unwrap_or("").trim_matches(['[', ']']);
                let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
                    Some("wss") => 443,
                    _ => 80,
                });
                lookup_host((host, port))
                    .await
                    .ok()
                    .and_then(|mut a| a.next())
                    .ok_or_else(|| {
                        Failure::new(ErrorClass::Refused, format!("cannot resolve {host}"))
                    })
            })
            .await
            .copied()
    }

    /// Connects session `k`; returns the stream and how long TCP + TLS + upgrade took.
    ///
    /// The stream is boxed: it is ~1.4 KB (its TLS variant is inline), and a session's
    /// state would otherwise hold it for the whole run, and twice (the result and the
    /// binding it moves to).
    pub async fn connect(&self, k: u64) -> Result<(Box<Ws>, Duration), Failure> {
        let started = Instant::now();
        match tokio::time::timeout(self.timeout, self.connect_inner(k)).await {
            Ok(Ok(ws)) => Ok((Box::new(ws), started.elapsed())),
            Ok(Err(f)) => Err(f),
            Err(_) => Err(Failure::new(
                ErrorClass::Timeout,
                format!("no connection within {:?}", self.timeout),
            )),
        }
    }

    async fn connect_inner(&self, k: u64) -> Result<Ws, Failure> {
        let mut req = self.request();
        self.door.authorise(k, &mut req).await?;
        let dest = self.destination(&req).await?;
        let source =
            (!self.bind.is_empty()).then(|| self.bind[(k % self.bind.len() as u64) as usize]);
        let tcp = open_tcp(dest, source).await?;
        let _ = tcp.set_nodelay(true);
        let tls = req.uri().scheme_str() == Some("wss");
        let tcp = if tls {
            Fenced::lifted(tcp)
        } else {
            Fenced::new(tcp)
        };
        let ws = tokio_tungstenite::client_async_tls_with_config(req, tcp, Some(ws_config()), None)
            .await
            .map(|(ws, _)| ws)
            .map_err(|e| classify_handshake(e, tls))?;
        if tls {
            return Ok(ws);
        }
        // The handshake read the response head and nothing after it (fence.rs): rebuilt
        // around the same stream, the WebSocket reads with ws_config()'s small buffer
        // instead of the handshake's 4 KiB one.
        let stream = ws.into_inner();
        debug_assert!(matches!(&stream, MaybeTlsStream::Plain(f) if f.at_head_end()));
        Ok(WebSocketStream::from_raw_socket(stream, Role::Client, Some(ws_config())).await)
    }
}

/// Opens a TCP connection to `dest` from `source` (any address if `None`).
///
/// `socket()`, `bind()` and `connect()` run on the runtime's blocking pool, off the shard's
/// thread: `connect()` on a nonblocking socket still searches the ephemeral port range
/// before it returns, and near a full range that search takes milliseconds during which a
/// shard's thread would time no one's message. Only the wait for the handshake, which
/// costs nothing, stays on the shard.
async fn open_tcp(dest: SocketAddr, source: Option<IpAddr>) -> Result<TcpStream, Failure> {
    let refused = |what: &str, e: std::io::Error| {
        let class = match e.kind() {
            std::io::ErrorKind::TimedOut => ErrorClass::Timeout,
            _ => ErrorClass::Refused,
        };
        Failure::new(class, format!("{what}: {e}"))
    };
    let socket = tokio::task::spawn_blocking(move || start_connect(dest, source))
        .await
        .map_err(|e| Failure::new(ErrorClass::Refused, format!("connect {dest}: {e}")))?
        .map_err(|(what, e)| refused(&what, e))?;
    let tcp = TcpStream::from_std(socket).map_err(|e| refused("register socket", e))?;
    // Writable once the handshake ends either way; the socket's error says which.
    tcp.writable()
        .await
        .map_err(|e| refused(&format!("connect {dest}"), e))?;
    if let Some(e) = tcp.take_error().ok().flatten() {
        return Err(refused(&format!("connect {dest}"), e));
    }
    tcp.peer_addr()
        .map_err(|e| refused(&format!("connect {dest}"), e))?;
    Ok(tcp)
}

/// The blocking half of [`open_tcp`]: a nonblocking socket whose `connect()` has started.
fn start_connect(
    dest: SocketAddr,
    source: Option<IpAddr>,
) -> Result<std::net::TcpStream, (String, std::io::Error)> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(dest), Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| ("socket".to_string(), e))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| ("socket".to_string(), e))?;
    if let Some(source) = source {
        defer_port_choice(&socket);
        socket
            .bind(&SocketAddr::new(source, 0).into())
            .map_err(|e| (format!("bind {source}"), e))?;
    }
    match socket.connect(&dest.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err((format!("connect {dest}"), e)),
    }
    Ok(socket.into())
}

/// Lets the kernel choose a bound socket's port at `connect()`, for the four-tuple, rather
/// than at `bind()`, where it must find a port free toward every destination (bind.rs).
#[cfg(target_os = "linux")]
fn defer_port_choice(socket: &socket2::Socket) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: setsockopt on a socket this function borrows, with a valid int option whose
    // size is passed; failure only leaves the kernel's default.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&raw const on).cast(),
            std::mem::size_of_val(&on) as libc::socklen_t,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn defer_port_choice(_: &socket2::Socket) {}

fn classify_handshake(e: tokio_tungstenite::tungstenite::Error, tls: bool) -> Failure {
    use tokio_tungstenite::tungstenite::Error as E;
    match e {
        E::Http(resp) => Failure {
            class: ErrorClass::UpgradeRejected,
            message: format!("upgrade rejected with HTTP {}", resp.status()),
            status: Some(resp.status().as_u16()),
        },
        E::Tls(e) => Failure::new(ErrorClass::Tls, format!("TLS: {e}")),
        // With TLS, an I/O error before the upgrade completes is the TLS handshake failing.
        E::Io(e) if tls => Failure::new(ErrorClass::Tls, format!("TLS: {e}")),
        E::Io(e) => Failure::new(ErrorClass::Refused, format!("upgrade: {e}")),
        other => Failure::new(ErrorClass::ProtocolViolation, format!("upgrade: {other}")),
    }
}

/// Paces new connections to `traffic.connect_rate` (API Gateway admits 500/s): each
/// connection takes the next free slot, so a ramp of 25,000 sessions takes ≥ 50 s as it would
/// in production.
#[derive(Debug)]
pub struct ConnectGate {
    spacing: Duration,
    next: Mutex<Instant>,
}

impl ConnectGate {
    pub fn new(per_second: f64) -> Self {
        Self {
            spacing: Duration::from_secs_f64(1.0 / per_second.max(1e-3)),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Waits for this connection's slot.
    pub async fn admit(&self) {
        let slot = {
            let mut next = self.next.lock().expect("gate lock");
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.spacing;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// Reconnection delays: exponential from 100 ms to 5 s with full jitter.
#[derive(Debug, Default)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    const BASE: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    pub fn next(&mut self, rng: &mut impl rand::Rng) -> Duration {
        let cap = Self::BASE
            .saturating_mul(1u32 << self.attempt.min(10))
            .min(Self::MAX);
        self.attempt += 1;
        cap.mul_f64(0.5 + 0.5 * rng.random::<f64>())
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn backoff_grows_with_jitter_and_resets() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(3);
        let mut b = Backoff::default();
        let first = b.next(&mut rng);
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        for _ in 0..20 {
            assert!(b.next(&mut rng) <= Backoff::MAX);
        }
        b.reset();
        assert!(b.next(&mut rng) <= Duration::from_millis(100));
    }

    /// Sockets open on the blocking pool and are registered with the caller's runtime:
    /// the connection comes from the chosen source, and a closed port is refused.
    #[tokio::test(flavor = "current_thread")]
    async fn sockets_open_off_the_thread_from_the_chosen_source() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dest = listener.local_addr().unwrap();
        let source: IpAddr = "127.0.0.2".parse().unwrap();
        let (tcp, accepted) = tokio::join!(open_tcp(dest, Some(source)), listener.accept());
        let tcp = tcp.unwrap();
        let (_peer, from) = accepted.unwrap();
        assert_eq!(
            from.ip(),
            source,
            "the server sees the chosen source address"
        );
        assert_eq!(tcp.local_addr().unwrap(), from);
        assert_ne!(from.port(), 0);

        drop(listener);
        let f = open_tcp(dest, None).await.unwrap_err();
        assert_eq!(f.class, ErrorClass::Refused, "{}", f.message);
        assert!(f.message.contains(&dest.to_string()), "{}", f.message);
    }

    /// A server that greets in the same write as its 101: the greeting reaches the session
    /// after the WebSocket is rebuilt with its small buffer (fence.rs), then the echo.
    #[tokio::test(flavor = "current_thread")]
    async fn a_greeting_sent_with_the_upgrade_is_not_lost() {
        use futures::{SinkExt, StreamExt};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio_tungstenite::tungstenite::Message;
        use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/chat", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                tcp.read_exact(&mut byte).await.unwrap();
                head.push(byte[0]);
            }
            let head = String::from_utf8(head).unwrap();
            let key = head
                .lines()
                .find_map(|l| {
                    l.strip_prefix("Sec-WebSocket-Key: ")
                        .or(l.strip_prefix("sec-websocket-key: "))
                })
                .expect("a key")
                .trim()
                .to_string();
            let mut answer = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {}\r\n\r\n",
                derive_accept_key(key.as_bytes())
            )
            .into_bytes();
            answer.extend_from_slice(b"\x81\x05hello"); // an unmasked text frame, same write
            tcp.write_all(&answer).await.unwrap();
            let mut ws = WebSocketStream::from_raw_socket(tcp, Role::Server, None).await;
            let echo = ws.next().await.unwrap().unwrap();
            ws.send(echo).await.unwrap();
            ws.close(None).await.ok();
        });
        let c = Connector::new(&url, &[], Door::Open, vec![], Duration::from_secs(5)).unwrap();
        let (mut ws, _) = c.connect(0).await.unwrap();
        let first = ws.next().await.unwrap().unwrap();
        assert_eq!(first, Message::text("hello"), "the greeting comes first");
        ws.send(Message::text("ping")).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("ping"));
        server.await.unwrap();
    }

    #[tokio::test]
    async fn the_token_is_marked_sensitive() {
        let profile = surge_profile::Profile::load(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../profiles/local.toml"
        ))
        .unwrap();
        let url = "ws://127.0.0.1:1/chat";
        let door = Door::open(&profile, url, Some("secret")).await.unwrap();
        let c = Connector::new(
            url,
            &[("X-Run".into(), "n".into())],
            door,
            vec![],
            Duration::from_secs(1),
        )
        .unwrap();
        let mut req = c.request();
        c.door.authorise(0, &mut req).await.unwrap();
        assert!(req.headers()["authorization"].is_sensitive());
        assert_eq!(req.headers()["x-run"], "n");
        assert!(!format!("{c:?}").contains("secret"));
    }
}
