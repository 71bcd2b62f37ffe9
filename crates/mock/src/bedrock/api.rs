//! Bedrock Runtime over HTTP: `POST /model/{modelId}/converse`, `/converse-stream`,
//! `/invoke` (Anthropic messages body) and `/invoke-with-response-stream`.
//!
//! Errors before a stream are JSON `{"message":…}` with `x-amzn-ErrorType`; an unknown
//! model is a `ValidationException` ("The provided model identifier is invalid."), as
//! Bedrock answers for an id it does not know. Streams are AWS event-stream messages, one
//! flushed HTTP chunk each, so the client sees the real time to first token. An injected
//! error fault on a stream arrives mid-stream, after the first token, as an
//! `internalServerException` event.

use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http::{Request, Response, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{ModelState, text_of, token_text};
use crate::App;
use crate::eventstream::Message;
use crate::metrics::Api;
use crate::server::{Body, full, read_body, request_id};

/// Default `maxTokens` of a Converse call that sets none.
const DEFAULT_MAX_TOKENS: u32 = 4096;

/// An error answer of the Bedrock Runtime API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BedrockError {
    #[error("{0}")]
    Validation(String),
    #[error("Too many tokens, please wait before trying again.")]
    Throttling,
    #[error("{0}")]
    ServiceUnavailable(String),
    #[error("{0}")]
    Internal(String),
    #[error("{0}")]
    UnknownOperation(String),
}

impl BedrockError {
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Validation(_) => "ValidationException",
            Self::Throttling => "ThrottlingException",
            Self::ServiceUnavailable(_) => "ServiceUnavailableException",
            Self::Internal(_) => "InternalServerException",
            Self::UnknownOperation(_) => "UnknownOperationException",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::Validation(_) => 400,
            Self::Throttling => 429,
            Self::ServiceUnavailable(_) => 503,
            Self::Internal(_) => 500,
            Self::UnknownOperation(_) => 404,
        }
    }

    /// The event-stream exception type of this error (lower camel case).
    fn exception_type(&self) -> String {
        let t = self.type_name();
        t[..1].to_lowercase() + &t[1..]
    }

    fn response(&self) -> Response<Body> {
        Response::builder()
            .status(self.status())
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-amzn-ErrorType", self.type_name())
            .header("x-amzn-RequestId", request_id())
            .body(full(json!({ "message": self.to_string() }).to_string()))
            .expect("valid response")
    }
}

/// The four operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Converse,
    ConverseStream,
    Invoke,
    InvokeStream,
}

impl Operation {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "converse" => Self::Converse,
            "converse-stream" => Self::ConverseStream,
            "invoke" => Self::Invoke,
            "invoke-with-response-stream" => Self::InvokeStream,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Converse => "Converse",
            Self::ConverseStream => "ConverseStream",
            Self::Invoke => "InvokeModel",
            Self::InvokeStream => "InvokeModelWithResponseStream",
        }
    }

    fn streams(self) -> bool {
        matches!(self, Self::ConverseStream | Self::InvokeStream)
    }

    fn anthropic(self) -> bool {
        matches!(self, Self::Invoke | Self::InvokeStream)
    }
}

/// What a request asks for, once its body is understood.
struct Call {
    input_tokens: u32,
    max_tokens: u32,
}

fn invalid(msg: impl Into<String>) -> BedrockError {
    BedrockError::Validation(msg.into())
}

/// Characters of text in a content list (`[{"text":…}]`) or a plain string.
fn text_chars(content: &Value) -> Result<usize, BedrockError> {
    match content {
        Value::String(s) => Ok(s.chars().count()),
        Value::Array(blocks) => Ok(blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .map(|t| t.chars().count())
            .sum()),
        _ => Err(invalid(
            "content must be a string or a list of content blocks",
        )),
    }
}

fn messages_chars(body: &Value) -> Result<usize, BedrockError> {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| invalid("A conversation must start with a user message. Try again with a conversation that starts with a user message."))?;
    let mut chars = 0;
    for m in messages {
        match m.get("role").and_then(Value::as_str) {
            Some("user" | "assistant") => {}
            _ => return Err(invalid("messages: role must be user or assistant")),
        }
        chars += text_chars(m.get("content").unwrap_or(&Value::Null))?;
    }
    Ok(chars)
}

fn positive(v: Option<&Value>, field: &str) -> Result<Option<u32>, BedrockError> {
    match v {
        None => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => Ok(Some(n.min(u64::from(u32::MAX)) as u32)),
            _ => Err(invalid(format!("{field} must be a positive integer"))),
        },
    }
}

fn parse_call(op: Operation, body: &[u8], model: &super::Bedrock) -> Result<Call, BedrockError> {
    let body: Value = serde_json::from_slice(body).map_err(|e| {
        invalid(format!(
            "Malformed input request: {e}, please reformat your input and try again."
        ))
    })?;
    let mut chars = messages_chars(&body)?;
    if let Some(system) = body.get("system") {
        chars += text_chars(system)?;
    }
    let max_tokens = if op.anthropic() {
        positive(body.get("max_tokens"), "max_tokens")?
            .ok_or_else(|| invalid("Malformed input request: #: required key [max_tokens] not found, please reformat your input and try again."))?
    } else {
        positive(
            body.get("inferenceConfig").and_then(|c| c.get("maxTokens")),
            "inferenceConfig.maxTokens",
        )?
        .unwrap_or(DEFAULT_MAX_TOKENS)
    };
    Ok(Call {
        input_tokens: model.input_tokens(chars),
        max_tokens,
    })
}

/// Serves one `/model/...` request; `rest` is the path after `/model/`.
pub async fn handle(app: Arc<App>, rest: &str, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let (id, op) = match rest.rsplit_once('/') {
        Some((id, op)) => (id, Operation::parse(op)),
        None => (rest, None),
    };
    let Some(op) = op else {
        app.metrics.request(Api::Bedrock, "unknown");
        app.metrics.error(Api::Bedrock);
        return BedrockError::UnknownOperation(format!("Unknown operation: {rest}")).response();
    };
    app.metrics.request(Api::Bedrock, op.name());
    app.faults.before_request(Api::Bedrock, &app.metrics).await;
    let id = percent_encoding::percent_decode_str(id)
        .decode_utf8_lossy()
        .into_owned();
    let result = prepare(&app, op, &id, req).await;
    match result {
        Ok((model, call, lease)) if op.streams() => {
            stream(app.clone(), op, model, call, lease, started)
        }
        Ok((model, call, lease)) => whole(&app, op, model, call, lease, started).await,
        Err(e) => {
            if e == BedrockError::Throttling {
                app.metrics.throttle(Api::Bedrock);
            } else {
                app.metrics.error(Api::Bedrock);
            }
            app.metrics
                .observe(Api::Bedrock, started.elapsed().as_secs_f64());
            e.response()
        }
    }
}

/// Finds the model, reads and checks the body, and reserves the quota.
async fn prepare(
    app: &App,
    op: Operation,
    id: &str,
    req: Request<Incoming>,
) -> Result<(usize, Call, super::Lease), BedrockError> {
    let bedrock = &app.bedrock;
    let model = bedrock
        .models
        .iter()
        .position(|m| m.spec.id == id || m.name == id)
        .filter(|_| bedrock.enabled)
        .ok_or_else(|| invalid("The provided model identifier is invalid."))?;
    let body = read_body(req, app.config.max_body)
        .await
        .ok_or_else(|| invalid("Input is too long for requested model."))?;
    let call = parse_call(op, &body, bedrock)?;
    if !op.streams() && app.faults.inject_error(Api::Bedrock, &app.metrics) {
        return Err(BedrockError::Internal(
            "Internal server error (injected fault)".into(),
        ));
    }
    let m = &bedrock.models[model];
    let lease = m
        .reserve(m.reservation(f64::from(call.input_tokens), call.max_tokens))
        .ok_or(BedrockError::Throttling)?;
    Ok((model, call, lease))
}

/// A generated answer: its length and its token schedule.
struct Answer {
    output: u32,
    timing: super::Timing,
}

impl Answer {
    fn draw(app: &App, m: &ModelState, call: &Call) -> Self {
        let mut rng = rand::rng();
        Self {
            output: app.bedrock.draw_output(call.max_tokens, &mut rng),
            timing: m.timing(f64::from(call.input_tokens), &mut rng),
        }
    }

    fn stop_reason(&self, call: &Call) -> &'static str {
        if self.output >= call.max_tokens {
            "max_tokens"
        } else {
            "end_turn"
        }
    }
}

fn settle(m: &ModelState, call: &Call, lease: super::Lease, output: u32) {
    let input = f64::from(call.input_tokens);
    let reserved = m.reservation(input, call.max_tokens);
    m.settle(lease, reserved, m.charge(input, f64::from(output)));
}

async fn whole(
    app: &App,
    op: Operation,
    model: usize,
    call: Call,
    lease: super::Lease,
    started: Instant,
) -> Response<Body> {
    let m = &app.bedrock.models[model];
    let slot = m.serve().await;
    let answer = Answer::draw(app, m, &call);
    tokio::time::sleep_until(answer.timing.due(answer.output).into()).await;
    app.faults.pass_stall(&app.metrics).await;
    drop(slot);
    settle(m, &call, lease, answer.output);
    let text = text_of(0, answer.output);
    let latency_ms = started.elapsed().as_millis() as u64;
    let (input, output) = (call.input_tokens, answer.output);
    let body = if op.anthropic() {
        json!({
            "id": format!("msg_bdrk_{}", &request_id()[..8]),
            "type": "message", "role": "assistant", "model": m.spec.id,
            "content": [{"type": "text", "text": text}],
            "stop_reason": answer.stop_reason(&call), "stop_sequence": null,
            "usage": {"input_tokens": input, "output_tokens": output}
        })
    } else {
        json!({
            "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
            "stopReason": answer.stop_reason(&call),
            "usage": {"inputTokens": input, "outputTokens": output, "totalTokens": input + output},
            "metrics": {"latencyMs": latency_ms}
        })
    };
    app.metrics
        .observe(Api::Bedrock, started.elapsed().as_secs_f64());
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-amzn-RequestId", request_id())
        .header("x-amzn-bedrock-input-token-count", input)
        .header("x-amzn-bedrock-output-token-count", output)
        .header("x-amzn-bedrock-invocation-latency", latency_ms)
        .body(full(body.to_string()))
        .expect("valid response")
}

/// The events of one streamed answer, in the operation's vocabulary.
struct Events {
    op: Operation,
    model_id: String,
}

impl Events {
    fn event(&self, kind: &str, payload: Value) -> Bytes {
        if self.op.anthropic() {
            let mut p = payload;
            p["type"] = json!(kind);
            let bytes = B64.encode(p.to_string());
            Message::event("chunk", json!({ "bytes": bytes }).to_string()).encode()
        } else {
            Message::event(kind, payload.to_string()).encode()
        }
    }

    fn start(&self, input: u32) -> Vec<Bytes> {
        if self.op.anthropic() {
            vec![
                self.event(
                    "message_start",
                    json!({"message": {
                    "id": format!("msg_bdrk_{}", &request_id()[..8]), "type": "message",
                    "role": "assistant", "model": self.model_id, "content": [],
                    "stop_reason": null, "stop_sequence": null,
                    "usage": {"input_tokens": input, "output_tokens": 1}}}),
                ),
                self.event(
                    "content_block_start",
                    json!({"index": 0, "content_block": {"type": "text", "text": ""}}),
                ),
            ]
        } else {
            vec![self.event("messageStart", json!({"role": "assistant"}))]
        }
    }

    fn delta(&self, text: &str) -> Bytes {
        if self.op.anthropic() {
            self.event(
                "content_block_delta",
                json!({"index": 0, "delta": {"type": "text_delta", "text": text}}),
            )
        } else {
            self.event(
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"text": text}}),
            )
        }
    }

    fn end(
        &self,
        stop: &str,
        input: u32,
        output: u32,
        latency_ms: u64,
        first_ms: u64,
    ) -> Vec<Bytes> {
        if self.op.anthropic() {
            vec![
                self.event("content_block_stop", json!({"index": 0})),
                self.event("message_delta", json!({"delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": output}})),
                self.event("message_stop", json!({"amazon-bedrock-invocationMetrics": {
                    "inputTokenCount": input, "outputTokenCount": output,
                    "invocationLatency": latency_ms, "firstByteLatency": first_ms}})),
            ]
        } else {
            vec![
                self.event("contentBlockStop", json!({"contentBlockIndex": 0})),
                self.event("messageStop", json!({"stopReason": stop})),
                self.event("metadata", json!({
                    "usage": {"inputTokens": input, "outputTokens": output, "totalTokens": input + output},
                    "metrics": {"latencyMs": latency_ms}})),
            ]
        }
    }
}

fn stream(
    app: Arc<App>,
    op: Operation,
    model: usize,
    call: Call,
    lease: super::Lease,
    started: Instant,
) -> Response<Body> {
    let m = &app.bedrock.models[model];
    let Ok(permit) = app.bedrock.streams.clone().try_acquire_owned() else {
        settle(m, &call, lease, 0);
        app.metrics.error(Api::Bedrock);
        return BedrockError::ServiceUnavailable(
            "Too many open response streams on this mock".into(),
        )
        .response();
    };
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let events = Events {
        op,
        model_id: m.spec.id.clone(),
    };
    let task_app = app.clone();
    tokio::spawn(async move {
        let _permit = permit;
        let app = task_app;
        let _open = app.metrics.stream(Api::Bedrock);
        let m = &app.bedrock.models[model];
        let _slot = m.serve().await;
        let answer = Answer::draw(&app, m, &call);
        let fail_at = app
            .faults
            .inject_error(Api::Bedrock, &app.metrics)
            .then_some(1);
        let mut sent = 0;
        let mut first_ms = 0;
        for i in 0..answer.output {
            tokio::time::sleep_until(answer.timing.due(i).into()).await;
            app.faults.pass_stall(&app.metrics).await;
            let mut out = Vec::new();
            if i == 0 {
                first_ms = started.elapsed().as_millis() as u64;
                out = events.start(call.input_tokens);
            }
            if fail_at == Some(i) {
                let e = BedrockError::Internal("Internal server error (injected fault)".into());
                let _ = tx
                    .send(Message::exception(&e.exception_type(), &e.to_string()).encode())
                    .await;
                settle(m, &call, lease, sent);
                app.metrics.error(Api::Bedrock);
                return;
            }
            out.push(events.delta(token_text(i)));
            for chunk in out {
                if tx.send(chunk).await.is_err() {
                    // The client went away: settle what was generated.
                    settle(m, &call, lease, sent);
                    return;
                }
            }
            sent += 1;
        }
        settle(m, &call, lease, sent);
        let latency = started.elapsed().as_millis() as u64;
        let stop = answer.stop_reason(&call);
        for chunk in events.end(stop, call.input_tokens, sent, latency, first_ms) {
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
        app.metrics
            .observe(Api::Bedrock, started.elapsed().as_secs_f64());
    });
    let body = StreamBody::new(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(Frame::data(b)), rx))
    }));
    Response::builder()
        .header(header::CONTENT_TYPE, "application/vnd.amazon.eventstream")
        .header("x-amzn-RequestId", request_id())
        .header("x-amzn-bedrock-content-type", "application/json")
        .body(body.boxed())
        .expect("valid response")
}
