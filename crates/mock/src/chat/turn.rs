//! One turn of the conversation, step by step as the simulator models it, with real sleeps
//! drawn from the system model:
//!
//! 1. gateway: per-user and account limits (a refusal is a `throttled` error frame), auth;
//! 2. orchestrator: waits for one of the workers, holds it for its CPU time;
//! 3. precomputed answers (by their share of traffic), else intent classification;
//! 4. conversation memory read from the mock DynamoDB (throttles retried with backoff);
//! 5. fan-out: product cache (hit or miss by its ratio) in parallel with retrieval when the
//!    intent needs it (speculative retrieval starts when orchestration ends);
//! 6. template intents answer now; LLM intents ask the semantic cache, then the model of
//!    their tier through the mock Bedrock (same quotas as its HTTP API; on throttle the
//!    profile's retry / fallback / fail policy);
//! 7. tokens are streamed at the model's TTFT and output rate, shifted by the network
//!    latency; guardrails and format follow; the done frame reports usage and cost;
//! 8. memory is written after the answer, off the critical path.
//!
//! Token frames: with `token_tick` zero each token is its own frame, sent when due (tokens
//! already overdue go out together); with a tick T, a frame carries every token due since
//! the last frame and frames are at least T apart, so the inter-token gap a client measures
//! is the gap between frames, about max(T, 1/output_rate), and `tokens` says how many each
//! frame carried.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::json;
use surge_profile::system::{Intent, ThrottlePolicy};
use surge_profile::{Dist, Duration as ProfileDuration};
use surge_protocol::{ChatMessage, ErrorCode, ServerFrame, Usage};
use tokio::sync::mpsc;
use tokio::time::sleep;

use super::{MEMORY_TABLE, Out, Script, Vector};
use crate::App;
use crate::bedrock::{Lease, ModelState, text_of};
use crate::bucket::TokenBucket;
use crate::chat::semantic::Cached;
use crate::dynamodb::{DynamoError, Operation};
use crate::metrics::Api;

fn draw(d: &Dist<ProfileDuration>) -> Duration {
    d.sample(&mut rand::rng()).to_std()
}

fn chance(p: f64) -> bool {
    rand::rng().random::<f64>() < p
}

/// The SDKs' backoff: attempt k waits b/2 + U(0, b/2), b = base × 2^k, at most 20 s.
fn backoff(base: ProfileDuration, attempt: u32) -> Duration {
    let b = base
        .to_std()
        .saturating_mul(1 << attempt.min(20))
        .min(Duration::from_secs(20));
    b / 2 + b.mul_f64(rand::rng().random::<f64>() / 2.0)
}

/// Why a turn ended without an answer.
struct Failed(ErrorCode, String);

/// How the answer was produced (decides the steps after it, as in the simulator).
enum Answer {
    /// Template or product data: format, network.
    Template { tokens: u32 },
    /// Ready-made (semantic cache, precomputed): network only.
    Ready { text: String, tokens: u32 },
}

struct Turn<'a> {
    app: &'a App,
    msg: &'a ChatMessage,
    out: &'a mpsc::Sender<Out>,
    intent: usize,
}

/// Answers one message; every outcome ends with a done or an error frame.
pub async fn answer(
    app: Arc<App>,
    user: Arc<Mutex<TokenBucket>>,
    msg: ChatMessage,
    out: mpsc::Sender<Out>,
) {
    let started = Instant::now();
    app.metrics.request(Api::Chat, "message");
    app.faults.before_request(Api::Chat, &app.metrics).await;
    if app.faults.inject_drop(&app.metrics) {
        let _ = out.send(Out::Drop).await;
        return;
    }
    let mut turn = Turn {
        app: &app,
        msg: &msg,
        out: &out,
        intent: 0,
    };
    let result = turn.run(&user).await;
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

    async fn run(&mut self, user: &Mutex<TokenBucket>) -> Result<(), Failed> {
        let app = self.app;
        let sys = &app.chat.sys;
        let Some(store) = sys.stores.get(&self.msg.store) else {
            return Err(Failed(
                ErrorCode::BadRequest,
                format!("unknown store {:?}", self.msg.store),
            ));
        };
        // 1. Gateway.
        if sys.gateway.enabled {
            if !user
                .lock()
                .expect("user bucket lock")
                .try_take(Instant::now(), 1.0)
            {
                return Err(Failed(
                    ErrorCode::Throttled,
                    "per-user message rate exceeded".into(),
                ));
            }
            if !app.chat.admit_account() {
                return Err(Failed(
                    ErrorCode::Throttled,
                    "account request rate exceeded".into(),
                ));
            }
            sleep(draw(&sys.gateway.auth)).await;
        }
        if app.faults.inject_error(Api::Chat, &app.metrics) {
            return Err(Failed(
                ErrorCode::ServerError,
                "internal error (injected fault)".into(),
            ));
        }
        // 2. Orchestrator.
        if let Some(workers) = &app.chat.orchestrator {
            let _worker = workers
                .acquire()
                .await
                .expect("the semaphore is never closed");
            let o = &sys.orchestrator;
            let slice = o.vcpu_per_task / f64::from(o.workers_per_task.max(1));
            sleep(draw(&o.cpu_per_message).div_f64(slice.max(1e-9))).await;
        }
        let orchestrated = Instant::now();
        // 3. Precomputed answers, else classification.
        self.intent = app
            .chat
            .classifier
            .classify(&self.msg.text, Script::of_language(&store.language));
        if sys.precomputed.enabled && chance(sys.precomputed.share.fraction()) {
            sleep(draw(&sys.precomputed.latency)).await;
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
        if sys.classifier.enabled {
            sleep(draw(&sys.classifier.latency)).await;
        }
        // 4. Memory.
        let reads = if sys.memory.enabled {
            sys.memory.reads_per_turn
        } else {
            0
        };
        for _ in 0..reads {
            self.memory(Operation::GetItem).await?;
            sleep(draw(&sys.memory.read_latency)).await;
        }
        // 5. Fan-out: product cache in parallel with retrieval.
        let cache = if sys.cache.enabled {
            // Pre-warmed by the system model or by POST /admin/prewarm.
            let hit = chance(app.prewarm.hit_ratio(sys));
            app.metrics.cache_lookup(hit);
            if hit {
                draw(&sys.cache.hit_latency)
            } else {
                draw(&sys.cache.miss_latency)
            }
        } else {
            Duration::ZERO
        };
        let now = Instant::now();
        let until = if self.intent().rag && sys.rag.enabled {
            let r = draw(&sys.rag.latency);
            if sys.rag.speculative {
                (now + cache).max(orchestrated + r)
            } else {
                now + cache.max(r)
            }
        } else {
            now + cache
        };
        tokio::time::sleep_until(until.into()).await;
        // 6. Template, semantic cache, or the LLM.
        if !(self.intent().llm && app.bedrock.enabled) {
            let tokens = self.template_tokens();
            return self.respond(Answer::Template { tokens }, false).await;
        }
        let question = app
            .chat
            .semantic
            .as_ref()
            .map(|_| Vector::of(&self.msg.text));
        if let (Some(cache), Some(q)) = (&app.chat.semantic, &question) {
            sleep(draw(&sys.semantic_cache.latency)).await;
            if let Some(Cached { text, tokens }) = cache.lookup(&self.msg.store, q) {
                return self.respond(Answer::Ready { text, tokens }, true).await;
            }
        }
        let prompt = sys.prompt_tokens(store);
        let input = (prompt + sys.prompt.context_tokens.sample(&mut rand::rng())).round() as u32;
        let answer = self.generate(input).await?;
        if let (Some(cache), Some(q)) = (&app.chat.semantic, question) {
            cache.insert(&self.msg.store, q, answer);
        }
        Ok(())
    }

    /// Output tokens of a template or ready answer.
    fn template_tokens(&self) -> u32 {
        let i = self.intent();
        (i.output_tokens.sample(&mut rand::rng()).round() as u32).clamp(1, i.max_tokens.max(1))
    }

    /// One memory read or write, retried with backoff while throttled.
    async fn memory(&self, op: Operation) -> Result<(), Failed> {
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
        for attempt in 0..=m.max_retries {
            match app.dynamo.call_json(op, &body) {
                Ok(_) => return Ok(()),
                Err(DynamoError::ProvisionedThroughputExceeded) if attempt < m.max_retries => {
                    app.metrics.throttle(Api::Dynamodb);
                    sleep(backoff(m.retry_base, attempt)).await;
                }
                Err(DynamoError::ProvisionedThroughputExceeded) => break,
                Err(e) => return Err(Failed(ErrorCode::ServerError, format!("memory: {e}"))),
            }
        }
        Err(Failed(
            ErrorCode::Throttled,
            "conversation memory throttled".into(),
        ))
    }

    /// Reserves model capacity under the profile's throttle policy.
    async fn reserve(&self, input: u32) -> Result<(&ModelState, Lease, f64), Failed> {
        let app = self.app;
        let b = &app.chat.sys.bedrock;
        let reserved = f64::from(input) + f64::from(self.intent().max_tokens);
        let mut model = app.chat.sys.model_for(self.intent()).to_string();
        let mut fell_back = false;
        let mut attempt = 0;
        loop {
            let m = app
                .bedrock
                .by_name(&model)
                .ok_or_else(|| Failed(ErrorCode::ServerError, format!("no model {model}")))?;
            if let Some(lease) = m.reserve(reserved) {
                return Ok((m, lease, reserved));
            }
            app.metrics.throttle(Api::Bedrock);
            match b.on_throttle {
                ThrottlePolicy::Retry if attempt < b.max_retries => {
                    sleep(backoff(b.retry_base, attempt)).await;
                    attempt += 1;
                }
                ThrottlePolicy::Fallback if !fell_back && model != b.fast_model => {
                    fell_back = true;
                    model = b.fast_model.clone();
                }
                _ => {
                    return Err(Failed(
                        ErrorCode::Throttled,
                        format!("model {model} throttled"),
                    ));
                }
            }
        }
    }

    /// Generates and streams an LLM answer; returns it for the semantic cache.
    async fn generate(&self, input: u32) -> Result<Cached, Failed> {
        let app = self.app;
        let sys = &app.chat.sys;
        let (model, lease, reserved) = self.reserve(input).await?;
        let intent = self.intent();
        let tokens = (intent.output_tokens.sample(&mut rand::rng()).round() as u32)
            .clamp(1, intent.max_tokens.max(1));
        let timing = model.timing(&mut rand::rng());
        let network = if sys.gateway.enabled {
            draw(&sys.gateway.network)
        } else {
            Duration::ZERO
        };
        let id = &self.msg.id;
        if sys.bedrock.streaming {
            let tick = app.config.token_tick;
            let (mut next, mut last) = (0, None::<Instant>);
            while next < tokens {
                let due = timing.due(next) + network;
                let at = last.map_or(due, |l| due.max(l + tick));
                tokio::time::sleep_until(at.into()).await;
                app.faults.pass_stall(&app.metrics).await;
                let now = Instant::now();
                let mut end = next + 1;
                while end < tokens && timing.due(end) + network <= now {
                    end += 1;
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
        model.settle(lease, reserved, f64::from(input) + f64::from(tokens));
        let mut after = Duration::ZERO;
        if sys.guardrails.enabled {
            after += draw(&sys.guardrails.latency);
        }
        if sys.format.enabled {
            after += draw(&sys.format.latency);
        }
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
        self.done(Some(model), input, tokens, false).await;
        Ok(Cached { text, tokens })
    }

    /// Sends a template or ready answer: one token frame with the whole text, then done.
    async fn respond(&self, answer: Answer, cache_hit: bool) -> Result<(), Failed> {
        let sys = &self.app.chat.sys;
        let (text, tokens, format) = match answer {
            Answer::Template { tokens } => (text_of(0, tokens), tokens, sys.format.enabled),
            Answer::Ready { text, tokens } => (text, tokens, false),
        };
        let mut wait = if format {
            draw(&sys.format.latency)
        } else {
            Duration::ZERO
        };
        if sys.gateway.enabled {
            wait += draw(&sys.gateway.network);
        }
        sleep(wait).await;
        self.app.faults.pass_stall(&self.app.metrics).await;
        self.send(ServerFrame::Token {
            id: self.msg.id.clone(),
            text,
            tokens,
        })
        .await;
        self.done(None, 0, tokens, cache_hit).await;
        Ok(())
    }

    async fn done(&self, model: Option<&ModelState>, input: u32, output: u32, cache_hit: bool) {
        let usage = Usage {
            model: model.map(|m| m.name.clone()),
            intent: self.intent_name(),
            store: self.msg.store.clone(),
            input_tokens: input,
            output_tokens: output,
            cache_hit,
            cost_usd: model.map_or(0.0, |m| m.cost(input, output)),
        };
        self.send(ServerFrame::Done {
            id: self.msg.id.clone(),
            usage,
        })
        .await;
    }

    /// 8. The memory write, after the answer and off its critical path.
    async fn remember(&self) {
        let sys = &self.app.chat.sys;
        let writes = if sys.memory.enabled {
            sys.memory.writes_per_turn
        } else {
            0
        };
        for _ in 0..writes {
            sleep(draw(&sys.memory.write_latency)).await;
            if self.memory(Operation::PutItem).await.is_err() {
                break;
            }
        }
    }
}
