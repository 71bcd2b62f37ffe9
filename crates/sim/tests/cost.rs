//! A simulated run prices what it consumed with the same arithmetic as `surge cost`, so a
//! run of the Q35 scenario must cost what the analytic table says, within sampling noise.

use std::path::Path;

use surge_cost::{Optimizations, Usage, price};
use surge_profile::{Duration, Profile};
use surge_sim::{SimOptions, simulate};

#[test]
fn simulated_q35_day_costs_what_the_analytic_table_says() {
    let mut profile =
        Profile::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles/cost-100k.toml"))
            .unwrap();
    // Two hours at the same rate as the 24-hour day keep the test quick; cost per day is
    // a rate, so it does not change.
    let two_hours: Duration = "2h".parse().unwrap();
    profile.traffic.stages[0].duration = two_hours;
    profile.duration = two_hours;
    let analytic = price(
        &Usage::analytic(&profile, Optimizations::default()).unwrap(),
        &profile.system,
        30.0,
    );
    let run = simulate(&profile, &SimOptions::default()).unwrap();
    let simulated = &run.report.cost;
    // ~16,700 LLM calls in two hours: the LLM line is within a few percent of $1,800/day.
    let rel = simulated.table.llm_per_day / analytic.llm_per_day - 1.0;
    assert!(
        rel.abs() < 0.05,
        "simulated {} vs analytic {}",
        simulated.table.llm_per_day,
        analytic.llm_per_day
    );
    // Ten tasks all day: the ECS line matches exactly (the drain after the last arrival
    // is part of the simulated time on both sides of the ratio).
    let ecs = |t: &surge_cost::CostTable| {
        t.lines
            .iter()
            .find(|l| l.component == "ECS Fargate orchestrator")
            .unwrap()
            .per_day
    };
    assert!((ecs(&simulated.table) - ecs(&analytic)).abs() < 0.01);
    // The run's own total is the daily rate over the simulated hours.
    let expected = simulated.table.total_per_day * simulated.run_hours / 24.0;
    assert!((simulated.run_total - expected).abs() < 1e-6);
    // And summary.json carries it.
    assert!(run.summary.cost.as_ref().unwrap()["table"]["llm_per_day"].is_number());
    let bills: f64 = simulated.chargeback.iter().map(|b| b.total_per_month).sum();
    assert!((bills - simulated.table.total_per_month).abs() < 1e-6 * bills.max(1.0));
}
