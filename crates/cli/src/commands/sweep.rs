//! `surge sweep PROFILE --rates LO..HI[:STEP]`: stepped live load up to the knee.
//!
//! Flag parsing, the spend estimate and its confirmation; the sweep itself is
//! `surge-sweep`.

use std::io::{BufRead, IsTerminal, Write};
use std::num::NonZeroU64;
use std::path::PathBuf;

use surge_profile::target::{is_loopback, parse_ws_url};
use surge_profile::{Duration, Profile};
use surge_sweep::steps::Figure;
use surge_sweep::{Ceiling, Ending, Progress, Rates, Sessions, SweepError, SweepOptions, Verdict};

use crate::commands::run::{Load, interrupted};
use crate::format::dollars;
use crate::{Failure, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The profile to sweep (a TOML file with [thresholds], e.g. profiles/local.toml).
    pub profile: PathBuf,
    /// The steps' offered rates: LO..HI[:STEP] in messages per minute (600..3000:600) or
    /// with units (10/s..50/s:10/s); without STEP, five steps from LO to HI.
    #[arg(long, value_name = "LO..HI[:STEP]")]
    pub rates: Rates,
    /// How long each step holds its rate (and is judged over).
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    pub hold: Duration,
    /// The same N sessions at every step (default: sessions scale with the rate, each
    /// sending at the pace of the profile's busiest stage).
    #[arg(long, value_name = "N")]
    pub sessions: Option<NonZeroU64>,
    /// Refuse steps above this rate (messages per minute, or 50/s). Required against a
    /// target that is not loopback.
    #[arg(long, value_name = "RATE", value_parser = surge_sweep::steps::per_minute)]
    pub max_rate: Option<f64>,
    /// Refuse a sweep whose steps together hold load longer than this.
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    pub max_duration: Duration,
    /// Do not simulate the steps first (the simulator's verdict is otherwise printed
    /// before the sweep starts and beside each step).
    #[arg(long)]
    pub no_predict: bool,
    /// Start without asking, after printing the spend estimate (needed when stdin is not
    /// a terminal and the target is not loopback).
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub load: Load,
}

fn failure(e: SweepError) -> Failure {
    match e {
        SweepError::Usage(m) => Failure::Usage(m),
        SweepError::CouldNotRun(m) => Failure::CouldNotRun(m),
    }
}

pub async fn run(args: &Args) -> Result<Outcome, Failure> {
    let profile = Profile::load(&args.profile)?;
    let sessions = match args.sessions {
        Some(n) => Sessions::Fixed(n),
        None => Sessions::scaled(&profile).map_err(Failure::Usage)?,
    };
    let estimate = surge_sweep::estimate(&profile, &args.rates, args.hold);
    let run = args.load.options(profile, &args.profile)?;
    let (_, host) =
        parse_ws_url(&run.target).map_err(|e| Failure::Usage(format!("--target: {e}")))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let remote = !is_loopback(&host.to_ascii_lowercase());
    if remote && args.max_rate.is_none() {
        return Err(Failure::Usage(format!(
            "{host} is not loopback: give --max-rate (the highest rate this sweep may send it, \
             e.g. --max-rate {}/min)",
            Figure(args.rates.highest())
        )));
    }
    let opts = SweepOptions {
        run,
        rates: args.rates.clone(),
        hold: args.hold,
        sessions,
        ceiling: Ceiling {
            max_rate_per_min: args.max_rate,
            max_duration: args.max_duration,
        },
        predict: !args.no_predict,
    };
    surge_sweep::sweep::check(&opts).map_err(failure)?;
    let steps = args.rates.per_minute().len();
    println!(
        "sweep of {}: {steps} steps from {}/min to {}/min, {} each (at most {}), against {}",
        opts.run.profile.name,
        Figure(args.rates.per_minute()[0]),
        Figure(args.rates.highest()),
        args.hold,
        Duration::from_secs_f64(args.hold.as_secs_f64() * steps as f64),
        surge_record::redact_url(&opts.run.target)
    );
    if remote {
        println!(
            "estimated Bedrock spend if every step runs: {} ({} messages, {} LLM calls, \
             on-demand prices of the system model)",
            dollars(estimate.dollars),
            crate::format::thousands(estimate.messages),
            crate::format::thousands(estimate.llm_calls)
        );
        confirm(args.yes, &host)?;
    }
    let sweep = surge_sweep::run(opts, interrupted(), |p| match p {
        Progress::Predicted(sweep) => {
            if let Some(line) = surge_sweep::record::predicted_answer(sweep) {
                eprintln!("{line}");
            }
        }
        Progress::Starting {
            index,
            of,
            rate_per_min,
            sessions,
        } => eprintln!(
            "step {index}/{of}: {}/min over {sessions} sessions…",
            Figure(rate_per_min)
        ),
        Progress::Finished(s) => {
            let p99 = s
                .figures
                .e2e_p99_ms
                .map_or_else(|| "—".into(), surge_analyze::fmt::ms);
            eprintln!(
                "step {}: {}/min {} (e2e p99 {p99} ms, errors {}){}",
                s.index,
                Figure(s.rate_per_min),
                s.verdict.name(),
                surge_analyze::fmt::pct(s.figures.error_ratio),
                match &s.verdict {
                    Verdict::Passed | Verdict::Interrupted => String::new(),
                    v => format!(": {}", v.reasons().join("; ")),
                }
            );
        }
    })
    .await
    .map_err(failure)?;
    println!("\n{}", surge_sweep::record::render_text(&sweep));
    println!("sweep directory: {}", sweep.dir.display());
    match sweep.ending {
        Ending::AllPassed => Ok(Outcome::Success),
        Ending::FailedStep | Ending::GeneratorBound => Ok(Outcome::Failed),
        Ending::Interrupted => Ok(Outcome::Interrupted),
        Ending::CouldNotRun(why) => Err(Failure::could_not_run(format!(
            "{why}; what was measured is in {}",
            sweep.dir.display()
        ))),
    }
}

/// Against a real deployment: `--yes`, or a "y" typed at the terminal.
fn confirm(yes: bool, host: &str) -> Result<(), Failure> {
    if yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Failure::Usage(format!(
            "refusing to sweep {host} unattended: read the estimate above and add --yes"
        )));
    }
    print!("send this load to {host}? [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Failure::could_not_run(format!("reading the answer: {e}")))?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(Failure::Usage("not confirmed: nothing was sent".into()))
    }
}
