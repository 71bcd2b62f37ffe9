//! The chat WebSocket: the pipeline's timing follows the system model, the classifier
//! understands the intents' sample texts, caches and limits behave, faults are precise.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use surge_mock::chat::{Classifier, Script};
use surge_mock::{Config, faults::Refuse};
use surge_profile::SystemModel;
use surge_protocol::{ChatMessage, ErrorCode, ServerFrame};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Constant latencies everywhere, so the expected timings are sums.
fn constant_system() -> SystemModel {
    let mut sys = common::system();
    let d = |s: &str| s.parse().unwrap();
    sys.gateway.auth = d("10ms");
    sys.gateway.network = d("10ms");
    sys.orchestrator.cpu_per_message = d("5ms");
    sys.classifier.latency = d("10ms");
    sys.memory.read_latency = d("5ms");
    sys.memory.write_latency = d("5ms");
    sys.cache.enabled = false;
    sys.rag.latency = d("50ms");
    sys.guardrails.latency = d("20ms");
    sys.format.latency = d("5ms");
    sys.bedrock.streaming = true;
    for m in sys.bedrock.models.values_mut() {
        m.ttft = d("100ms");
        m.output_rate = "100/s".parse().unwrap();
    }
    for i in sys.intents.values_mut() {
        i.output_tokens = "20".parse().unwrap();
    }
    sys
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

/// Sends one message and collects its frames (with arrival times) up to done or error.
async fn ask(ws: &mut Ws, id: &str, text: &str) -> (Instant, Vec<(Instant, ServerFrame)>) {
    let sent = Instant::now();
    ws.send(message(id, text)).await.unwrap();
    let mut frames = Vec::new();
    for _ in 0..10_000 {
        let next = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("an answer within 20 s");
        let Some(Ok(Message::Text(t))) = next else {
            panic!("connection ended: {next:?}")
        };
        let frame: ServerFrame = serde_json::from_str(t.as_str()).unwrap();
        let end = matches!(frame, ServerFrame::Done { .. } | ServerFrame::Error { .. });
        frames.push((Instant::now(), frame));
        if end {
            break;
        }
    }
    (sent, frames)
}

/// The usage the done frame of an answer reports.
fn usage_of(frames: &[(Instant, ServerFrame)]) -> &surge_protocol::Usage {
    match frames.last() {
        Some((_, ServerFrame::Done { usage, .. })) => usage,
        last => panic!("the answer ends with a done frame, not {last:?}"),
    }
}

/// A chat context of 250 tokens a turn and every system prompt from the prompt cache.
fn cached_context_system() -> SystemModel {
    let mut sys = constant_system();
    sys.prompt.context_tokens = "250".parse().unwrap();
    sys.prompt.cache_hit_ratio = "100%".parse().unwrap();
    sys
}

const RECOMMEND: &str = "Can you recommend manga like One Piece?";

#[test]
fn the_classifier_learns_every_intent_from_its_texts() {
    let sys = common::system();
    let c = Classifier::learn(&sys.intents);
    let names: Vec<&String> = sys.intents.keys().collect();
    for (name, intent) in &sys.intents {
        for text in &intent.texts {
            let got = c.classify(text, Script::of(text));
            assert_eq!(names[got], name, "{text:?}");
        }
    }
    let unseen = [
        (
            "Could you recommend something like Naruto?",
            "recommendation",
        ),
        ("返品したいです", "simple_faq"),
        (
            "Where is my package? It should arrive today",
            "order_tracking",
        ),
        ("hello!", "chitchat"),
    ];
    for (text, want) in unseen {
        assert_eq!(c.name(c.classify(text, Script::Latin)), want, "{text:?}");
    }
}

#[tokio::test]
async fn ttft_and_inter_token_gaps_follow_the_model() {
    let server = common::start(constant_system()).await;
    let mut ws = connect(server.addr).await;
    // recommendation: smart model, retrieval. TTFT = auth 10 + cpu 5 + classify 10 +
    // memory 5 + rag 50 + model TTFT 100 + network 10 = 190 ms; 20 tokens 10 ms apart.
    let (sent, frames) = ask(&mut ws, "m-1", "Can you recommend manga like One Piece?").await;
    let tokens: Vec<Instant> = frames
        .iter()
        .filter(|(_, f)| matches!(f, ServerFrame::Token { .. }))
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(tokens.len(), 20, "one frame per token without a tick");
    let ttft = tokens[0] - sent;
    assert!(
        ttft >= Duration::from_millis(133) && ttft <= Duration::from_millis(190 * 13 / 10 + 50),
        "TTFT {ttft:?}, configured 190 ms"
    );
    let gaps = (tokens[19] - tokens[0]) / 19;
    assert!(
        gaps >= Duration::from_millis(7) && gaps <= Duration::from_millis(13 + 5),
        "mean inter-token gap {gaps:?}, configured 10 ms"
    );
    let (_, ServerFrame::Done { id, usage }) = frames.last().unwrap() else {
        panic!("done last")
    };
    assert_eq!(id, "m-1");
    assert_eq!(usage.model.as_deref(), Some("sonnet"));
    assert_eq!(usage.intent, "recommendation");
    assert_eq!(usage.output_tokens, 20);
    assert!(
        usage.input_tokens > 1000 && usage.cost_usd > 0.0,
        "{usage:?}"
    );
    assert!(!usage.cache_hit);
}

#[tokio::test]
async fn a_model_of_one_slot_serves_one_call_at_a_time() {
    let mut sys = constant_system();
    for m in sys.bedrock.models.values_mut() {
        m.max_concurrency = Some(1);
    }
    let server = common::start(sys).await;
    let (mut a, mut b) = (connect(server.addr).await, connect(server.addr).await);
    let text = RECOMMEND;
    // Each call holds the slot for TTFT 100 ms + 20 tokens at 100/s = 300 ms.
    let ((_, first), (_, second)) =
        tokio::join!(ask(&mut a, "m-1", text), ask(&mut b, "m-2", text));
    let first_token = |frames: &[(Instant, ServerFrame)]| {
        frames
            .iter()
            .find(|(_, f)| matches!(f, ServerFrame::Token { .. }))
            .map(|(t, _)| *t)
            .unwrap()
    };
    let (early, late) = {
        let (x, y) = (first_token(&first), first_token(&second));
        (x.min(y), x.max(y))
    };
    let waited = late - early;
    assert!(
        waited >= Duration::from_millis(250),
        "the second call waited for the slot: first tokens {waited:?} apart"
    );
}

#[tokio::test]
async fn a_cached_system_prompt_is_neither_read_nor_charged() {
    let mut sys = cached_context_system();
    for m in sys.bedrock.models.values_mut() {
        m.cache_read_price_per_million = Some("$0".parse().unwrap());
    }
    let server = common::start(sys.clone()).await;
    let mut ws = connect(server.addr).await;
    let (_, frames) = ask(&mut ws, "m-1", RECOMMEND).await;
    let usage = usage_of(&frames);
    // Only the context is read; the prompt came from the cache, free.
    assert_eq!(usage.input_tokens, 250, "{usage:?}");
    let sonnet = &sys.bedrock.models["sonnet"];
    let expected = 250.0 / 1e6 * sonnet.input_price_per_million.dollars()
        + 20.0 / 1e6 * sonnet.output_price_per_million.dollars();
    assert!(
        (usage.cost_usd - expected).abs() < 1e-12,
        "{usage:?} vs {expected}"
    );
}

#[tokio::test]
async fn the_context_grows_with_each_turn_of_the_session() {
    let mut sys = cached_context_system();
    sys.prompt.history = Some(surge_profile::system::History {
        tokens_per_turn: "100".parse().unwrap(),
        turns: 2,
    });
    let server = common::start(sys).await;
    let mut ws = connect(server.addr).await;
    let mut inputs = Vec::new();
    for i in 0..4 {
        let (_, frames) = ask(&mut ws, &format!("m-{i}"), RECOMMEND).await;
        inputs.push(usage_of(&frames).input_tokens);
    }
    // The context, plus 100 tokens per earlier turn, at most two kept.
    assert_eq!(inputs, [250, 350, 450, 450]);
    // A new session starts without history.
    let mut fresh = connect(server.addr).await;
    let (_, frames) = ask(&mut fresh, "f-0", RECOMMEND).await;
    assert_eq!(usage_of(&frames).input_tokens, 250);
}

#[tokio::test]
async fn a_token_tick_batches_frames_without_losing_tokens() {
    let mut sys = constant_system();
    for m in sys.bedrock.models.values_mut() {
        m.output_rate = "1000/s".parse().unwrap();
    }
    for i in sys.intents.values_mut() {
        i.output_tokens = "200".parse().unwrap();
        i.max_tokens = 500;
    }
    let mut config = Config::new(sys);
    config.token_tick = Duration::from_millis(50);
    let server = common::start_with(config).await;
    let mut ws = connect(server.addr).await;
    let (_, frames) = ask(
        &mut ws,
        "m-1",
        "Suggest a new fantasy series for a teenager",
    )
    .await;
    let counts: Vec<u32> = frames
        .iter()
        .filter_map(|(_, f)| match f {
            ServerFrame::Token { tokens, .. } => Some(*tokens),
            _ => None,
        })
        .collect();
    assert_eq!(counts.iter().sum::<u32>(), 200);
    assert!(
        counts.len() <= 10,
        "200 tokens over 200 ms in frames ≥ 50 ms apart: {counts:?}"
    );
}

#[tokio::test]
async fn templates_and_semantic_cache_hits_skip_the_model() {
    let mut sys = constant_system();
    sys.semantic_cache.enabled = true;
    let server = common::start(sys).await;
    let mut ws = connect(server.addr).await;
    let (_, frames) = ask(&mut ws, "m-1", "Where is my order?").await;
    let (_, ServerFrame::Done { usage, .. }) = frames.last().unwrap() else {
        panic!("done")
    };
    assert_eq!(
        (usage.intent.as_str(), usage.model.as_deref()),
        ("order_tracking", None)
    );
    assert_eq!(frames.len(), 2, "one token frame, then done");

    let (_, first) = ask(&mut ws, "m-2", "What is your return policy?").await;
    let (_, ServerFrame::Done { usage, .. }) = first.last().unwrap() else {
        panic!("done")
    };
    assert!(!usage.cache_hit && usage.model.is_some());
    let (_, again) = ask(&mut ws, "m-3", "what is your return policy").await;
    let (_, ServerFrame::Done { usage, .. }) = again.last().unwrap() else {
        panic!("done")
    };
    assert!(usage.cache_hit && usage.model.is_none(), "{usage:?}");
    assert_eq!(usage.output_tokens, 20);
}

#[tokio::test]
async fn the_per_user_rate_throttles_with_an_error_frame() {
    let mut sys = constant_system();
    sys.gateway.per_user_rate = "2/min".parse().unwrap();
    let server = common::start(sys).await;
    let mut ws = connect(server.addr).await;
    for id in ["a", "b"] {
        let (_, f) = ask(&mut ws, id, "Where is my order?").await;
        assert!(matches!(f.last().unwrap().1, ServerFrame::Done { .. }));
    }
    let (_, f) = ask(&mut ws, "c", "Where is my order?").await;
    assert!(
        matches!(&f.last().unwrap().1, ServerFrame::Error { id: Some(id), code: ErrorCode::Throttled, .. } if id == "c"),
        "{f:?}"
    );
}

#[tokio::test]
async fn bad_messages_get_bad_request_and_oversized_ones_close_the_socket() {
    let server = common::start(constant_system()).await;
    let mut ws = connect(server.addr).await;
    ws.send(Message::Text(r#"{"type":"message","id":"x"}"#.into()))
        .await
        .unwrap();
    let Some(Ok(Message::Text(t))) = ws.next().await else {
        panic!("an error frame")
    };
    let f: ServerFrame = serde_json::from_str(t.as_str()).unwrap();
    assert!(matches!(
        f,
        ServerFrame::Error {
            code: ErrorCode::BadRequest,
            ..
        }
    ));
    // Still serving on the same connection.
    let (_, f) = ask(&mut ws, "ok", "Where is my order?").await;
    assert!(matches!(f.last().unwrap().1, ServerFrame::Done { .. }));
    // 200 KB is over the gateway's 128 KB message limit.
    let _ = ws.send(message("big", &"x".repeat(200 * 1024))).await;
    let mut closed = false;
    for _ in 0..10 {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(c))))) => {
                assert_eq!(u16::from(c.code), 1009);
                closed = true;
                break;
            }
            Ok(Some(Ok(_))) => continue,
            _ => {
                closed = true;
                break;
            }
        }
    }
    assert!(closed);
}

#[tokio::test]
async fn faults_refuse_drop_and_fail_precisely() {
    // Refused upgrades.
    let mut config = Config::new(constant_system());
    config.faults.refuse = Some(Refuse {
        status: 503,
        rate: 1.0,
    });
    let server = common::start_with(config).await;
    let err = tokio_tungstenite::connect_async(format!("ws://{}/chat", server.addr))
        .await
        .unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(r) => assert_eq!(r.status().as_u16(), 503),
        other => panic!("{other:?}"),
    }

    // Every message drops the connection, without a done frame.
    let mut config = Config::new(constant_system());
    config.faults.drop_rate = 1.0;
    let server = common::start_with(config).await;
    let mut ws = connect(server.addr).await;
    ws.send(message("m", "hi")).await.unwrap();
    let next = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap();
    assert!(matches!(next, None | Some(Err(_))), "{next:?}");

    // Every message fails with server_error.
    let mut config = Config::new(constant_system());
    config.faults.errors = vec!["chat=1".parse().unwrap()];
    let server = common::start_with(config).await;
    let mut ws = connect(server.addr).await;
    let (_, f) = ask(&mut ws, "m", "hi").await;
    assert!(matches!(
        f.last().unwrap().1,
        ServerFrame::Error {
            code: ErrorCode::ServerError,
            ..
        }
    ));
    let metrics = reqwest::get(format!("http://{}/metrics", server.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("surge_mock_faults_total{kind=\"error\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("surge_mock_request_duration_seconds_bucket"));
}
