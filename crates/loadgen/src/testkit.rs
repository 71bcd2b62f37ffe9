//! A scripted chat server for tests: speaks surge's default frames on loopback and
//! misbehaves on request (stalls, drops, errors, throttles, silence, garbage, rejected
//! upgrades, greetings, idle closes), counting exactly what it received so tests can hold
//! the generator to it.
//!
//! It stands in for the real mock (crates/mock) and for broken chatbots; it is small on
//! purpose, so a test reads as the script it runs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use surge_protocol::{ChatMessage, ErrorCode, ServerFrame, Usage};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

/// How the server answers. `every: n` rules apply to the n-th, 2n-th, … message received.
#[derive(Debug, Clone)]
pub struct Script {
    /// Token frames per answer (at least 1).
    pub tokens: u32,
    /// Before the first token.
    pub first_token_delay: Duration,
    /// Between token frames.
    pub token_gap: Duration,
    /// Model named in done frames.
    pub model: Option<String>,
    /// A stall of the whole server: from `.0` after start, for `.1`, no frame is sent.
    pub stall: Option<(Duration, Duration)>,
    /// Close the connection after the first token of every n-th message.
    pub drop_mid_answer_every: Option<u64>,
    /// Close the connection after answering every n-th message.
    pub drop_after_answer_every: Option<u64>,
    pub server_error_every: Option<u64>,
    pub throttle_every: Option<u64>,
    /// Never answer every n-th message.
    pub silent_every: Option<u64>,
    /// Answer every n-th message only after this extra delay.
    pub slow: Option<(u64, Duration)>,
    /// Send a frame that is not JSON before answering every n-th message.
    pub garbage_every: Option<u64>,
    /// Refuse every upgrade with this HTTP status.
    pub reject_upgrade: Option<u16>,
    /// Send a ping before each answer (the client must answer it).
    pub ping: bool,
    /// A text frame sent on every new connection, before anything else.
    pub greeting: Option<String>,
    /// Close a connection the client has sent nothing on (no frame, ping included) for
    /// `.0`, with close code `.1`, as API Gateway's idle timeout does (1001).
    pub idle_close: Option<(Duration, u16)>,
}

impl Default for Script {
    fn default() -> Self {
        Self {
            tokens: 3,
            first_token_delay: Duration::from_millis(5),
            token_gap: Duration::from_millis(2),
            model: Some("haiku".into()),
            stall: None,
            drop_mid_answer_every: None,
            drop_after_answer_every: None,
            server_error_every: None,
            throttle_every: None,
            silent_every: None,
            slow: None,
            garbage_every: None,
            reject_upgrade: None,
            ping: false,
            greeting: None,
            idle_close: None,
        }
    }
}

/// What the server saw.
#[derive(Debug, Default)]
pub struct Seen {
    pub messages: AtomicU64,
    pub connections: AtomicU64,
    pub pongs: AtomicU64,
    /// Pings the client sent.
    pub pings: AtomicU64,
    /// Connections closed for being idle.
    pub idle_closes: AtomicU64,
    /// Source addresses of the connections.
    pub peers: std::sync::Mutex<std::collections::BTreeSet<std::net::IpAddr>>,
    /// Every text frame received, in order of arrival.
    pub received: std::sync::Mutex<Vec<Received>>,
    /// When each connection was accepted (upgraded), in order.
    pub connected_at: std::sync::Mutex<Vec<Instant>>,
}

/// One text frame the server received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The connection it came on (1 for the first accepted).
    pub connection: u64,
    /// Its place among all frames received (1 for the first): the `n` of the script's
    /// `every: n` rules, so a test knows which messages were answered how.
    pub n: u64,
    pub at: Instant,
    /// The message, when the frame is one of surge's default shape.
    pub message: Option<ChatMessage>,
}

/// A running test server; stops when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub seen: Arc<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn hits(every: Option<u64>, n: u64) -> bool {
    every.is_some_and(|e| e > 0 && n % e == 0)
}

impl TestServer {
    pub async fn start(script: Script) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Seen::default());
        let script = Arc::new(script);
        let started = Instant::now();
        let seen2 = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, peer)) = listener.accept().await {
                let (script, seen) = (script.clone(), seen2.clone());
                if let Ok(mut peers) = seen.peers.lock() {
                    peers.insert(peer.ip());
                }
                tokio::spawn(async move {
                    let _ = serve(tcp, &script, &seen, started).await;
                });
            }
        });
        Ok(Self { addr, seen, task })
    }

    pub fn url(&self) -> String {
        format!("ws://{}/chat", self.addr)
    }

    pub fn messages(&self) -> u64 {
        self.seen.messages.load(Ordering::SeqCst)
    }

    pub fn connections(&self) -> u64 {
        self.seen.connections.load(Ordering::SeqCst)
    }

    /// Every text frame received so far, in order of arrival.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.seen.received).clone()
    }

    /// When each connection was accepted, in order.
    pub fn connected_at(&self) -> Vec<Instant> {
        lock(&self.seen.connected_at).clone()
    }
}

// The upgrade callback's error type is tungstenite's, large or not.
#[allow(clippy::result_large_err)]
async fn serve(
    tcp: tokio::net::TcpStream,
    script: &Script,
    seen: &Seen,
    started: Instant,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let reject = script.reject_upgrade;
    let check = move |_: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        match reject {
            Some(code) => {
                let mut e = ErrorResponse::new(Some("refused by script".into()));
                *e.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::FORBIDDEN);
                Err(e)
            }
            None => Ok(resp),
        }
    };
    let ws = tokio_tungstenite::accept_hdr_async(tcp, check).await?;
    let connection = seen.connections.fetch_add(1, Ordering::SeqCst) + 1;
    lock(&seen.connected_at).push(Instant::now());
    let stall_until = |now: Instant| -> Option<Instant> {
        let (at, len) = script.stall?;
        let (from, to) = (started + at, started + at + len);
        (now >= from && now < to).then_some(to)
    };
    let send = |ws_frame: String| Message::text(ws_frame);
    // Messages are counted as they arrive and answered in order by a second loop, so a
    // slow or stalled answer never hides a message that was received.
    let (mut ws, mut incoming) = ws.split();
    let (queue, mut queued) = tokio::sync::mpsc::unbounded_channel();
    // When the client last sent a frame, for the idle close.
    let heard = std::sync::Mutex::new(Instant::now());
    let heard = &heard;
    let reader = async move {
        while let Some(Ok(msg)) = incoming.next().await {
            *heard.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
            match msg {
                Message::Text(t) => {
                    // Counted under the log's lock, so the log is in the order of `n`.
                    let mut received = lock(&seen.received);
                    let n = seen.messages.fetch_add(1, Ordering::SeqCst) + 1;
                    received.push(Received {
                        connection,
                        n,
                        at: Instant::now(),
                        message: ChatMessage::from_json(&t).ok(),
                    });
                    drop(received);
                    let _ = queue.send((n, t));
                }
                Message::Pong(_) => {
                    seen.pongs.fetch_add(1, Ordering::SeqCst);
                }
                Message::Ping(_) => {
                    seen.pings.fetch_add(1, Ordering::SeqCst);
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
    };
    let writer = async move {
        if let Some(greeting) = &script.greeting {
            ws.send(send(greeting.clone())).await?;
        }
        loop {
            let idle_at = script
                .idle_close
                .map(|(after, _)| *heard.lock().unwrap_or_else(|p| p.into_inner()) + after);
            let next = tokio::select! {
                next = queued.recv() => next,
                _ = tokio::time::sleep_until(idle_at.unwrap_or_else(Instant::now)), if idle_at.is_some() => {
                    let idle_at = script
                        .idle_close
                        .map(|(after, _)| *heard.lock().unwrap_or_else(|p| p.into_inner()) + after);
                    if let (Some(at), Some((_, code))) = (idle_at, script.idle_close) {
                        if Instant::now() >= at {
                            seen.idle_closes.fetch_add(1, Ordering::SeqCst);
                            let close = CloseFrame { code: code.into(), reason: "idle".into() };
                            ws.send(Message::Close(Some(close))).await?;
                            // The client's reply ends the reader.
                            std::future::pending::<()>().await;
                        }
                    }
                    continue;
                }
            };
            let Some((n, text)) = next else { break };
            answer(&mut ws, script, n, &text, &stall_until, send).await?;
        }
        Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    };
    tokio::select! {
        _ = reader => Ok(()),
        r = writer => r,
    }
}

type Sink =
    futures::stream::SplitSink<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>, Message>;

/// The script closes the connection here.
#[derive(Debug)]
struct ScriptedDrop;

impl std::fmt::Display for ScriptedDrop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("scripted drop")
    }
}

impl std::error::Error for ScriptedDrop {}

/// Answers message `n` as the script says; an error ends the connection (a scripted drop
/// is one: the TCP connection closes without a close frame).
async fn answer(
    ws: &mut Sink,
    script: &Script,
    n: u64,
    text: &str,
    stall_until: &impl Fn(Instant) -> Option<Instant>,
    send: impl Fn(String) -> Message,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let id = ChatMessage::from_json(text)
        .map(|m| m.id)
        .unwrap_or_default();
    if script.ping {
        ws.send(Message::Ping(Vec::new().into())).await?;
    }
    if hits(script.silent_every, n) {
        return Ok(());
    }
    if hits(script.garbage_every, n) {
        ws.send(send("this is not json".into())).await?;
    }
    if hits(script.throttle_every, n) || hits(script.server_error_every, n) {
        let code = if hits(script.throttle_every, n) {
            ErrorCode::Throttled
        } else {
            ErrorCode::ServerError
        };
        let frame = ServerFrame::Error {
            id: Some(id),
            code,
            message: "scripted".into(),
        };
        ws.send(send(frame.to_json())).await?;
        return Ok(());
    }
    tokio::time::sleep(script.first_token_delay).await;
    if let Some((_, extra)) = script.slow.filter(|(every, _)| hits(Some(*every), n)) {
        tokio::time::sleep(extra).await;
    }
    for i in 0..script.tokens.max(1) {
        if i > 0 {
            tokio::time::sleep(script.token_gap).await;
        }
        if let Some(until) = stall_until(Instant::now()) {
            tokio::time::sleep_until(until).await;
        }
        let frame = ServerFrame::Token {
            id: id.clone(),
            text: "tok ".into(),
            tokens: 1,
        };
        ws.send(send(frame.to_json())).await?;
        if i == 0 && hits(script.drop_mid_answer_every, n) {
            return Err(Box::new(ScriptedDrop));
        }
    }
    if let Some(until) = stall_until(Instant::now()) {
        tokio::time::sleep_until(until).await;
    }
    let done = ServerFrame::Done {
        id,
        usage: Usage {
            model: script.model.clone(),
            intent: "chitchat".into(),
            store: "manga_jp".into(),
            input_tokens: 10,
            output_tokens: script.tokens,
            cache_hit: false,
            cost_usd: 0.0,
        },
    };
    ws.send(send(done.to_json())).await?;
    if hits(script.drop_after_answer_every, n) {
        return Err(Box::new(ScriptedDrop));
    }
    Ok(())
}
