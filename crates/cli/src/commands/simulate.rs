//! `surge simulate PROFILE`: predict the profile with the discrete-event model.

use std::io::IsTerminal;
use std::path::PathBuf;

use surge_analyze::fmt;
use surge_profile::Profile;
use surge_sim::{SimOptions, simulate};

use crate::{Failure, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The profile to simulate (a TOML file, e.g. profiles/one-piece-spike.toml).
    pub profile: PathBuf,
    /// Seed instead of the profile's (replications use seed, seed + 1, …).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Independent runs with consecutive seeds, for confidence intervals.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub replications: u32,
    /// Threads for replications (default: all cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Where run directories go: OUT/<profile>/<UTC timestamp>/.
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub out: PathBuf,
    /// Print the report only; write no run directory.
    #[arg(long)]
    pub no_write: bool,
}

pub fn run(args: &Args) -> Result<Outcome, Failure> {
    let profile = Profile::load(&args.profile)?;
    if args.replications == 0 {
        return Err(Failure::Usage("--replications must be at least 1".into()));
    }
    let opts = SimOptions {
        seed: args.seed,
        replications: args.replications,
        threads: args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        out_root: (!args.no_write).then(|| args.out.clone()),
        progress: std::io::stderr().is_terminal(),
        ..SimOptions::default()
    };
    let outcome = simulate(&profile, &opts)
        .map_err(|e| Failure::could_not_run(format!("simulating {}: {e}", profile.name)))?;
    println!("{}", outcome.report);
    let llm = outcome.summary.llm_lines();
    if !llm.is_empty() {
        print!("\n{llm}");
    }
    if let Some(reps) = &outcome.replications {
        println!(
            "\n{} replications (seeds {} upward), mean and 95% confidence interval:",
            args.replications,
            opts.seed.unwrap_or(profile.seed)
        );
        for e in &reps.figures {
            println!("  {:<28} {:>12.3}  ± {:.3}", e.name, e.mean, e.half_width);
        }
    }
    println!(
        "\nsimulated {} messages in {:.2} s wall ({:.0} events/s, {:.0} messages/s)",
        outcome.report.sent,
        outcome.wall.as_secs_f64(),
        outcome.events_per_s,
        outcome.messages_per_s
    );
    if let Some(dir) = &outcome.run_dir {
        println!("run directory: {}", dir.display());
    }
    let failed: Vec<_> = outcome
        .summary
        .thresholds
        .iter()
        .filter(|t| !t.passed)
        .collect();
    if failed.is_empty() {
        Ok(Outcome::Success)
    } else {
        for t in &failed {
            // Latency limits are in ms, ratio limits are fractions.
            let show = |v: f64| {
                if t.metric.starts_with("errors.")
                    || t.metric.starts_with("late.")
                    || t.metric.starts_with("goodput.")
                {
                    fmt::pct(v)
                } else {
                    format!("{} ms", fmt::ms(v))
                }
            };
            let measured = t.measured.map_or_else(|| "no data".to_string(), show);
            eprintln!(
                "threshold failed: {} {} {} (measured {measured})",
                t.metric,
                t.op.symbol(),
                show(t.limit)
            );
        }
        Ok(Outcome::Failed)
    }
}
