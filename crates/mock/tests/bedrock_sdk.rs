//! The Bedrock Runtime API against the real AWS SDK for Rust: Converse, ConverseStream,
//! InvokeModel and InvokeModelWithResponseStream parse in the SDK, quotas throttle with
//! the typed ThrottlingException, bad requests get ValidationException.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ContentBlockDelta, ConversationRole, ConverseOutput, ConverseStreamOutput,
    InferenceConfiguration, Message, ResponseStream, StopReason,
};
use serde_json::{Value, json};
use surge_profile::SystemModel;

const SONNET: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";

/// The local system with a fast, constant-speed model: 20 ms TTFT, 1,000 tokens/s.
fn fast_system() -> SystemModel {
    let mut sys = common::system();
    for m in sys.bedrock.models.values_mut() {
        m.ttft = "20ms".parse().unwrap();
        m.output_rate = "1000/s".parse().unwrap();
    }
    sys
}

fn user(text: &str) -> Message {
    Message::builder()
        .role(ConversationRole::User)
        .content(ContentBlock::Text(text.into()))
        .build()
        .unwrap()
}

async fn client(sys: SystemModel) -> (surge_mock::Server, Client) {
    let server = common::start(sys).await;
    let client = common::bedrock(server.addr).await;
    (server, client)
}

#[tokio::test]
async fn converse_respects_max_tokens_and_reports_usage() {
    let (_server, client) = client(fast_system()).await;
    let started = Instant::now();
    let out = client
        .converse()
        .model_id(SONNET)
        .messages(user("Can you recommend manga like One Piece?"))
        .inference_config(InferenceConfiguration::builder().max_tokens(5).build())
        .send()
        .await
        .unwrap();
    let usage = out.usage().unwrap();
    assert_eq!(
        usage.output_tokens(),
        5,
        "uniform(200, 400) capped at maxTokens"
    );
    assert!(usage.input_tokens() > 0);
    assert_eq!(usage.total_tokens(), usage.input_tokens() + 5);
    assert_eq!(out.stop_reason(), &StopReason::MaxTokens);
    let Some(ConverseOutput::Message(m)) = out.output() else {
        panic!("a message")
    };
    assert_eq!(
        m.content()[0].as_text().unwrap().split_whitespace().count(),
        5
    );
    let latency = out.metrics().unwrap().latency_ms();
    assert!(
        latency >= 20 && latency <= started.elapsed().as_millis() as i64 + 1,
        "{latency}"
    );

    // The bare model name works too.
    client
        .converse()
        .model_id("haiku")
        .messages(user("hi"))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn converse_stream_events_parse_and_arrive_after_the_ttft() {
    let (_server, client) = client(fast_system()).await;
    let started = Instant::now();
    let mut out = client
        .converse_stream()
        .model_id(SONNET) // sent as anthropic.claude-3-5-sonnet-20240620-v1%3A0
        .messages(user("What is your return policy?"))
        .inference_config(InferenceConfiguration::builder().max_tokens(40).build())
        .send()
        .await
        .unwrap();
    let (mut deltas, mut first, mut kinds) = (0, None, Vec::new());
    let mut metadata = None;
    for _ in 0..1000 {
        let Some(event) = out.stream.recv().await.unwrap() else {
            break;
        };
        match &event {
            ConverseStreamOutput::MessageStart(_) => kinds.push("start"),
            ConverseStreamOutput::ContentBlockDelta(d) => {
                first.get_or_insert_with(|| started.elapsed());
                assert!(matches!(d.delta(), Some(ContentBlockDelta::Text(t)) if !t.is_empty()));
                deltas += 1;
            }
            ConverseStreamOutput::ContentBlockStop(_) => kinds.push("block-stop"),
            ConverseStreamOutput::MessageStop(s) => {
                assert_eq!(s.stop_reason(), &StopReason::MaxTokens);
                kinds.push("stop");
            }
            ConverseStreamOutput::Metadata(m) => metadata = Some(m.clone()),
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert_eq!(kinds, ["start", "block-stop", "stop"]);
    assert_eq!(deltas, 40);
    let m = metadata.expect("a metadata event");
    assert_eq!(m.usage().unwrap().output_tokens(), 40);
    assert!(m.metrics().unwrap().latency_ms() >= 20 + 39);
    assert!(first.unwrap() >= Duration::from_millis(20), "{first:?}");
}

#[tokio::test]
async fn invoke_model_takes_an_anthropic_body() {
    let (_server, client) = client(fast_system()).await;
    let body = json!({
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 7,
        "system": "You are MangaAssist.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi there!"}]}]
    });
    let out = client
        .invoke_model()
        .model_id(SONNET)
        .content_type("application/json")
        .body(Blob::new(body.to_string()))
        .send()
        .await
        .unwrap();
    let answer: Value = serde_json::from_slice(out.body().as_ref()).unwrap();
    assert_eq!(answer["type"], "message");
    assert_eq!(answer["usage"]["output_tokens"], 7);
    assert_eq!(answer["stop_reason"], "max_tokens");
    assert!(answer["content"][0]["text"].as_str().unwrap().len() > 7);
}

#[tokio::test]
async fn invoke_model_with_response_stream_sends_anthropic_events() {
    let (_server, client) = client(fast_system()).await;
    let body = json!({
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 12,
        "messages": [{"role": "user", "content": "Where is my order?"}]
    });
    let mut out = client
        .invoke_model_with_response_stream()
        .model_id("haiku")
        .body(Blob::new(body.to_string()))
        .send()
        .await
        .unwrap();
    let mut types = Vec::new();
    for _ in 0..1000 {
        let Some(event) = out.body.recv().await.unwrap() else {
            break;
        };
        let ResponseStream::Chunk(part) = event else {
            panic!("chunk events only")
        };
        let v: Value = serde_json::from_slice(part.bytes().unwrap().as_ref()).unwrap();
        types.push(v["type"].as_str().unwrap().to_string());
        if v["type"] == "message_stop" {
            assert_eq!(
                v["amazon-bedrock-invocationMetrics"]["outputTokenCount"],
                12
            );
        }
    }
    assert_eq!(types.first().map(String::as_str), Some("message_start"));
    assert_eq!(
        types.iter().filter(|t| *t == "content_block_delta").count(),
        12
    );
    assert_eq!(types.last().map(String::as_str), Some("message_stop"));
}

#[tokio::test]
async fn over_quota_is_a_typed_throttling_exception() {
    let mut sys = fast_system();
    let sonnet = sys.bedrock.models.get_mut("sonnet").unwrap();
    sonnet.requests_per_minute = 1;
    let (_server, client) = client(sys).await;
    client
        .converse()
        .model_id(SONNET)
        .messages(user("one"))
        .send()
        .await
        .unwrap();
    let e = client
        .converse_stream()
        .model_id(SONNET)
        .messages(user("two"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(e.is_throttling_exception(), "{e:?}");
    let e = client
        .converse()
        .model_id(SONNET)
        .messages(user("three"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(e.is_throttling_exception(), "{e:?}");
}

#[tokio::test]
async fn unknown_models_and_bad_bodies_are_validation_errors() {
    let (_server, client) = client(fast_system()).await;
    let e = client
        .converse()
        .model_id("no.such-model-v1:0")
        .messages(user("x"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(e.is_validation_exception(), "{e:?}");
    let e = client
        .invoke_model()
        .model_id(SONNET)
        .body(Blob::new(
            r#"{"messages": [{"role": "user", "content": "no max_tokens"}]}"#,
        ))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(e.is_validation_exception(), "{e:?}");
    let e = client
        .invoke_model()
        .model_id(SONNET)
        .body(Blob::new("{not json"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(e.is_validation_exception(), "{e:?}");
    // The server keeps serving.
    client
        .converse()
        .model_id(SONNET)
        .messages(user("still there?"))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn an_injected_error_arrives_mid_stream_as_an_exception_event() {
    let mut config = surge_mock::Config::new(fast_system());
    config.faults.errors = vec!["bedrock=1".parse().unwrap()];
    let server = common::start_with(config).await;
    let client = common::bedrock(server.addr).await;
    let mut out = client
        .converse_stream()
        .model_id(SONNET)
        .messages(user("hi"))
        .send()
        .await
        .unwrap();
    let mut deltas = 0;
    let mut error = None;
    for _ in 0..1000 {
        match out.stream.recv().await {
            Ok(Some(ConverseStreamOutput::ContentBlockDelta(_))) => deltas += 1,
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => {
                error = Some(e.into_service_error());
                break;
            }
        }
    }
    assert_eq!(deltas, 1, "the first token, then the exception");
    let e = error.expect("an exception event");
    assert!(e.is_internal_server_exception(), "{e:?}");
}
