//! `surge plan PROFILE --slo … --vary …`: the cheapest system settings that meet the SLOs.

use std::io::IsTerminal;
use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use surge_plan::{Candidate, Knob, PlanOptions, Pruned, Slo, plan};
use surge_profile::Profile;

use crate::format::{Table, dollars};
use crate::{Failure, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The profile whose whole scenario every candidate must survive.
    pub profile: PathBuf,
    /// An objective every candidate must meet, e.g. 'ttft.p99<=1s', 'e2e.p99<=3s',
    /// 'errors.rate<=0.1%'. Repeat the flag or separate with commas.
    #[arg(long, required = true, value_delimiter = ',', value_name = "SLO")]
    pub slo: Vec<String>,
    /// A system-model key and its values: a range 'orchestrator.min_tasks=10..60' (taken as
    /// monotone and bisected) or choices 'cache.prewarm=on|off' (all tried). Repeatable.
    #[arg(long, required = true, value_name = "KEY=VALUES")]
    pub vary: Vec<String>,
    /// Replications per candidate; a candidate passes when the 95% confidence bound of
    /// every SLO does.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub replications: u32,
    /// Threads for the simulations (default: all cores); the answer does not depend on it.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Seed instead of the profile's.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &Args) -> Result<Outcome, Failure> {
    let profile = Profile::load(&args.profile)?;
    let slos = args
        .slo
        .iter()
        .map(|s| {
            s.parse::<Slo>()
                .map_err(|e| Failure::Usage(format!("--slo {s}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let knobs = args
        .vary
        .iter()
        .map(|k| {
            k.parse::<Knob>()
                .map_err(|e| Failure::Usage(format!("--vary: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if args.replications == 0 {
        return Err(Failure::Usage("--replications must be at least 1".into()));
    }
    let opts = PlanOptions {
        replications: args.replications,
        threads: args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        seed: args.seed,
    };
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed} candidate {pos}: {msg}")
                .expect("the template is valid"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let started = std::time::Instant::now();
    let result = plan(&profile, &knobs, &slos, &opts, |c| {
        bar.inc(1);
        bar.set_message(format!(
            "{} → {} {}",
            c.label(),
            dollars(c.cost),
            match (c.passed, &c.stopped_early, &c.settled_early) {
                (true, ..) => "meets the SLOs".to_string(),
                (false, Some(why), _) | (false, None, Some(why)) => format!("misses: {why}"),
                (false, None, None) => "misses".to_string(),
            }
        ));
    })
    .map_err(|e| match e {
        surge_plan::PlanError::Sim { .. } => Failure::could_not_run(e.to_string()),
        other => Failure::Usage(other.to_string()),
    })?;
    bar.finish_and_clear();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&result).expect("plans serialize")
        );
    } else {
        print!(
            "{}",
            render(&result.by_cost(), result.winner(), &slos, args.replications)
        );
        print!("{}", render_pruned(&result.pruned));
        let runs: u32 = result.candidates.iter().map(|c| c.replications).sum();
        println!(
            "\n{} candidates, {runs} simulations of up to {} replications each, in {:.1} s",
            result.candidates.len(),
            args.replications,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(if result.winner.is_some() {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}

fn render(
    frontier: &[&Candidate],
    winner: Option<&Candidate>,
    slos: &[Slo],
    replications: u32,
) -> String {
    let mut header = vec!["settings".to_string(), "cost of the run".to_string()];
    header.extend(slos.iter().map(|s| s.0.metric.to_string()));
    header.push("verdict".into());
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = Table::new(&header_refs);
    for c in frontier {
        // A run stopped early cost less than the whole profile would: not comparable.
        let cost = match c.stopped_early {
            Some(_) => "—".to_string(),
            None => dollars(c.cost),
        };
        let mut row = vec![c.label(), cost];
        row.extend(c.slos.iter().map(|s| format_value(&s.slo, s.bound)));
        row.push(match (c.passed, &c.stopped_early, &c.settled_early) {
            (true, ..) => "✓ meets".into(),
            (false, Some(_), _) => "✗ misses (stopped early)".into(),
            (false, None, Some(_)) => format!(
                "✗ misses (sure after {} of {} replications)",
                c.replications, replications
            ),
            (false, None, None) => "✗ misses".into(),
        });
        t.row(row);
    }
    let mut out = String::from(
        "candidates explored, cheapest first (SLO columns: 95% bound; a candidate stopped \
         early is shown as far as it ran, one sure to miss after fewer replications than \
         asked over those it ran)\n",
    );
    out.push_str(&t.render());
    match winner {
        Some(w) => {
            out.push_str(&format!(
                "\ncheapest setting that meets every SLO: {}  ({} for the profile)\n",
                w.label(),
                dollars(w.cost)
            ));
            for s in &w.slos {
                out.push_str(&format!(
                    "  {:<28} bound {}  margin {}\n",
                    s.slo,
                    format_value(&s.slo, s.bound),
                    format_value(&s.slo, s.margin)
                ));
            }
        }
        None => out.push_str("\nno setting explored meets every SLO; widen the ranges\n"),
    }
    out
}

/// The settings the search judged without simulating them, and why.
fn render_pruned(pruned: &[Pruned]) -> String {
    if pruned.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\njudged without simulating (more of every range than a simulated pass passes, \
         less than a simulated miss misses):\n",
    );
    for p in pruned {
        out.push_str(&format!(
            "  {}  {}, implied by {}\n",
            p.label(),
            if p.passed { "✓ meets" } else { "✗ misses" },
            p.by
        ));
    }
    out
}

/// Latencies in ms, ratios as percentages.
fn format_value(slo: &str, v: f64) -> String {
    if slo.starts_with("errors.") || slo.starts_with("late.") {
        format!("{:.3}%", v * 100.0)
    } else {
        format!("{v:.1} ms")
    }
}
