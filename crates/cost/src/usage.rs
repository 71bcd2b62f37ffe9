//! What a period of operation consumed, whatever produced the numbers.

use std::collections::BTreeMap;

use serde::Serialize;
use surge_profile::system::Intent;
use surge_profile::{Dist, Profile};

use crate::CostError;
use crate::optimize::Optimizations;

/// LLM use of one model.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ModelUsage {
    pub calls: f64,
    /// Input tokens read and charged (those not read from the prompt cache).
    pub input_tokens: f64,
    pub output_tokens: f64,
    /// Input tokens read from the prompt cache.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_read_tokens: f64,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl ModelUsage {
    fn add(&mut self, other: &ModelUsage) {
        self.calls += other.calls;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
    }
}

/// One store's share of the traffic and its own LLM use.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StoreUsage {
    pub messages: f64,
    pub llm: BTreeMap<String, ModelUsage>,
}

/// Consumption over `days` days.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    pub days: f64,
    pub conversations: f64,
    pub messages: f64,
    /// Per model name.
    pub llm: BTreeMap<String, ModelUsage>,
    /// ECS task-hours, and the task size they were billed at.
    pub task_hours: f64,
    pub vcpu_per_task: f64,
    pub memory_gb_per_task: f64,
    pub dynamodb_write_units: f64,
    pub dynamodb_read_units: f64,
    pub opensearch_ocu_hours: f64,
    pub gateway_connection_minutes: f64,
    pub gateway_messages: f64,
    pub lambda_requests: f64,
    pub lambda_gb_seconds: f64,
    pub lambda_provisioned_hours: f64,
    /// Lambda as a flat amount per month when invocations are not counted (analytic mode).
    pub lambda_flat_monthly: Option<f64>,
    /// Bedrock token prices reduced by the provisioned-throughput discount.
    pub provisioned_discount: bool,
    /// Per store id.
    pub stores: BTreeMap<String, StoreUsage>,
}

/// Mean of `min(X, cap)` for a token-count distribution, by integrating its quantiles.
fn capped_mean(dist: &Dist<f64>, cap: f64) -> f64 {
    if dist.is_constant() {
        return dist.mean().min(cap);
    }
    const STEPS: usize = 2_000;
    (0..STEPS)
        .map(|i| dist.quantile((i as f64 + 0.5) / STEPS as f64).min(cap))
        .sum::<f64>()
        / STEPS as f64
}

/// Output tokens of one answer to `intent`, with or without its MAX_TOKENS cap.
pub(crate) fn output_tokens(intent: &Intent, limits: bool) -> f64 {
    if limits {
        capped_mean(&intent.output_tokens, f64::from(intent.max_tokens))
    } else {
        intent.output_tokens.mean()
    }
}

impl Usage {
    /// One day of the profile's `[cost]` scenario, reasoned the way Q35 does: every turn of
    /// every conversation, split by store and intent shares, with `opts` switched on.
    pub fn analytic(profile: &Profile, opts: Optimizations) -> Result<Self, CostError> {
        let spec = profile.cost.as_ref().ok_or(CostError::NoCostSpec)?;
        let sys = &profile.system;
        let conversations = spec.conversations_per_day;
        let messages = conversations * profile.traffic.conversation_turns;
        let mut usage = Usage {
            days: 1.0,
            conversations,
            messages,
            vcpu_per_task: sys.orchestrator.vcpu_per_task,
            memory_gb_per_task: sys.orchestrator.memory_gb_per_task,
            provisioned_discount: opts.provisioned_discount,
            lambda_flat_monthly: Some(spec.lambda_overflow_monthly.dollars()),
            ..Usage::default()
        };

        usage.add_llm(profile, opts);

        // ECS: the tasks target tracking keeps for the day's average load.
        let o = &sys.orchestrator;
        let busy_vcpu = messages / 86_400.0 * o.cpu_per_message.mean() / 1e9;
        let per_task = o.vcpu_per_task * o.autoscaling.target_cpu.fraction().max(1e-9);
        let needed = (busy_vcpu / per_task).ceil() as u32;
        let tasks = needed.clamp(o.min_tasks, o.max_tasks.max(o.min_tasks));
        usage.task_hours = f64::from(tasks) * 24.0;

        let m = &sys.memory;
        let kb = m.item_size.bytes() as f64 / 1024.0;
        usage.dynamodb_write_units = messages * f64::from(m.writes_per_turn) * kb.ceil().max(1.0);
        usage.dynamodb_read_units =
            messages * f64::from(m.reads_per_turn) * (kb / 4.0).ceil().max(1.0);
        usage.opensearch_ocu_hours = f64::from(sys.rag.ocu) * 24.0;
        usage.gateway_connection_minutes = conversations * spec.connection_minutes;
        // One message in, one answer out per turn.
        usage.gateway_messages = messages * 2.0;
        usage.lambda_provisioned_hours = f64::from(sys.burst.provisioned) * 24.0;
        Ok(usage)
    }

    /// Adds the LLM calls of `self.messages` messages of the profile's traffic, split by
    /// store and intent shares, with `opts` switched on (the same arithmetic for a day of
    /// `[cost]` and for a measured rehearsal's spend estimate).
    fn add_llm(&mut self, profile: &Profile, opts: Optimizations) {
        let sys = &profile.system;
        let messages = self.messages;
        let semantic_pass = if opts.semantic_cache {
            1.0 - sys.semantic_cache.hit_ratio.fraction()
        } else {
            1.0
        };
        for (store_id, store_share) in &profile.traffic.stores {
            let Some(store) = sys.stores.get(store_id) else {
                continue;
            };
            let store_messages = messages * store_share.fraction();
            let mut store_usage = StoreUsage {
                messages: store_messages,
                ..StoreUsage::default()
            };
            let prompt = sys.prompt_tokens(store);
            let cached_per_call = sys.prompt.cache_hit_ratio.fraction() * prompt;
            // A conversation's turns carry its growing history (with prompt.history).
            let history =
                surge_model::turn::mean_history_tokens(sys, profile.traffic.conversation_turns);
            let input_per_call =
                sys.prompt.context_tokens.mean() + prompt + history - cached_per_call;
            for (intent_name, intent_share) in &profile.traffic.intents {
                let Some(intent) = sys.intents.get(intent_name) else {
                    continue;
                };
                if !intent.llm {
                    continue;
                }
                let calls = store_messages * intent_share.fraction() * semantic_pass;
                let model = sys.model_with_tiering(intent, opts.tiering);
                let call_usage = ModelUsage {
                    calls,
                    input_tokens: calls * input_per_call,
                    output_tokens: calls * output_tokens(intent, opts.length_limits),
                    cache_read_tokens: calls * cached_per_call,
                };
                store_usage
                    .llm
                    .entry(model.to_string())
                    .or_default()
                    .add(&call_usage);
                self.llm
                    .entry(model.to_string())
                    .or_default()
                    .add(&call_usage);
            }
            self.stores.insert(store_id.clone(), store_usage);
        }
    }

    /// The LLM calls of `messages` messages of the profile's traffic on its system as
    /// configured (tiering and the semantic cache as the system model has them, answers as
    /// long as the intents' distributions say): what a rehearsal of that many messages
    /// asks of Bedrock.
    pub fn llm_of_messages(profile: &Profile, messages: f64) -> Self {
        let sys = &profile.system;
        let opts = Optimizations {
            tiering: sys.bedrock.tiering,
            semantic_cache: sys.semantic_cache.enabled,
            ..Optimizations::default()
        };
        let mut usage = Usage {
            messages,
            ..Usage::default()
        };
        usage.add_llm(profile, opts);
        usage
    }

    /// Calls, input and output tokens over all models.
    pub fn llm_total(&self) -> ModelUsage {
        let mut total = ModelUsage::default();
        for m in self.llm.values() {
            total.add(m);
        }
        total
    }
}
