//! The cost model: usage in, money out, per component, per conversation and per store.
//!
//! Usage comes from one of two places — the analytic arithmetic of the seed's Q35
//! (conversations a day × turns × LLM share × tokens, [`Usage::analytic`]) or what a
//! simulated run actually consumed — and is priced by one function, [`price`], with the
//! prices of the system model. Keeping "how much" apart from "at what price" means the two
//! modes cannot drift apart, and the optimization table ([`optimizations`]) is just the
//! analytic usage re-derived with one more switch on at each step.

mod chargeback;
mod optimize;
mod price;
mod usage;

pub use chargeback::{StoreCharge, chargeback};
pub use optimize::{OptimizationStep, Optimizations, optimizations};
pub use price::{CostLine, CostTable, SeedNote, bedrock_spend, price, seed_notes, token_price};
pub use usage::{ModelUsage, StoreUsage, Usage};

/// Why a cost could not be computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CostError {
    /// The profile has no `[cost]` table, which analytic costing needs.
    NoCostSpec,
}

impl std::fmt::Display for CostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoCostSpec => f.write_str(
                "the profile has no [cost] table (conversations_per_day, days_per_month, …); \
                 see profiles/cost-100k.toml",
            ),
        }
    }
}

impl std::error::Error for CostError {}
