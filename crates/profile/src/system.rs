//! The system model: every number of the reference architecture, in one typed tree.
//!
//! The simulator predicts with it, the mock serves with it, the cost model prices with it,
//! so a rehearsal's prediction and its measurement describe the same system. Every layer
//! has an `enabled` switch (and latencies can be `0`), which is how the simulator is
//! checked against closed forms: turn everything off but one queue and it must behave like
//! M/M/c. Numbers have no defaults here: a system file states all of them, each with a
//! comment naming the seed section it comes from (see `profiles/system/mangaassist.toml`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::dist::Dist;
use crate::units::{ByteSize, Duration, Money, Percent, Rate};

fn one() -> f64 {
    1.0
}

fn is_one(x: &f64) -> bool {
    *x == 1.0
}

fn enabled() -> bool {
    true
}

/// The whole architecture of one chat assistant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemModel {
    /// Human name of the system ("MangaAssist").
    pub name: String,
    pub gateway: Gateway,
    pub orchestrator: Orchestrator,
    pub burst: BurstWorkers,
    pub classifier: Stage,
    pub memory: Memory,
    pub cache: Cache,
    pub semantic_cache: SemanticCache,
    pub precomputed: Precomputed,
    pub rag: Rag,
    pub bedrock: Bedrock,
    pub guardrails: Stage,
    pub format: Stage,
    /// Intent name → how the assistant handles it.
    pub intents: BTreeMap<String, Intent>,
    /// Prompt assembly: fixed parts of the input tokens.
    pub prompt: Prompt,
    /// Store id → storefront configuration (Q27).
    pub stores: BTreeMap<String, Store>,
    pub prices: Prices,
}

/// API Gateway WebSocket: admission, throttles and fixed overheads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gateway {
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Per-user message limit (token bucket refilled at this rate, one minute of burst).
    pub per_user_rate: Rate,
    /// Account-level request rate (messages and callback posts both count).
    pub account_rate: Rate,
    /// Account-level burst (token bucket depth).
    pub account_burst: u64,
    /// New WebSocket connections admitted per second for the account.
    pub connect_rate: Rate,
    /// Connections are closed by the gateway after this long (clients reconnect).
    pub max_connection: Duration,
    pub idle_timeout: Duration,
    pub max_message: ByteSize,
    pub max_frame: ByteSize,
    /// Auth and session load before the orchestrator sees the message (Q26).
    pub auth: Dist<Duration>,
    /// Network and serialization on the way back to the user (Q26).
    pub network: Dist<Duration>,
    /// How the backend pushes an answer to its client through `@connections`, each push a
    /// request against the account limit: `"per_answer"` (the answer, and the first token
    /// when streaming) or `"per_chunk"` (every `chunk_tokens` output tokens of a streamed
    /// answer; the client's first token comes with the first chunk).
    #[serde(default)]
    pub posts_per_answer: Posts,
    /// Output tokens per post with `posts_per_answer = "per_chunk"`.
    #[serde(default = "chunk_tokens")]
    pub chunk_tokens: u32,
}

fn chunk_tokens() -> u32 {
    20
}

/// How an answer reaches its client through API Gateway's `@connections` API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Posts {
    /// One post with the answer, and one with the first token when streaming.
    #[default]
    PerAnswer,
    /// One post per `chunk_tokens` output tokens of a streamed answer.
    PerChunk,
}

/// A fixed pipeline step with a latency and an on/off switch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    #[serde(default = "enabled")]
    pub enabled: bool,
    pub latency: Dist<Duration>,
}

/// The ECS Fargate orchestrator service and its target-tracking autoscaling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Orchestrator {
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Tasks running when the scenario starts.
    pub initial_tasks: u32,
    pub min_tasks: u32,
    pub max_tasks: u32,
    /// Messages one task processes at once (its CPU is shared among them).
    pub workers_per_task: u32,
    pub vcpu_per_task: f64,
    pub memory_gb_per_task: f64,
    /// CPU time one message costs the orchestrator (service time of the queue).
    pub cpu_per_message: Dist<Duration>,
    /// Time from scale-out decision to a task serving traffic.
    pub task_start: Dist<Duration>,
    pub autoscaling: Autoscaling,
}

/// ECS target tracking on average CPU, with CloudWatch's one-minute datapoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Autoscaling {
    #[serde(default = "enabled")]
    pub enabled: bool,
    pub target_cpu: Percent,
    /// CloudWatch datapoint period.
    pub period: Duration,
    /// Consecutive datapoints above target before scaling out.
    pub scale_out_datapoints: u32,
    /// Consecutive datapoints below `scale_in_ratio` × target before scaling in.
    pub scale_in_datapoints: u32,
    pub scale_in_ratio: Percent,
    pub scale_out_cooldown: Duration,
    pub scale_in_cooldown: Duration,
}

/// Lambda burst workers that take orchestrator overflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurstWorkers {
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Orchestrator queue depth above which messages go to Lambda.
    pub queue_threshold: u32,
    /// Expected traffic multiple; the seed caps concurrency at `min(10 × factor, 1000)`.
    pub spike_factor: u32,
    /// Account concurrency limit shared by all functions.
    pub account_concurrency: u32,
    /// Environments added per `scale_interval` (AWS: 1,000 per 10 s per function).
    pub scale_step: u32,
    pub scale_interval: Duration,
    pub cold_start: Dist<Duration>,
    /// Start latency of a warm or provisioned environment.
    pub warm_start: Dist<Duration>,
    /// Provisioned concurrency (always warm, billed hourly).
    pub provisioned: u32,
    /// How long an idle environment stays warm.
    pub keep_warm: Duration,
    pub memory_gb: f64,
    /// Processing time per message inside the function.
    pub service: Dist<Duration>,
}

impl BurstWorkers {
    /// The seed's cap: `min(10 × spike_factor, account limit)`.
    pub fn concurrency_cap(&self) -> u32 {
        (10 * self.spike_factor).min(self.account_concurrency)
    }
}

/// DynamoDB on-demand conversation memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Latency of loading conversation memory (Q26: ~10 ms with a Redis hit).
    pub read_latency: Dist<Duration>,
    pub write_latency: Dist<Duration>,
    pub reads_per_turn: u32,
    pub writes_per_turn: u32,
    /// Item size; one write request unit covers 1 KB, one read unit 4 KB.
    pub item_size: ByteSize,
    /// Highest sustained write rate the table has served before (sets instant capacity).
    pub previous_peak_writes: Rate,
    pub previous_peak_reads: Rate,
    /// Whether the table was just created (then 4,000 WRU / 12,000 RRU per second at once).
    pub new_table: bool,
    pub new_table_writes: Rate,
    pub new_table_reads: Rate,
    /// Warm throughput set ahead of a release (pre-warming); `0/s` when not used.
    pub warm_writes: Rate,
    pub warm_reads: Rate,
    /// Time on-demand needs before a new peak becomes the base for the next doubling.
    pub growth_window: Duration,
    pub partitions: u32,
    pub partition_writes: Rate,
    pub partition_reads: Rate,
    pub table_max_writes: Rate,
    pub table_max_reads: Rate,
    /// SDK retries after a throttle (boto3 standard: 10) and the backoff base.
    pub max_retries: u32,
    pub retry_base: Duration,
}

/// Product / FAQ cache (ElastiCache) and its pre-warming before a release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cache {
    #[serde(default = "enabled")]
    pub enabled: bool,
    pub hit_ratio: Percent,
    /// Whether `pre_warm_for_release` ran before the spike.
    pub prewarm: bool,
    pub prewarmed_hit_ratio: Percent,
    pub hit_latency: Dist<Duration>,
    /// Product data fetch on a miss, added to the service fan-out.
    pub miss_latency: Dist<Duration>,
}

/// Semantic response cache: a hit answers without the LLM (Q26 optimization 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SemanticCache {
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Share of LLM-bound turns similar enough to a cached answer.
    pub hit_ratio: Percent,
    /// Cosine similarity a cached query must reach.
    pub threshold: f64,
    pub latency: Dist<Duration>,
}

/// Precomputed answers to the most common queries (Q26 optimization 6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Precomputed {
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Share of all traffic that is one of the precomputed queries.
    pub share: Percent,
    pub latency: Dist<Duration>,
}

/// Retrieval (OpenSearch) and service data fan-out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rag {
    #[serde(default = "enabled")]
    pub enabled: bool,
    pub latency: Dist<Duration>,
    /// Start retrieval in parallel with intent classification (Q26 optimization 3).
    pub speculative: bool,
    pub ocu: u32,
}

/// Bedrock models, tiering and throttling behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bedrock {
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Route intents marked `tier = "fast"` to `fast_model` (Q26 optimization 1).
    pub tiering: bool,
    pub fast_model: String,
    pub smart_model: String,
    /// Streaming tokens to the user (Q26 optimization 5); without it the first token
    /// arrives with the last.
    pub streaming: bool,
    pub on_throttle: ThrottlePolicy,
    pub max_retries: u32,
    pub retry_base: Duration,
    /// Model name → model.
    pub models: BTreeMap<String, Model>,
}

/// What the orchestrator does when Bedrock throttles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThrottlePolicy {
    /// Retry with exponential backoff and jitter, then fail the turn.
    Retry,
    /// Retry once on the fast model, then fail the turn.
    Fallback,
    /// Fail the turn at once.
    Fail,
}

/// One Bedrock model: speed, quotas, provisioned throughput and prices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// Bedrock model id, as the SDK sends it.
    pub id: String,
    /// Time to first token before the prompt is read (the whole TTFT without
    /// `prefill_rate`).
    pub ttft: Dist<Duration>,
    /// Input tokens read per second before the first token: with it, TTFT grows with the
    /// prompt (`ttft + input tokens / prefill_rate`); without it TTFT is `ttft` alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill_rate: Option<Rate>,
    /// Output tokens per second once streaming.
    pub output_rate: Rate,
    /// How many times each output token counts against `tokens_per_minute` (Bedrock burns
    /// down output tokens of Anthropic Claude 3.7 Sonnet and newer 5×; 1 for older models).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub output_burndown: f64,
    /// Calls the model serves at once for this account (its share of the serving fleet):
    /// a call that finds every slot busy waits for one, and the wait adds to its TTFT
    /// (queueing against the model's capacity). Without it a call is served at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// On-demand quotas (per account and region).
    pub tokens_per_minute: u64,
    pub requests_per_minute: u64,
    /// Provisioned throughput bought, in model units.
    pub provisioned_units: u32,
    /// Tokens per minute one model unit serves.
    pub unit_tokens_per_minute: u64,
    pub unit_price_per_hour: Money,
    pub input_price_per_million: Money,
    pub output_price_per_million: Money,
    /// Price of input tokens read from the prompt cache (default: the input price).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_price_per_million: Option<Money>,
}

/// How an intent is answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    /// Whether the turn needs the LLM (else a template or a cached answer).
    pub llm: bool,
    /// Whether the turn needs retrieval.
    pub rag: bool,
    /// Which model tier serves it when tiering is on.
    pub tier: Tier,
    /// MAX_TOKENS for this intent (Q35 optimization 3).
    pub max_tokens: u32,
    /// Output tokens the model writes before the limit.
    pub output_tokens: Dist<f64>,
    /// What users type for this intent, in the stores' languages: the load generator sends
    /// them and the mock's classifier learns its keywords from them.
    pub texts: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Fast,
    Smart,
}

/// The fixed and per-turn parts of the model input (Q35: ~1,500 input tokens a turn).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prompt {
    /// System prompt template with `{store_name}`, `{category}`, `{tone}`,
    /// `{marketplace}` and `{language}` placeholders (Q27).
    pub template: String,
    /// Characters per token used to size the rendered template.
    pub chars_per_token: f64,
    /// Tokens of conversation history, retrieved context and the message itself.
    pub context_tokens: Dist<f64>,
    /// Share of LLM calls whose system prompt (the store's rendered template, a prompt
    /// cache point) Bedrock reads from its prompt cache: those tokens are not prefilled,
    /// do not count against the tokens-per-minute quota and cost the model's
    /// `cache_read_price_per_million`. 0 (the default): no prompt caching.
    #[serde(default, skip_serializing_if = "is_no_share")]
    pub cache_hit_ratio: Percent,
    /// A context that grows with the conversation: the history of the session's earlier
    /// turns, on top of `context_tokens`. Without it the context does not grow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<History>,
}

/// The history the orchestrator sends back with every message (`prompt.history`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct History {
    /// Tokens each earlier turn of the session adds to the context.
    pub tokens_per_turn: Dist<f64>,
    /// Earlier turns kept in the prompt.
    #[serde(default = "ten_turns")]
    pub turns: u8,
}

fn ten_turns() -> u8 {
    10
}

fn is_no_share(p: &Percent) -> bool {
    p.fraction() == 0.0
}

impl Prompt {
    /// Tokens of a text of `chars` characters.
    pub fn tokens_of(&self, chars: usize) -> f64 {
        chars as f64 / self.chars_per_token
    }
}

/// A storefront (Q27): what is partitioned per store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Store {
    pub store_name: String,
    pub category: String,
    pub tone: String,
    pub marketplace: String,
    pub language: String,
    pub locale: String,
    pub rag_index: String,
    pub recommendation_campaign: String,
}

/// Unit prices (Q35) and fixed monthly lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    pub fargate_vcpu_hour: Money,
    pub fargate_gb_hour: Money,
    pub dynamodb_write_million: Money,
    pub dynamodb_read_million: Money,
    pub opensearch_ocu_hour: Money,
    pub elasticache_month: Money,
    pub apigw_message_million: Money,
    pub apigw_connection_minute: Money,
    pub lambda_gb_second: Money,
    pub lambda_request_million: Money,
    pub lambda_provisioned_hour: Money,
    /// Discount of Bedrock provisioned throughput against on-demand token prices at scale
    /// (Q35: ~20%).
    pub provisioned_discount: Percent,
    /// Lines the seed gives as flat monthly amounts (CloudWatch, Kinesis, classifier).
    pub fixed_monthly: BTreeMap<String, Money>,
}

impl SystemModel {
    /// The model a turn of `intent` is sent to.
    pub fn model_for(&self, intent: &Intent) -> &str {
        self.model_with_tiering(intent, self.bedrock.tiering)
    }

    /// The model a turn of `intent` would go to with tiering on or off.
    pub fn model_with_tiering(&self, intent: &Intent, tiering: bool) -> &str {
        if tiering && intent.tier == Tier::Fast {
            &self.bedrock.fast_model
        } else {
            &self.bedrock.smart_model
        }
    }

    /// The system prompt of `store`, rendered (Q27 templating).
    pub fn render_prompt(&self, store: &Store) -> String {
        self.prompt
            .template
            .replace("{store_name}", &store.store_name)
            .replace("{category}", &store.category)
            .replace("{tone}", &store.tone)
            .replace("{marketplace}", &store.marketplace)
            .replace("{language}", &store.language)
    }

    /// Values that parse but describe no real system, as (dotted key, message): the
    /// loader reports them with positions; the planner checks the settings it tries.
    pub fn problems(&self) -> Vec<(String, String)> {
        crate::validate::system_problems(self)
    }

    /// Input tokens the rendered system prompt of `store` adds to each LLM call.
    pub fn prompt_tokens(&self, store: &Store) -> f64 {
        self.prompt
            .tokens_of(self.render_prompt(store).chars().count())
    }
}
