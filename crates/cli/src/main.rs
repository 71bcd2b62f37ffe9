//! The `surge` binary: parse arguments, build the runtime, run the command, map the outcome
//! to an exit code. Everything else lives in the library crates.

use std::process::ExitCode;

use clap::Parser;
use surge_cli::{Cli, Failure};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return Failure::could_not_run(format!("cannot start the runtime: {e}")).report(),
    };
    match runtime.block_on(surge_cli::run(cli)) {
        Ok(code) => code.into(),
        Err(failure) => failure.report(),
    }
}
