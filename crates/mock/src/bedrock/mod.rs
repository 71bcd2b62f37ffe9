//! The mock Bedrock: models of the system model with their speed and quotas, shared by the
//! HTTP API ([`api`]) and the chat pipeline, so chat turns and SDK calls compete for the
//! same capacity.
//!
//! Quotas and token timing are the model's ([`surge_model::bedrock`]): a call reserves
//! input tokens + max tokens at its start and settles at its end, first from provisioned
//! throughput, else from the on-demand tokens- and requests-per-minute quotas. With
//! `--workers N` each worker has 1/N of every quota.

pub mod api;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use rand::Rng;
use surge_model::bedrock::{Quota, Tokens};
use surge_model::draw::Shared;
use surge_profile::system::Model;
use surge_profile::{Dist, SystemModel};
use tokio::sync::Semaphore;

use crate::clock;
use crate::metrics::Metrics;
use crate::pool::{Held, Pool};

pub use surge_model::bedrock::Lease;

/// One model: its spec and its quotas.
#[derive(Debug)]
pub struct ModelState {
    /// The system model's name for it (`sonnet`).
    pub name: String,
    pub spec: Model,
    quota: Mutex<Quota>,
    /// Tokens reserved by calls in flight (`surge_mock_bedrock_tokens_reserved`).
    reserved: prometheus::Gauge,
    /// Serving slots, when the model serves only so many calls at once.
    slots: Option<Pool>,
}

impl ModelState {
    fn new(name: &str, spec: &Model, workers: f64, metrics: &Metrics) -> Self {
        Self {
            name: name.to_string(),
            spec: spec.clone(),
            quota: Mutex::new(Quota::new(spec, workers)),
            reserved: metrics.bedrock_reserved(name),
            slots: surge_model::bedrock::slots(spec, workers).map(Pool::new),
        }
    }

    /// Waits for a serving slot (at once without `max_concurrency`); the model works on
    /// the call while the returned guard lives, and its TTFT starts now.
    pub async fn serve(&self) -> Option<Held<'_>> {
        match &self.slots {
            Some(pool) => Some(pool.acquire().await),
            None => None,
        }
    }

    /// Reserves `tokens` for a call, or `None` when it is throttled.
    pub fn reserve(&self, tokens: f64) -> Option<Lease> {
        let mut q = self.quota.lock().expect("quota lock");
        let lease = q.reserve(clock::now(), tokens);
        if lease.is_some() {
            self.reserved.add(tokens);
        }
        lease
    }

    /// Gives back the part of a reservation the call did not use.
    pub fn settle(&self, lease: Lease, reserved: f64, used: f64) {
        let mut q = self.quota.lock().expect("quota lock");
        q.settle(lease, reserved, used);
        self.reserved.sub(reserved);
    }

    /// When each token of an answer to `input_tokens` starting now is due: TTFT drawn from
    /// the model plus the prefill, then one token every `1 / output_rate`.
    pub fn timing(&self, input_tokens: f64, rng: &mut impl Rng) -> Timing {
        Timing(Tokens::draw(
            &self.spec,
            clock::now(),
            input_tokens,
            &mut Shared(rng),
        ))
    }

    /// What a call of `input` tokens that may write `max_tokens` reserves on this model.
    pub fn reservation(&self, input: f64, max_tokens: u32) -> f64 {
        surge_model::bedrock::reservation(&self.spec, input, max_tokens)
    }

    /// What a call that read `input` and wrote `output` tokens counts on this model's quota.
    pub fn charge(&self, input: f64, output: f64) -> f64 {
        surge_model::bedrock::charge(&self.spec, input, output)
    }

    /// Cost of a call in US dollars, at the model's list prices (`cached`: input tokens
    /// read from the prompt cache, beside the `input` read otherwise).
    pub fn cost(&self, input: u32, output: u32, cached: u32) -> f64 {
        let f = f64::from;
        surge_cost::token_price(&self.spec, f(input), f(output), f(cached))
    }
}

/// The token schedule of one answer, on the wall clock.
#[derive(Debug, Clone, Copy)]
pub struct Timing(Tokens);

impl Timing {
    /// When token `i` (from 0) is due; `due(n)` is when an answer of `n` tokens is done.
    pub fn due(&self, i: u32) -> Instant {
        clock::instant(self.0.due(i))
    }
}

/// All models, and the bound on open response streams.
pub struct Bedrock {
    pub enabled: bool,
    pub models: Vec<ModelState>,
    /// Output lengths of the LLM intents: an API call without an intent draws from one.
    outputs: Vec<Dist<f64>>,
    prompt: surge_profile::system::Prompt,
    pub streams: Arc<Semaphore>,
}

/// A few words the mock "generates"; one word is one token.
const WORDS: [&str; 16] = [
    " manga", " volume", " story", " the", " series", " a", " new", " read", " art", " chapter",
    " you", " hero", " and", " world", " of", " great",
];

/// The text of token `i` of an answer.
pub fn token_text(i: u32) -> &'static str {
    WORDS[(i as usize * 7 + i as usize / 16) % WORDS.len()]
}

/// The text of tokens `from..to`.
pub fn text_of(from: u32, to: u32) -> String {
    (from..to).map(token_text).collect()
}

impl Bedrock {
    pub fn new(sys: &SystemModel, workers: u32, max_streams: usize, metrics: &Metrics) -> Self {
        let w = f64::from(workers.max(1));
        Self {
            enabled: sys.bedrock.enabled,
            models: sys
                .bedrock
                .models
                .iter()
                .map(|(name, m)| ModelState::new(name, m, w, metrics))
                .collect(),
            outputs: sys
                .intents
                .values()
                .filter(|i| i.llm)
                .map(|i| i.output_tokens.clone())
                .collect(),
            prompt: sys.prompt.clone(),
            streams: Arc::new(Semaphore::new(max_streams)),
        }
    }

    /// The model a request names: its Bedrock id (URL-decoded) or its name in the system
    /// model.
    pub fn find(&self, id: &str) -> Option<&ModelState> {
        self.models.iter().find(|m| m.spec.id == id || m.name == id)
    }

    pub fn by_name(&self, name: &str) -> Option<&ModelState> {
        self.models.iter().find(|m| m.name == name)
    }

    /// Output tokens of an API call: drawn like a chat answer, capped at `max_tokens`.
    pub fn draw_output(&self, max_tokens: u32, rng: &mut impl Rng) -> u32 {
        let drawn = match self.outputs.len() {
            0 => 100.0,
            n => self.outputs[rng.random_range(0..n)].sample(rng),
        };
        (drawn.round() as u32).clamp(1, max_tokens.max(1))
    }

    /// Input tokens of a prompt of `chars` characters.
    pub fn input_tokens(&self, chars: usize) -> u32 {
        (self.prompt.tokens_of(chars).ceil() as u32).max(1)
    }
}
