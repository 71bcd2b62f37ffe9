//! What a run consumed, for the cost model: tokens per model and store, task time,
//! DynamoDB units, Lambda time, connection time.
//!
//! The simulator only counts; `surge-cost` prices the counts with the system model's
//! prices, the same function that prices the analytic Q35 scenario, so a simulated run's
//! cost and `surge cost` cannot disagree on arithmetic.

use std::collections::BTreeMap;

use surge_cost::{ModelUsage, StoreUsage, Usage};
use surge_profile::Profile;

use crate::plan::Plan;
use surge_model::time::{Nanos, SECOND};

/// Calls, input tokens and output tokens.
/// Calls, input tokens (not from the prompt cache), output tokens, cache-read tokens.
type Tokens = [f64; 4];

/// Counters of everything the cost model prices.
#[derive(Debug, Clone, Default)]
pub struct Consumption {
    /// `[store][model]` LLM use.
    llm: Vec<Vec<Tokens>>,
    store_messages: Vec<u64>,
    pub read_units: f64,
    pub write_units: f64,
    /// Seconds Lambda environments were busy (start + service).
    pub lambda_seconds: f64,
    pub lambda_invocations: u64,
    /// Integral of open connections over time.
    pub connection_seconds: f64,
}

impl Consumption {
    pub fn new(plan: &Plan) -> Self {
        Self {
            llm: vec![vec![[0.0; 4]; plan.models.len()]; plan.stores.len()],
            store_messages: vec![0; plan.stores.len()],
            ..Self::default()
        }
    }

    #[inline]
    pub fn message(&mut self, store: usize) {
        self.store_messages[store] += 1;
    }

    #[inline]
    pub fn llm_call(&mut self, store: usize, model: usize, input: f64, output: f64, cached: f64) {
        let t = &mut self.llm[store][model];
        t[0] += 1.0;
        t[1] += input;
        t[2] += output;
        t[3] += cached;
    }

    #[inline]
    pub fn lambda(&mut self, busy: Nanos) {
        self.lambda_invocations += 1;
        self.lambda_seconds += busy as f64 / SECOND as f64;
    }

    /// The counts as cost-model usage over `simulated` nanoseconds, with `task_seconds` of
    /// ECS tasks running.
    pub fn usage(
        &self,
        profile: &Profile,
        plan: &Plan,
        simulated: Nanos,
        task_seconds: f64,
    ) -> Usage {
        let sys = &profile.system;
        let hours = simulated as f64 / (3_600.0 * SECOND as f64);
        let messages: u64 = self.store_messages.iter().sum();
        let mut usage = Usage {
            days: hours / 24.0,
            conversations: messages as f64 / profile.traffic.conversation_turns,
            messages: messages as f64,
            task_hours: task_seconds / 3_600.0,
            vcpu_per_task: sys.orchestrator.vcpu_per_task,
            memory_gb_per_task: sys.orchestrator.memory_gb_per_task,
            dynamodb_write_units: self.write_units,
            dynamodb_read_units: self.read_units,
            opensearch_ocu_hours: if sys.rag.enabled {
                f64::from(sys.rag.ocu) * hours
            } else {
                0.0
            },
            gateway_connection_minutes: self.connection_seconds / 60.0,
            // One message in and one answer out per turn.
            gateway_messages: messages as f64 * 2.0,
            lambda_requests: self.lambda_invocations as f64,
            lambda_gb_seconds: self.lambda_seconds * sys.burst.memory_gb,
            lambda_provisioned_hours: if sys.burst.enabled {
                f64::from(sys.burst.provisioned) * hours
            } else {
                0.0
            },
            lambda_flat_monthly: None,
            provisioned_discount: false,
            llm: BTreeMap::new(),
            stores: BTreeMap::new(),
        };
        for (s, store) in plan.stores.iter().enumerate() {
            let mut su = StoreUsage {
                messages: self.store_messages[s] as f64,
                llm: BTreeMap::new(),
            };
            for (m, model) in plan.models.iter().enumerate() {
                let [calls, input, output, cached] = self.llm[s][m];
                if calls == 0.0 {
                    continue;
                }
                let u = ModelUsage {
                    calls,
                    input_tokens: input,
                    output_tokens: output,
                    cache_read_tokens: cached,
                };
                let total = usage.llm.entry(model.name.clone()).or_default();
                total.calls += calls;
                total.input_tokens += input;
                total.output_tokens += output;
                total.cache_read_tokens += cached;
                su.llm.insert(model.name.clone(), u);
            }
            usage.stores.insert(store.name.clone(), su);
        }
        usage
    }
}
