//! One turn of the conversation, on the route the model gives ([`surge_model::turn`]),
//! with real sleeps: the gateway's limits, the orchestrator ([`super::Ecs`]), precomputed
//! answers or classification, memory reads through the mock DynamoDB, the fan-out, a
//! template, semantic-cache or LLM answer through the mock Bedrock (same quotas as its
//! HTTP API), the way back, and the memory write after the answer. What is the mock's
//! own: a real intent classifier and semantic cache, real DynamoDB and Bedrock calls, and
//! frames on the socket.
//!
//! Token frames: with `token_tick` zero each token is its own frame, sent when due (tokens
//! already overdue go out together); with a tick T, a frame carries every token due since
//! the last frame and frames are at least T apart, so the inter-token gap a client measures
//! is the gap between frames, about max(T, 1/output_rate), and `tokens` says how many each
//! frame carried.

use std::sync::Arc;
use std::time::Instant;

use rand::rngs::ThreadRng;
use serde_json::json;
use surge_model::draw::Shared;
use surge_model::turn::{self, Answer as Route, Throttled, WayBack};
use surge_profile::system::Intent;
use surge_protocol::{ChatMessage, ErrorCode, ServerFrame, Usage};
use tokio::sync::mpsc;
use tokio::time::sleep;

use super::gateway::Caller;
use super::{MEMORY_TABLE, Out, Script, Vector};
use crate::App;
use crate::bedrock::{Lease, ModelState, text_of};
use crate::chat::semantic::Cached;
use crate::clock::{self, span};
use crate::dynamodb::{DynamoError, Operation};
use crate::metrics::Api;

/// Every layer of a turn draws from the thread's generator.
fn rngs() -> Shared<ThreadRng> {
    Shared(rand::rng())
}

/// The input tokens of an LLM call.
#[derive(Debug, Clone, Copy)]
struct Input {
    /// Read, prefilled and charged against the quota.
    read: f64,
    /// Read from Bedrock's prompt cache.
    cached: f64,
}

/// Why a turn ended without an answer.
struct Failed(ErrorCode, String);

/// A template or ready-made answer: its text and length (the route decides its way back).
enum Answer {
    /// Template or product data: format, network.
    Template { tokens: u32 },
    /// Ready-made (semantic cache, precomputed): network only.
    Ready { text: String, tokens: u32 },
}

struct Turn<'a> {
    app: &'a App,
    msg: &'a ChatMessage,
    /// Messages the session sent before this one.
    earlier_turns: u32,
    out: &'a mpsc::Sender<Out>,
    intent: usize,
}

/// Answers one message; every outcome ends with a done or an error frame (or, for the
/// gateway's own throttles with `--gateway-frames aws`, API Gateway's frame).
pub async fn answer(
    app: Arc<App>,
    caller: Arc<Caller>,
    msg: ChatMessage,
    earlier_turns: u32,
    out: mpsc::Sender<Out>,
) {
    let started = Instant::now();
    app.metrics.request(Api::Chat, "message");
    app.faults.before_request(Api::Chat, &app.metrics).await;
    if app.faults.inject_drop(&app.metrics) {
        let _ = out.send(Out::Drop).await;
        return;
    }
    // 1. Gateway: its limits, before the backend sees the message.
    if let Some(refusal) = app
        .chat
        .frames
        .refusal(app.chat.admit(&caller), &caller, &msg.id)
    {
        app.metrics
            .observe(Api::Chat, started.elapsed().as_secs_f64());
        app.metrics.throttle(Api::Chat);
        let _ = out.send(refusal).await;
        return;
    }
    let mut turn = Turn {
        app: &app,
        msg: &msg,
        earlier_turns,
        out: &out,
        intent: 0,
    };
    let result = turn.run().await;
    app.metrics
        .observe(Api::Chat, started.elapsed().as_secs_f64());
    match result {
        Ok(()) => turn.remember().await,
        Err(Failed(code, message)) => {
            if code == ErrorCode::Throttled {
                app.metrics.throttle(Api::Chat);
            } else {
                app.metrics.error(Api::Chat);
            }
            turn.send(ServerFrame::Error {
                id: Some(msg.id.clone()),
                code,
                message,
            })
            .await;
        }
    }
}

impl Turn<'_> {
    async fn send(&self, frame: ServerFrame) {
        let _ = self.out.send(Out::Frame(frame)).await;
    }

    fn intent(&self) -> &Intent {
        &self.app.chat.intents[self.intent].1
    }

    fn intent_name(&self) -> String {
        self.app.chat.intents[self.intent].0.clone()
    }

    async fn run(&mut self) -> Result<(), Failed> {
        let app = self.app;
        let sys = &app.chat.sys;
        let Some(store) = sys.stores.get(&self.msg.store) else {
            return Err(Failed(
                ErrorCode::BadRequest,
                format!("unknown store {:?}", self.msg.store),
            ));
        };
        // 1. Gateway: the message passed its limits (`answer`); auth and session load.
        if sys.gateway.enabled {
            let auth = turn::auth(sys, &mut rngs());
            sleep(span(auth)).await;
        }
        if app.faults.inject_error(Api::Chat, &app.metrics) {
            return Err(Failed(
                ErrorCode::ServerError,
                "internal error (injected fault)".into(),
            ));
        }
        // 2. Orchestrator.
        if let Some(ecs) = &app.chat.orchestrator {
            ecs.orchestrate().await;
        }
        let orchestrated = clock::now();
        // 3. Precomputed answers, else classification.
        self.intent = app
            .chat
            .classifier
            .classify(&self.msg.text, Script::of_language(&store.language));
        let precomputed = turn::precomputed(sys, &mut rngs());
        if let Some(d) = precomputed {
            sleep(span(d)).await;
            let tokens = self.template_tokens();
            return self
                .respond(
                    Answer::Ready {
                        text: text_of(0, tokens),
                        tokens,
                    },
                    true,
                )
                .await;
        }
        let classify = turn::classify(sys, &mut rngs());
        sleep(span(classify)).await;
        // 4. Memory: the reads together, then one read latency.
        let reads = turn::memory_reads(sys);
        if reads > 0 {
            self.memory(Operation::GetItem, reads).await?;
            let read = turn::memory_read_latency(&sys.memory, &mut rngs());
            sleep(span(read)).await;
        }
        // 5. Fan-out: product cache (pre-warmed by the system model or by POST
        // /admin/prewarm) in parallel with retrieval.
        let ratio = app.prewarm.hit_ratio(sys);
        let cache = turn::cache_lookup(sys, ratio, &mut rngs()).map_or(0, |lookup| {
            app.metrics.cache_lookup(lookup.hit);
            lookup.latency
        });
        let rag = self.intent().rag;
        let until = turn::fan_out(sys, rag, clock::now(), orchestrated, cache, &mut rngs());
        tokio::time::sleep_until(clock::instant(until).into()).await;
        // 6. Template, semantic cache, or the LLM.
        if !turn::generates(sys, self.intent().llm) {
            let tokens = self.template_tokens();
            return self.respond(Answer::Template { tokens }, false).await;
        }
        let question = app
            .chat
            .semantic
            .as_ref()
            .map(|_| Vector::of(&self.msg.text));
        if let (Some(cache), Some(q)) = (&app.chat.semantic, &question) {
            let d = turn::semantic_lookup(sys, &mut rngs()).unwrap_or(0);
            sleep(span(d)).await;
            if let Some(Cached { text, tokens }) = cache.lookup(&self.msg.store, q) {
                return self.respond(Answer::Ready { text, tokens }, true).await;
            }
        }
        let prompt = sys.prompt_tokens(store);
        let input = turn::input_tokens(sys, prompt, self.earlier_turns, &mut rngs());
        let cached = turn::cached_prompt(sys, prompt, &mut rngs());
        let answer = self
            .generate(Input {
                read: input - cached,
                cached,
            })
            .await?;
        if let (Some(cache), Some(q)) = (&app.chat.semantic, question) {
            cache.insert(&self.msg.store, q, answer);
        }
        Ok(())
    }

    /// Output tokens of an answer to this turn's intent.
    fn output_tokens(&self) -> u32 {
        let i = self.intent();
        turn::output_tokens(&i.output_tokens, i.max_tokens, &mut rngs())
    }

    /// Output tokens of a template or ready answer: at least one, the frame that carries it.
    fn template_tokens(&self) -> u32 {
        self.output_tokens().max(1)
    }

    /// `count` memory reads or writes, issued together; the throttled ones are retried with
    /// backoff until the SDK gives up.
    async fn memory(&self, op: Operation, count: u32) -> Result<(), Failed> {
        let app = self.app;
        let m = &app.chat.sys.memory;
        let body = if op == Operation::GetItem {
            json!({"TableName": MEMORY_TABLE, "Key": {"session": {"S": self.msg.session}}, "ConsistentRead": true})
        } else {
            // An item of the model's size, so it costs the write units the model predicts.
            let pad = "m"
                .repeat((m.item_size.bytes() as usize).saturating_sub(64 + self.msg.session.len()));
            json!({"TableName": MEMORY_TABLE, "Item": {
                "session": {"S": self.msg.session},
                "last_intent": {"S": self.intent_name()},
                "history": {"S": pad}
            }})
        };
        let (mut pending, mut attempts) = (count, 0);
        loop {
            while pending > 0 {
                match app.dynamo.call_json(op, &body) {
                    Ok(_) => pending -= 1,
                    Err(DynamoError::ProvisionedThroughputExceeded) => break,
                    Err(e) => return Err(Failed(ErrorCode::ServerError, format!("memory: {e}"))),
                }
            }
            if pending == 0 {
                return Ok(());
            }
            app.metrics.throttle(Api::Dynamodb);
            let retry = turn::memory_retry(m, attempts, &mut rngs());
            let Some(wait) = retry else {
                return Err(Failed(
                    ErrorCode::Throttled,
                    "conversation memory throttled".into(),
                ));
            };
            attempts += 1;
            sleep(span(wait)).await;
        }
    }

    /// Reserves model capacity under the profile's throttle policy.
    async fn reserve(&self, input: f64) -> Result<(&ModelState, Lease, f64), Failed> {
        let app = self.app;
        let b = &app.chat.sys.bedrock;
        let max_tokens = self.intent().max_tokens;
        let mut model = app.chat.sys.model_for(self.intent()).to_string();
        let mut fell_back = false;
        let mut attempt = 0;
        loop {
            let m = app
                .bedrock
                .by_name(&model)
                .ok_or_else(|| Failed(ErrorCode::ServerError, format!("no model {model}")))?;
            let reserved = m.reservation(input, max_tokens);
            if let Some(lease) = m.reserve(reserved) {
                return Ok((m, lease, reserved));
            }
            app.metrics.throttle(Api::Bedrock);
            let on_fast_model = model == b.fast_model;
            let policy = turn::on_throttle(b, attempt, fell_back, on_fast_model, &mut rngs());
            match policy {
                Throttled::Retry { after } => {
                    sleep(span(after)).await;
                    attempt += 1;
                }
                Throttled::Fallback => {
                    fell_back = true;
                    model = b.fast_model.clone();
                }
                Throttled::Fail => {
                    return Err(Failed(
                        ErrorCode::Throttled,
                        format!("model {model} throttled"),
                    ));
                }
            }
        }
    }

    /// Generates and streams an LLM answer; returns it for the semantic cache.
    async fn generate(
        &self,
        Input {
            read: input,
            cached,
        }: Input,
    ) -> Result<Cached, Failed> {
        let app = self.app;
        let sys = &app.chat.sys;
        let (model, lease, reserved) = self.reserve(input).await?;
        let slot = model.serve().await;
        let tokens = self.output_tokens();
        let timing = model.timing(input, &mut rand::rng());
        let back = WayBack::draw(sys, Route::Generated, &mut rngs());
        let network = span(back.network);
        let id = &self.msg.id;
        if sys.bedrock.streaming {
            let tick = app.config.token_tick;
            let chunk = app.chat.chunk;
            let (mut next, mut last) = (0, None::<Instant>);
            while next < tokens {
                // A frame as each token is due (those due meanwhile together), or one post
                // per chunk once its last token is due.
                let first_end = chunk.map_or(next + 1, |c| (next + c).min(tokens));
                let due = timing.due(first_end - 1) + network;
                let at = last.map_or(due, |l| due.max(l + tick));
                tokio::time::sleep_until(at.into()).await;
                app.faults.pass_stall(&app.metrics).await;
                let now = Instant::now();
                let mut end = first_end;
                while chunk.is_none() && end < tokens && timing.due(end) + network <= now {
                    end += 1;
                }
                if chunk.is_some() {
                    app.chat.posted(1);
                }
                self.send(ServerFrame::Token {
                    id: id.clone(),
                    text: text_of(next, end),
                    tokens: end - next,
                })
                .await;
                next = end;
                last = Some(now);
            }
            tokio::time::sleep_until((timing.due(tokens) + network).into()).await;
        } else {
            tokio::time::sleep_until(timing.due(tokens).into()).await;
        }
        drop(slot);
        model.settle(lease, reserved, model.charge(input, f64::from(tokens)));
        let after = span(back.guardrails + back.format);
        let text = text_of(0, tokens);
        if !sys.bedrock.streaming {
            sleep(after + network).await;
            self.send(ServerFrame::Token {
                id: id.clone(),
                text: text.clone(),
                tokens,
            })
            .await;
        } else {
            sleep(after).await;
        }
        app.faults.pass_stall(&app.metrics).await;
        let usage = Some((model, cached.round() as u32));
        self.done(usage, input.round() as u32, tokens, false).await;
        Ok(Cached { text, tokens })
    }

    /// Sends a template or ready answer: one token frame with the whole text, then done.
    async fn respond(&self, answer: Answer, cache_hit: bool) -> Result<(), Failed> {
        let sys = &self.app.chat.sys;
        let (text, tokens, route) = match answer {
            Answer::Template { tokens } => (text_of(0, tokens), tokens, Route::Template),
            Answer::Ready { text, tokens } => (text, tokens, Route::Ready),
        };
        let back = WayBack::draw(sys, route, &mut rngs());
        sleep(span(back.total())).await;
        self.app.faults.pass_stall(&self.app.metrics).await;
        if self.app.chat.chunk.is_some() {
            // Not streamed: one post with the whole answer.
            self.app.chat.posted(1);
        }
        self.send(ServerFrame::Token {
            id: self.msg.id.clone(),
            text,
            tokens,
        })
        .await;
        self.done(None, 0, tokens, cache_hit).await;
        Ok(())
    }

    /// The done frame; `model` is the model that answered and the input tokens it read
    /// from its prompt cache (`input` are the others).
    async fn done(
        &self,
        model: Option<(&ModelState, u32)>,
        input: u32,
        output: u32,
        cache_hit: bool,
    ) {
        let usage = Usage {
            model: model.map(|(m, _)| m.name.clone()),
            intent: self.intent_name(),
            store: self.msg.store.clone(),
            input_tokens: input,
            output_tokens: output,
            cache_hit,
            cost_usd: model.map_or(0.0, |(m, cached)| m.cost(input, output, cached)),
        };
        self.send(ServerFrame::Done {
            id: self.msg.id.clone(),
            usage,
        })
        .await;
    }

    /// 8. The memory writes, issued when the answer is done, off its critical path.
    async fn remember(&self) {
        let writes = turn::memory_writes(&self.app.chat.sys);
        if writes > 0 {
            let _ = self.memory(Operation::PutItem, writes).await;
        }
    }
}
