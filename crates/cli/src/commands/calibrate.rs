//! `surge calibrate RUN_DIR... --profile P`: fit the system model to measured runs.

use std::path::PathBuf;

use surge_calibrate::{Options, calibrate};
use surge_profile::Profile;

use crate::{Failure, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Measured run directories (written by `surge run` or `surge bench`), ideally at two
    /// or more load levels, such as 30% and 60% of capacity.
    #[arg(required = true, value_name = "RUN_DIR")]
    pub runs: Vec<PathBuf>,
    /// The profile whose system model the fit starts from (its traffic is not used: each
    /// run is replayed with its own).
    #[arg(long, value_name = "PROFILE")]
    pub profile: PathBuf,
    /// A key to fit, as the system model nests it; `*` stands for one name
    /// (bedrock.models.*.ttft). Repeat or separate with commas. Default:
    /// orchestrator.cpu_per_message, orchestrator.initial_tasks, classifier.latency,
    /// memory.read_latency, bedrock.models.*.ttft and bedrock.models.*.output_rate, of
    /// which the fit keeps those the runs identify.
    #[arg(long, value_delimiter = ',', value_name = "KEY")]
    pub fit: Vec<String>,
    /// Write the fitted system model here (TOML; use it with `[system] file = ...`).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print the fit report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Seed of the replays (the same seed gives the same fit).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Replays per run and candidate (default: enough for about 10,000 answers per run).
    #[arg(long, value_name = "N")]
    pub replications: Option<u32>,
    /// Threads for the replays (default: all cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Most candidates of the final fitting stage.
    #[arg(long, default_value_t = 400, value_name = "N")]
    pub budget: usize,
}

pub fn run(args: &Args) -> Result<Outcome, Failure> {
    let profile = Profile::load(&args.profile)?;
    if args.replications == Some(0) {
        return Err(Failure::Usage("--replications must be at least 1".into()));
    }
    if let Some(out) = &args.out {
        if out.is_dir() {
            return Err(Failure::Usage(format!(
                "--out {}: is a directory; name the TOML file to write",
                out.display()
            )));
        }
    }
    let opts = Options {
        fit: args.fit.clone(),
        seed: args.seed,
        replications: args.replications,
        threads: args
            .threads
            .unwrap_or_else(surge_plan::batch::default_threads)
            .max(1),
        budget: args.budget.max(1),
        progress: true,
    };
    let started = std::time::Instant::now();
    let result = calibrate(&args.runs, &profile.system, &args.profile, &opts).map_err(|e| {
        if e.is_usage() {
            Failure::Usage(e.to_string())
        } else {
            Failure::could_not_run(e.to_string())
        }
    })?;
    if let Some(out) = &args.out {
        write_atomically(out, &result.toml())
            .map_err(|e| Failure::could_not_run(format!("cannot write {}: {e}", out.display())))?;
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&result).expect("calibrations serialize")
        );
    } else {
        print!("{}", result.text());
        println!(
            "\n{} replays in {:.1} s",
            result.evaluations,
            started.elapsed().as_secs_f64()
        );
        match &args.out {
            Some(out) => println!(
                "wrote {}: point a profile at it with [system] file = \"{}\"",
                out.display(),
                out.display()
            ),
            None => println!("(--out FILE writes the fitted system model)"),
        }
    }
    Ok(Outcome::Success)
}

/// Writes to a temporary file beside `path`, then renames it over `path`.
fn write_atomically(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .map_or("calibrated".into(), |n| n.to_string_lossy())
    ));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}
