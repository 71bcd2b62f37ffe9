//! `surge cost PROFILE`: the cost table from first principles (Q35), the optimizations
//! stacked one by one, the comparison with a human agent, and the per-store chargeback.

use std::fmt::Write;
use std::path::PathBuf;

use surge_cost::{CostTable, OptimizationStep, chargeback, optimizations, seed_notes};
use surge_profile::Profile;

use crate::format::{Table, dollars, thousands};
use crate::{Failure, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The profile to cost; it needs a [cost] table (e.g. profiles/cost-100k.toml).
    pub profile: PathBuf,
    /// Print the tables as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &Args) -> Result<Outcome, Failure> {
    let profile = Profile::load(&args.profile)?;
    let steps = optimizations(&profile)
        .map_err(|e| Failure::Usage(format!("{}: {e}", args.profile.display())))?;
    let spec = profile
        .cost
        .as_ref()
        .expect("optimizations() checked the [cost] table");
    let notes = seed_notes(&steps, spec);
    let unoptimized = &steps[0];
    let usage = surge_cost::Usage::analytic(&profile, unoptimized.switches)
        .expect("the [cost] table exists");
    let bills = chargeback(&usage, &unoptimized.table, &profile.system);
    if args.json {
        let json = serde_json::json!({
            "profile": profile.name,
            "conversations_per_day": spec.conversations_per_day,
            "days_per_month": spec.days_per_month,
            "unoptimized": unoptimized.table,
            "optimizations": steps,
            "chargeback": bills,
            "seed_notes": notes,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&json).expect("cost tables serialize")
        );
        return Ok(Outcome::Success);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "cost of {}: {} conversations/day × {} turns, {} days/month (analytic, as Q35 reasons)\n",
        profile.name,
        thousands(spec.conversations_per_day),
        profile.traffic.conversation_turns,
        spec.days_per_month
    );
    out.push_str(&cost_table(&unoptimized.table));
    let _ = writeln!(out, "\noptimizations, stacked in Q35's order");
    out.push_str(&ladder(&steps));
    let optimized = &steps[steps.len() - 1].table;
    let _ = writeln!(
        out,
        "\nper conversation: ${:.4} unoptimized, ${:.4} optimized; a human agent interaction costs {}–{}:",
        unoptimized.table.per_conversation,
        optimized.per_conversation,
        spec.human_agent_low,
        spec.human_agent_high
    );
    for (label, t) in [
        ("unoptimized", &unoptimized.table),
        ("optimized", optimized),
    ] {
        let _ = writeln!(
            out,
            "  {label:<12} the chatbot is {:.0}–{:.0}× cheaper",
            spec.human_agent_low.dollars() / t.per_conversation,
            spec.human_agent_high.dollars() / t.per_conversation
        );
    }
    let _ = writeln!(
        out,
        "\nmonthly chargeback per store (unoptimized; LLM direct, shared by message share)"
    );
    let mut t = Table::new(&["store", "share", "LLM", "shared", "total"]);
    for b in &bills {
        t.row(vec![
            b.store.clone(),
            format!("{:.1}%", b.message_share * 100.0),
            dollars(b.llm_per_month),
            dollars(b.shared_per_month),
            dollars(b.total_per_month),
        ]);
    }
    out.push_str(&t.render());
    if !notes.is_empty() {
        let _ = writeln!(out, "\nwhere the seed's arithmetic differs");
        for n in &notes {
            let _ = writeln!(out, "  {}\n    → {}", n.claim, n.computed);
        }
    }
    print!("{out}");
    Ok(Outcome::Success)
}

fn cost_table(table: &CostTable) -> String {
    let mut t = Table::new(&["component", "per day", "per month", "basis"]).left_aligned(3);
    for l in &table.lines {
        t.row(vec![
            l.component.clone(),
            dollars(l.per_day),
            dollars(l.per_month),
            l.basis.clone(),
        ]);
    }
    t.row(vec![
        "total".into(),
        dollars(table.total_per_day),
        dollars(table.total_per_month),
        format!(
            "LLM {:.1}% of the total, ${:.4} per conversation",
            table.llm_share * 100.0,
            table.per_conversation
        ),
    ]);
    t.render()
}

fn ladder(steps: &[OptimizationStep]) -> String {
    let mut t = Table::new(&[
        "step",
        "LLM/day",
        "saved/day",
        "total/month",
        "per conversation",
    ]);
    for s in steps {
        t.row(vec![
            s.name.to_string(),
            dollars(s.table.llm_per_day),
            if s.llm_saving_per_day > 0.0 {
                dollars(s.llm_saving_per_day)
            } else {
                "—".into()
            },
            dollars(s.table.total_per_month),
            format!("${:.4}", s.table.per_conversation),
        ]);
    }
    t.render()
}
