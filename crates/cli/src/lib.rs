//! Command-line wiring for surge: argument definitions, one module per command, and the
//! mapping from outcomes to the exit codes a CI job can trust (see [`Outcome`]).

mod commands;
mod exit;
mod format;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use exit::{Failure, Outcome};

/// Rehearse traffic spikes for LLM chat assistants.
///
/// surge predicts what an LLM chat architecture does under a traffic spike (a
/// discrete-event simulation of gateway, orchestrator, burst workers, memory, caches, RAG
/// and Bedrock) from one TOML profile that describes the traffic and the system.
///
/// Exit codes: 0 success; 1 thresholds or regression limits failed; 2 bad usage or an
/// invalid profile (the message names the file, line and key); 3 the run could not be
/// carried out.
#[derive(Debug, Parser)]
#[command(
    name = "surge",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a profile and print the resolved scenario.
    ///
    /// Reads the profile and the system model it names, reports every problem with its
    /// file, line, column and key, and prints the stages (sessions and messages per minute
    /// they ramp between), peak sessions, expected messages and LLM calls, and the system
    /// model in effect after the profile's overrides.
    ///
    /// Example: surge check profiles/one-piece-spike.toml
    Check(CheckArgs),
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The profile to check (a TOML file, e.g. profiles/local.toml).
    pub profile: PathBuf,
    /// Print the resolved profile as JSON instead of the human summary.
    #[arg(long)]
    pub json: bool,
}

/// Runs one command.
pub async fn run(cli: Cli) -> Result<Outcome, Failure> {
    match cli.command {
        Command::Check(args) => commands::check::run(&args),
    }
}
