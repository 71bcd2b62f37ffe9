//! Q35's cost optimizations as switches that stack, each with its saving.

use serde::Serialize;
use surge_profile::Profile;

use crate::CostError;
use crate::price::{CostTable, price};
use crate::usage::Usage;

/// Which cost optimizations are on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Optimizations {
    /// Route fast-tier intents to the fast model (Q35 strategy 1).
    pub tiering: bool,
    /// Answer semantically similar queries from cache (strategy 2).
    pub semantic_cache: bool,
    /// Cap answers at each intent's MAX_TOKENS (strategy 3).
    pub length_limits: bool,
    /// Provisioned throughput's discount on tokens (strategy 4).
    pub provisioned_discount: bool,
}

/// One row of the optimization table: the cost with this and every earlier switch on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OptimizationStep {
    pub name: &'static str,
    pub switches: Optimizations,
    pub table: CostTable,
    /// LLM dollars a day saved against the previous row.
    pub llm_saving_per_day: f64,
}

/// Turns one optimization on.
type SwitchOn = fn(&mut Optimizations);

/// The unoptimized table, then each optimization switched on in Q35's order.
pub fn optimizations(profile: &Profile) -> Result<Vec<OptimizationStep>, CostError> {
    let spec = profile.cost.as_ref().ok_or(CostError::NoCostSpec)?;
    let mut switches = Optimizations::default();
    let ladder: [(&'static str, SwitchOn); 5] = [
        ("unoptimized", |_| {}),
        ("+ model tiering", |o| o.tiering = true),
        ("+ semantic caching", |o| o.semantic_cache = true),
        ("+ response length limits", |o| o.length_limits = true),
        ("+ provisioned discount", |o| o.provisioned_discount = true),
    ];
    let mut steps: Vec<OptimizationStep> = Vec::with_capacity(ladder.len());
    for (name, switch_on) in ladder {
        switch_on(&mut switches);
        let usage = Usage::analytic(profile, switches)?;
        let table = price(&usage, &profile.system, spec.days_per_month);
        let llm_saving_per_day = steps
            .last()
            .map_or(0.0, |prev| prev.table.llm_per_day - table.llm_per_day);
        steps.push(OptimizationStep {
            name,
            switches,
            table,
            llm_saving_per_day,
        });
    }
    Ok(steps)
}
