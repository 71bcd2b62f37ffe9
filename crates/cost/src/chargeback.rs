//! Q27's monthly chargeback: LLM charged to the store that used it, shared infrastructure
//! split by each store's share of the messages.

use serde::Serialize;
use surge_profile::SystemModel;

use crate::price::{CostTable, llm_cost};
use crate::usage::Usage;

/// One store's bill.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreCharge {
    pub store: String,
    pub message_share: f64,
    pub llm_per_month: f64,
    pub shared_per_month: f64,
    pub total_per_month: f64,
}

/// Splits `table` (the priced `usage`) across the stores of `usage`.
pub fn chargeback(usage: &Usage, table: &CostTable, sys: &SystemModel) -> Vec<StoreCharge> {
    let shared_per_month = table.total_per_month - table.llm_per_day * table.days_per_month;
    let total_messages: f64 = usage.stores.values().map(|s| s.messages).sum();
    usage
        .stores
        .iter()
        .map(|(store, su)| {
            let llm_per_day: f64 = su
                .llm
                .iter()
                .map(|(model, u)| llm_cost(sys, model, u, usage.provisioned_discount))
                .sum::<f64>()
                / usage.days.max(1e-12);
            let message_share = if total_messages > 0.0 {
                su.messages / total_messages
            } else {
                0.0
            };
            let llm_per_month = llm_per_day * table.days_per_month;
            let shared = shared_per_month * message_share;
            StoreCharge {
                store: store.clone(),
                message_share,
                llm_per_month,
                shared_per_month: shared,
                total_per_month: llm_per_month + shared,
            }
        })
        .collect()
}
