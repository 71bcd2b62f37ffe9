//! API Gateway's rules on the chat WebSocket, with the system model's limits shortened to
//! fractions of a second (as a profile's `[system] gateway.… = "…"` overrides would): idle
//! and over-age connections are closed with 1001, even mid-answer; upgrades beyond the
//! connect rate get 429; throttles answer in surge's or API Gateway's frames; `/metrics`
//! counts all of it.
//!
//! Timings are checked from below exactly and from above with seconds of slack, so a busy
//! machine cannot fail them.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use surge_mock::Config;
use surge_mock::chat::gateway::GatewayFrames;
use surge_profile::SystemModel;
use surge_profile::system::Posts;
use surge_protocol::ChatMessage;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The local profile's system model with the gateway's clocks set to `idle` and `max`.
fn system(idle: &str, max: &str) -> SystemModel {
    let mut sys = common::system();
    sys.gateway.idle_timeout = idle.parse().unwrap();
    sys.gateway.max_connection = max.parse().unwrap();
    sys
}

/// Every answer generated and streamed: `tokens` output tokens at `rate` after a 10 ms
/// TTFT, the caches off.
fn stream_every_answer(sys: &mut SystemModel, rate: &str, tokens: &str) {
    sys.bedrock.streaming = true;
    for m in sys.bedrock.models.values_mut() {
        m.ttft = "10ms".parse().unwrap();
        m.output_rate = rate.parse().unwrap();
    }
    for i in sys.intents.values_mut() {
        i.output_tokens = tokens.parse().unwrap();
        i.max_tokens = 500;
    }
    sys.cache.enabled = false;
    sys.semantic_cache.enabled = false;
}

async fn connect(addr: SocketAddr) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/chat"))
        .await
        .unwrap();
    ws
}

fn message(id: &str, text: &str) -> Message {
    let m = ChatMessage {
        session: "s-1".into(),
        id: id.into(),
        store: "comics_us".into(),
        text: text.into(),
    };
    Message::Text(m.to_json().into())
}

/// Reads until the server closes: the text frames seen before, and the close code.
async fn until_closed(ws: &mut Ws, within: Duration) -> (Vec<serde_json::Value>, Option<u16>) {
    let mut frames = Vec::new();
    let give_up = tokio::time::Instant::now() + within;
    for _ in 0..100_000 {
        match tokio::time::timeout_at(give_up, ws.next()).await {
            Err(_) => panic!("not closed within {within:?}; frames: {frames:?}"),
            Ok(Some(Ok(Message::Text(t)))) => {
                frames.push(serde_json::from_str(t.as_str()).unwrap())
            }
            Ok(Some(Ok(Message::Close(c)))) => return (frames, c.map(|c| u16::from(c.code))),
            Ok(Some(Ok(_))) => {}
            Ok(None | Some(Err(_))) => return (frames, None),
        }
    }
    panic!("too many frames")
}

async fn metrics(addr: SocketAddr) -> String {
    reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Waits (at most 5 s) until `/metrics` shows the sample `line`, e.g.
/// `surge_mock_chat_closes_total{reason="client"} 1`.
async fn shows(addr: SocketAddr, line: &str) {
    let mut text = String::new();
    for _ in 0..50 {
        text = metrics(addr).await;
        if text.lines().any(|l| l == line) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("/metrics never showed {line:?}:\n{text}");
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_idle_timeout() {
    let server = common::start(system("300ms", "1h")).await;
    let opened = Instant::now();
    let mut ws = connect(server.addr).await;
    let (frames, code) = until_closed(&mut ws, Duration::from_secs(5)).await;
    let after = opened.elapsed();
    assert_eq!(code, Some(1001), "Going away; frames {frames:?}");
    assert!(
        after >= Duration::from_millis(300),
        "closed after {after:?}"
    );
    shows(
        server.addr,
        "surge_mock_chat_closes_total{reason=\"idle_timeout\"} 1",
    )
    .await;
}

#[tokio::test]
async fn messages_keep_a_connection_alive_until_its_maximum_duration() {
    let server = common::start(system("400ms", "1500ms")).await;
    let opened = Instant::now();
    let ws = connect(server.addr).await;
    let (mut tx, mut rx) = ws.split();
    // A message every 150 ms, well inside the idle timeout, until the server closes.
    let sender = tokio::spawn(async move {
        for i in 0..40 {
            if tx
                .send(message(&format!("m-{i}"), "Where is my order?"))
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    });
    let mut answered = 0;
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(6), rx.next()).await {
            Err(_) => panic!("not closed within 6 s"),
            Ok(Some(Ok(Message::Text(t)))) => answered += usize::from(t.contains("\"done\"")),
            Ok(Some(Ok(Message::Close(c)))) => break c.map(|c| u16::from(c.code)),
            Ok(Some(Ok(_))) => {}
            Ok(other) => panic!("ended without a close frame: {other:?}"),
        }
    };
    let after = opened.elapsed();
    sender.abort();
    assert_eq!(code, Some(1001));
    assert!(
        after >= Duration::from_millis(1500),
        "the idle timeout (400 ms) did not close it early: {after:?}"
    );
    assert!(answered > 0, "it was answered while open");
    shows(
        server.addr,
        "surge_mock_chat_closes_total{reason=\"max_connection\"} 1",
    )
    .await;
    let text = metrics(server.addr).await;
    assert!(
        text.contains("surge_mock_chat_closes_total{reason=\"idle_timeout\"} 0"),
        "{text}"
    );
}

#[tokio::test]
async fn the_maximum_duration_closes_in_the_middle_of_an_answer() {
    let mut sys = system("1h", "800ms");
    stream_every_answer(&mut sys, "20/s", "200");
    let server = common::start(sys).await;
    let mut ws = connect(server.addr).await;
    // 200 tokens at 20/s take 10 s; the connection ends at 0.8 s.
    ws.send(message("m-1", "Can you recommend manga like One Piece?"))
        .await
        .unwrap();
    let (frames, code) = until_closed(&mut ws, Duration::from_secs(5)).await;
    assert_eq!(code, Some(1001));
    assert!(
        frames.iter().all(|f| f["type"] != "done"),
        "no done frame: the answer was cut: {frames:?}"
    );
}

#[tokio::test]
async fn upgrades_beyond_the_connect_rate_are_refused_with_429() {
    let mut sys = common::system();
    sys.gateway.connect_rate = "2/min".parse().unwrap();
    let server = common::start(sys).await;
    // Burst: one second of the rate, but at least one connection.
    let mut first = connect(server.addr).await;
    let err = tokio_tungstenite::connect_async(format!("ws://{}/chat", server.addr))
        .await
        .expect_err("the second upgrade within 30 s is refused");
    match err {
        tokio_tungstenite::tungstenite::Error::Http(r) => assert_eq!(r.status().as_u16(), 429),
        other => panic!("{other:?}"),
    }
    first.close(None).await.unwrap();
    let text = metrics(server.addr).await;
    assert!(
        text.contains("surge_mock_chat_upgrades_refused_total{reason=\"connect_rate\"} 1"),
        "{text}"
    );
    shows(
        server.addr,
        "surge_mock_chat_closes_total{reason=\"client\"} 1",
    )
    .await;
}

/// The first message of a fresh connection, and the throttled second one, as JSON.
async fn throttled_frame(config: Config) -> serde_json::Value {
    let server = common::start_with(config).await;
    let mut ws = connect(server.addr).await;
    ws.send(message("m-1", "Where is my order?")).await.unwrap();
    ws.send(message("m-2", "Where is my order?")).await.unwrap();
    for _ in 0..100 {
        let next = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("an answer within 10 s");
        let Some(Ok(Message::Text(t))) = next else {
            panic!("connection ended: {next:?}")
        };
        let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
        if v["type"] == "error" || v.get("connectionId").is_some() {
            return v;
        }
    }
    panic!("no throttle")
}

#[tokio::test]
async fn throttles_answer_in_surge_frames_by_default_and_api_gateway_frames_on_request() {
    // The account's burst holds one streamed message (itself and two callback posts).
    let mut sys = common::system();
    sys.bedrock.streaming = true;
    sys.gateway.account_rate = "1/min".parse().unwrap();
    sys.gateway.account_burst = 3;
    let surge = throttled_frame(Config::new(sys.clone())).await;
    assert_eq!(surge["type"], "error");
    assert_eq!(surge["code"], "throttled");
    assert_eq!(surge["id"], "m-2");

    let mut config = Config::new(sys);
    config.gateway_frames = GatewayFrames::Aws;
    let aws = throttled_frame(config).await;
    let keys: Vec<&str> = aws
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys.len(),
        3,
        "message, connectionId, requestId only: {aws}"
    );
    assert_eq!(aws["message"], "Too Many Requests");
    assert!(aws["connectionId"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(aws["requestId"].as_str().is_some_and(|s| !s.is_empty()));

    // The per-user limit is the gateway's too (the seed's Layer 1).
    let mut sys = common::system();
    sys.gateway.per_user_rate = "1/min".parse().unwrap();
    let mut config = Config::new(sys);
    config.gateway_frames = GatewayFrames::Aws;
    let aws = throttled_frame(config).await;
    assert_eq!(aws["message"], "Too Many Requests", "{aws}");
}

/// Posted per chunk of 10, a streamed answer of 25 tokens reaches the client as three
/// frames of 10, 10 and 5 tokens; per chunk of 5, as five posts that each count against
/// the account: an account of six requests holds the message and its five posts, so the
/// next message is throttled. Posted per answer a message costs three (itself, the answer,
/// the first token), and the next one gets in.
#[tokio::test]
async fn answers_posted_per_chunk_arrive_in_chunks_and_use_up_the_account() {
    let answer_then_next = |posts: Posts, chunk_tokens: u32| async move {
        let mut sys = common::system();
        stream_every_answer(&mut sys, "1000/s", "25");
        sys.precomputed.enabled = false;
        sys.gateway.posts_per_answer = posts;
        sys.gateway.chunk_tokens = chunk_tokens;
        sys.gateway.account_rate = "1/min".parse().unwrap();
        sys.gateway.account_burst = 6;
        let server = common::start(sys).await;
        let mut ws = connect(server.addr).await;
        let mut seen = Vec::new();
        for id in ["m-1", "m-2"] {
            ws.send(message(id, "Can you recommend manga like One Piece?"))
                .await
                .unwrap();
            for _ in 0..1_000 {
                let next = tokio::time::timeout(Duration::from_secs(10), ws.next())
                    .await
                    .expect("a frame within 10 s");
                let Some(Ok(Message::Text(t))) = next else {
                    panic!("connection ended: {next:?}")
                };
                let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                seen.push(v.clone());
                if v["type"] == "done" || v["type"] == "error" {
                    break;
                }
            }
        }
        seen
    };
    let tokens = |frames: &[serde_json::Value]| -> Vec<u64> {
        frames
            .iter()
            .filter(|f| f["type"] == "token" && f["id"] == "m-1")
            .map(|f| f["tokens"].as_u64().unwrap())
            .collect()
    };
    let tens = answer_then_next(Posts::PerChunk, 10).await;
    assert_eq!(tokens(&tens), [10, 10, 5], "{tens:?}");
    let chunked = answer_then_next(Posts::PerChunk, 5).await;
    assert_eq!(tokens(&chunked), [5, 5, 5, 5, 5], "{chunked:?}");
    let last = chunked.last().unwrap();
    assert_eq!(
        (&last["type"], &last["code"]),
        (&"error".into(), &"throttled".into()),
        "{last}"
    );

    let whole = answer_then_next(Posts::PerAnswer, 5).await;
    assert_eq!(whole.last().unwrap()["type"], "done", "{whole:?}");
}

/// A connection the gateway ends while the client is still sending ends with the closing
/// handshake, as API Gateway's do: the mock reads what the client sent until the client's
/// own close frame, then closes. Dropping the socket with the client's frames unread would
/// reset the connection: the client would see an I/O error after the 1001 (or, on some
/// stacks, lose the 1001 itself) and could not tell a gateway close from a crash.
#[tokio::test]
async fn a_gateway_close_completes_the_closing_handshake_while_the_client_sends() {
    let server = common::start(system("1h", "300ms")).await;
    let ws = connect(server.addr).await;
    let (mut tx, mut rx) = ws.split();
    // Frames the mock must read and answer (each with an error frame), sent faster than it
    // answers, so that some are unread when the connection's time is up.
    let sender = tokio::spawn(async move {
        for _ in 0..200_000 {
            if tx
                .send(Message::Binary(vec![7u8; 200].into()))
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let mut code = None;
    for _ in 0..1_000_000 {
        match tokio::time::timeout(Duration::from_secs(10), rx.next()).await {
            Err(_) => panic!("not closed within 10 s"),
            Ok(Some(Ok(Message::Close(c)))) => {
                code = c.map(|c| u16::from(c.code));
                break;
            }
            Ok(Some(Ok(_))) => {}
            Ok(other) => panic!("ended without a close frame: {other:?}"),
        }
    }
    assert_eq!(code, Some(1001));
    // After the close frame the connection ends cleanly: the end of the stream, not a reset.
    let after = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match rx.next().await {
                Some(Ok(_)) => {}
                other => return other,
            }
        }
    })
    .await
    .expect("the connection ends within 10 s of the close frame");
    sender.abort();
    assert!(
        matches!(after, None | Some(Err(WsError::ConnectionClosed))),
        "the connection was not closed cleanly after 1001: {after:?}"
    );
}
