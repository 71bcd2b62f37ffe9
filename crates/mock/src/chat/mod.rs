//! The chat WebSocket (`/chat`): the seed's chatbot, in-process.
//!
//! One task per connection reads messages and writes frames; each message is answered by
//! its own task (`turn`) that sends frames back through a channel, so a client that
//! pipelines gets its answers interleaved, correlated by message id; frames waiting
//! together go out in one write. Per connection the mock keeps a small read buffer and a
//! write buffer only as large as the frames waiting, so tens of thousands of idle sessions
//! cost little. Frames larger than the gateway's `max_frame`
//! or messages larger than `max_message` close the connection with 1009, as API Gateway
//! does; the gateway's other rules (connect rate, maximum duration, idle timeout, its own
//! throttle frames) are in [`gateway`].

mod classifier;
mod ecs;
pub mod gateway;
mod semantic;
mod turn;

pub use ecs::Ecs;

pub use classifier::{Classifier, Script};
pub use semantic::{SemanticCache, Vector};

use std::sync::{Arc, Mutex};

use futures::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::json;
use surge_model::gateway::{
    self as rules, AccountLimit, Admission, ConnectLimit, Connection, Expiry, Lifetime, UserLimit,
};
use surge_profile::SystemModel;
use surge_profile::system::Intent;
use surge_protocol::{ChatMessage, ErrorCode, ServerFrame};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::App;
use crate::clock;
use crate::dynamodb::{Dynamo, Operation};
use crate::metrics::{Api, ChatClose, Metrics, UpgradeRefused};
use crate::server::{Body, full};
use gateway::{Caller, GatewayError, GatewayFrames};

/// The DynamoDB table conversation memory is kept in.
pub const MEMORY_TABLE: &str = "surge-memory";

/// What a turn hands the connection task.
#[derive(Debug)]
pub enum Out {
    Frame(ServerFrame),
    /// A frame API Gateway sends of its own (`--gateway-frames aws`).
    Gateway(GatewayError),
    /// Close the TCP connection at once, without a close frame (fault injection).
    Drop,
}

/// Chat state shared by every connection of this process.
pub struct Chat {
    pub(crate) sys: SystemModel,
    pub(crate) classifier: Classifier,
    /// The system model's intents, in the classifier's order.
    pub(crate) intents: Vec<(String, Intent)>,
    pub(crate) semantic: Option<SemanticCache>,
    account: Mutex<AccountLimit>,
    /// Output tokens per `@connections` post when streamed answers go out in chunks.
    pub(crate) chunk: Option<u32>,
    user_limit: UserLimit,
    /// New connections the gateway admits (÷ worker processes); `None` with the gateway off.
    connect: Option<Mutex<ConnectLimit>>,
    /// When the gateway closes a connection; `None` with the gateway off.
    lifetime: Option<Lifetime>,
    /// The frames of the gateway's own throttles.
    pub(crate) frames: GatewayFrames,
    /// The orchestrator service (÷ worker processes), scaled by target tracking.
    pub orchestrator: Option<Arc<Ecs>>,
    ws_config: WebSocketConfig,
}

impl Chat {
    pub fn new(
        sys: &SystemModel,
        workers: u32,
        frames: GatewayFrames,
        dynamo: &Dynamo,
        metrics: Arc<Metrics>,
    ) -> Self {
        let w = f64::from(workers.max(1));
        let g = &sys.gateway;
        if sys.memory.enabled {
            let create = json!({
                "TableName": MEMORY_TABLE,
                "AttributeDefinitions": [{"AttributeName": "session", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "session", "KeyType": "HASH"}],
                "BillingMode": "PAY_PER_REQUEST"
            });
            dynamo
                .call_json(Operation::CreateTable, &create)
                .expect("the memory table is created on a fresh server");
        }
        Self {
            classifier: Classifier::learn(&sys.intents),
            intents: sys
                .intents
                .iter()
                .map(|(n, i)| (n.clone(), i.clone()))
                .collect(),
            semantic: sys
                .semantic_cache
                .enabled
                .then(|| SemanticCache::new(sys.semantic_cache.threshold)),
            account: Mutex::new(AccountLimit::new(g, sys.bedrock.streaming, w)),
            chunk: g
                .enabled
                .then(|| rules::chunk(g, sys.bedrock.streaming))
                .flatten(),
            user_limit: UserLimit::new(g),
            connect: g.enabled.then(|| Mutex::new(ConnectLimit::new(g, w))),
            lifetime: g.enabled.then(|| Lifetime::new(g)),
            frames,
            orchestrator: sys
                .orchestrator
                .enabled
                .then(|| Arc::new(Ecs::new(sys, workers, metrics))),
            ws_config: WebSocketConfig::default()
                .read_buffer_size(4096)
                // Frames are written on flush, so waiting frames share one write; the
                // buffer grows only to what is waiting (usually one frame).
                .write_buffer_size(64 * 1024)
                .max_frame_size(Some(g.max_frame.bytes() as usize))
                .max_message_size(Some(g.max_message.bytes() as usize)),
            sys: sys.clone(),
        }
    }

    /// The gateway's verdict on one more message of `caller` (accepted with the gateway
    /// off).
    pub(crate) fn admit(&self, caller: &Caller) -> Admission {
        if !self.sys.gateway.enabled {
            return Admission::Accepted;
        }
        let mut user = caller.user.lock().expect("user bucket lock");
        let mut account = self.account.lock().expect("account bucket lock");
        rules::admit(&self.user_limit, &mut user, &mut account, clock::now())
    }

    /// The backend pushed `posts` posts of an answer to its client now: charged to the
    /// account when posts count as they are made (`posts_per_answer = "per_chunk"`).
    pub(crate) fn posted(&self, posts: u64) {
        if self.sys.gateway.enabled {
            let mut account = self.account.lock().expect("account bucket lock");
            account.posted(clock::now(), posts);
        }
    }

    /// Whether the gateway admits one more connection now.
    fn admit_connection(&self) -> bool {
        self.connect.as_ref().is_none_or(|c| {
            c.lock()
                .expect("connect limit lock")
                .try_admit(clock::now())
        })
    }

    /// The client of a new connection; its per-user bucket is full.
    fn caller(&self) -> Caller {
        Caller::new(self.user_limit.bucket(clock::now()))
    }
}

fn refuse(status: u16, text: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(full(text.to_string()))
        .expect("valid response")
}

/// Answers a WebSocket upgrade on `/chat` and serves the connection on its own task.
pub fn upgrade(app: Arc<App>, mut req: Request<Incoming>) -> Response<Body> {
    let is_upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
        return refuse(400, "expected a WebSocket upgrade\n");
    };
    if !is_upgrade {
        return refuse(400, "expected a WebSocket upgrade\n");
    }
    if let Some(status) = app.faults.refuse_upgrade(&app.metrics) {
        app.metrics.upgrade_refused(UpgradeRefused::Fault);
        let text = if status == 429 {
            "Too Many Requests\n"
        } else {
            "Service Unavailable\n"
        };
        return refuse(status, text);
    }
    if !app.chat.admit_connection() {
        app.metrics.upgrade_refused(UpgradeRefused::ConnectRate);
        return refuse(429, "Too Many Requests\n");
    }
    if let Err(r) = app
        .config
        .door
        .check(req.uri(), req.headers(), std::time::SystemTime::now())
    {
        // API Gateway's bodies; the reason stays here (it is about credentials).
        let body = if r.status == 401 {
            "{\"message\":\"Unauthorized\"}"
        } else {
            "{\"message\":\"Forbidden\"}"
        };
        app.metrics.upgrade_refused(UpgradeRefused::Auth);
        return refuse(r.status, body);
    }
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let config = app.chat.ws_config;
        let ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        session(app, ws).await;
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header("sec-websocket-accept", accept)
        .body(full(""))
        .expect("valid response")
}

/// How long a closing handshake may take before the socket is dropped anyway.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Closes the connection as API Gateway does, with the closing handshake (RFC 6455 §7.1.1):
/// sends the close frame, then reads and drops whatever the client sent before it saw it,
/// until the client's own close frame; the socket is closed after. Dropped with the
/// client's frames unread, the socket would send a reset instead of a FIN, and the client
/// would see an I/O error after the 1001 (or, on some stacks, lose the 1001 with the
/// reset). A client that neither reads nor answers gets [`CLOSE_GRACE`] in all.
async fn close<S>(ws: &mut WebSocketStream<S>, code: CloseCode, reason: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let handshake = async {
        if ws.close(Some(frame)).await.is_ok() {
            while let Some(Ok(_)) = ws.next().await {}
        }
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, handshake).await;
}

/// One connection, counted open while it lasts and by why it ended.
async fn session<S>(app: Arc<App>, mut ws: WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let _open = app.metrics.stream(Api::Chat);
    let why = serve(&app, &mut ws).await;
    app.metrics.chat_close(why);
}

/// Messages in, frames out, until either side closes or the gateway's lifetime ends.
async fn serve<S>(app: &Arc<App>, ws: &mut WebSocketStream<S>) -> ChatClose
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Out>(64);
    let caller = Arc::new(app.chat.caller());
    // The gateway's clocks: the next close, reset by every message from the client.
    let lifetime = app.chat.lifetime;
    let mut conn = Connection::open(clock::now());
    let mut ends = lifetime.map(|l| l.end(&conn));
    let deadline =
        tokio::time::sleep_until(ends.map_or_else(tokio::time::Instant::now, |(at, _)| {
            clock::instant(at).into()
        }));
    tokio::pin!(deadline);
    // Messages this session sent before: the history its next turn carries.
    let mut turns: u32 = 0;
    loop {
        tokio::select! {
            () = &mut deadline, if ends.is_some() => {
                let why = match ends.map(|(_, why)| why) {
                    Some(Expiry::MaxConnection) => ChatClose::MaxConnection,
                    _ => ChatClose::IdleTimeout,
                };
                close(ws, CloseCode::from(Expiry::CLOSE_CODE), "Going away").await;
                return why;
            }
            incoming = ws.next() => {
                if let (Some(Ok(Message::Text(_) | Message::Binary(_))), Some(l)) = (&incoming, lifetime) {
                    conn.heard(clock::now());
                    let end = l.end(&conn);
                    if Some(end) != ends {
                        ends = Some(end);
                        deadline.as_mut().reset(clock::instant(end.0).into());
                    }
                }
                match incoming {
                    Some(Ok(Message::Text(text))) => {
                        match ChatMessage::from_json(text.as_str()) {
                            Ok(msg) => {
                                let earlier = turns;
                                turns = turns.saturating_add(1);
                                tokio::spawn(turn::answer(app.clone(), caller.clone(), msg, earlier, tx.clone()));
                            }
                            Err(e) => {
                                app.metrics.error(Api::Chat);
                                let frame = ServerFrame::Error {
                                    id: None,
                                    code: ErrorCode::BadRequest,
                                    message: format!("not a chat message: {e}"),
                                };
                                if ws.send(Message::Text(frame.to_json().into())).await.is_err() {
                                    return ChatClose::Error;
                                }
                            }
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        let frame = ServerFrame::Error {
                            id: None,
                            code: ErrorCode::BadRequest,
                            message: "binary frames are not chat messages".into(),
                        };
                        if ws.send(Message::Text(frame.to_json().into())).await.is_err() {
                            return ChatClose::Error;
                        }
                    }
                    Some(Err(WsError::Capacity(_))) => {
                        close(ws, CloseCode::Size, "message too big").await;
                        return ChatClose::TooBig;
                    }
                    // The client closed, or went away without the closing handshake.
                    Some(Ok(Message::Close(_)))
                    | None
                    | Some(Err(
                        WsError::ConnectionClosed
                        | WsError::AlreadyClosed
                        | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake),
                    )) => return ChatClose::Client,
                    Some(Err(_)) => return ChatClose::Error,
                    Some(Ok(_)) => {}
                }
            }
            Some(out) = rx.recv() => {
                // Frames already waiting go out in one write (a template answer's token
                // and done frames, a tick's frames of pipelined answers): one segment
                // instead of several, for the client and for the mock.
                let mut next = Some(out);
                while let Some(out) = next {
                    let text = match out {
                        Out::Frame(f) => f.to_json(),
                        Out::Gateway(e) => e.to_json(),
                        Out::Drop => {
                            let _ = ws.flush().await;
                            return ChatClose::Dropped;
                        }
                    };
                    if ws.feed(Message::Text(text.into())).await.is_err() {
                        return ChatClose::Error;
                    }
                    next = rx.try_recv().ok();
                }
                if ws.flush().await.is_err() {
                    return ChatClose::Error;
                }
            }
        }
    }
}
