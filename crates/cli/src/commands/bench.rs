//! `surge bench [PROFILE]`: the local mock-mode benchmark in one command.
//!
//! Starts `surge mock` on a free loopback port (as many worker processes as the sessions
//! need), runs the profile against it with `surge run`'s engine, stops the mock, writes
//! the HTML report next to the run, then simulates the same profile and prints predicted
//! against measured. One scenario, both answers, no set-up.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use surge_analyze::{Format, LoadOptions, ReportOptions, render};
use surge_loadgen::{RunOptions, RunStatus};
use surge_profile::Profile;
use surge_sim::{SimOptions, simulate};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::{Failure, Outcome};

/// Sessions one process serves or drives comfortably under the 20,000 open-file limit.
const SESSIONS_PER_PROCESS: f64 = 15_000.0;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The profile to benchmark [default: the built-in `local` profile, the copy of
    /// profiles/local.toml and its system model made when surge was built: 200 sessions
    /// for 90 s, about two minutes in all, from any directory]
    pub profile: Option<PathBuf>,
    /// Where run directories go: OUT/<profile>/<UTC timestamp>/.
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub out: PathBuf,
}

pub async fn run(args: &Args) -> Result<Outcome, Failure> {
    // The built-in profile goes to a directory of its own for the run (the mock is a
    // separate process and reads its profile from a file), removed when the run ends.
    let (profile_path, _builtin) = match &args.profile {
        Some(path) => (path.clone(), None),
        None => {
            let cannot = |e: std::io::Error| {
                Failure::could_not_run(format!("cannot write the built-in profile: {e}"))
            };
            let dir = tempfile::tempdir().map_err(cannot)?;
            let path = surge_profile::embedded::write_local(dir.path()).map_err(cannot)?;
            (path, Some(dir))
        }
    };
    let profile = Profile::load(&profile_path)?;
    let processes = (profile.schedule().peak_sessions() / SESSIONS_PER_PROCESS)
        .ceil()
        .max(1.0) as u32;
    let exe = std::env::current_exe()
        .map_err(|e| Failure::could_not_run(format!("cannot find this program: {e}")))?;

    eprintln!(
        "surge bench: {} against the local mock ({processes} mock process(es))",
        profile.name
    );
    let (mut mock, addr) = start_mock(&exe, &profile_path, processes).await?;
    let measured = measure(&exe, &profile, &addr, processes, &args.out).await;
    stop_mock(&mut mock).await;
    let (dir, summary_passed, status) = measured?;

    let sim = simulate(
        &profile,
        &SimOptions {
            out_root: Some(args.out.clone()),
            ..SimOptions::default()
        },
    )
    .map_err(|e| Failure::could_not_run(format!("simulating {}: {e}", profile.name)))?;
    let sim_dir = sim
        .run_dir
        .ok_or_else(|| Failure::could_not_run("the simulation wrote no run directory"))?;

    let html = dir.join("report.html");
    predicted_vs_measured(&sim_dir, &dir, &html)?;
    println!("\nmeasured run:  {}", dir.display());
    println!("simulated run: {}", sim_dir.display());
    println!("HTML report:   {}", html.display());
    match status {
        RunStatus::Interrupted => Ok(Outcome::Interrupted),
        RunStatus::Aborted => Ok(Outcome::Failed),
        _ if summary_passed => Ok(Outcome::Success),
        _ => Ok(Outcome::Failed),
    }
}

/// Starts `surge mock` on 127.0.0.1:0 and returns it with the address it listens on.
async fn start_mock(exe: &Path, profile: &Path, workers: u32) -> Result<(Child, String), Failure> {
    let mut child = Command::new(exe)
        .arg("mock")
        .arg("--profile")
        .arg(profile)
        .args(["--listen", "127.0.0.1:0", "--workers", &workers.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Failure::could_not_run(format!("cannot start surge mock: {e}")))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await
        .map_err(|_| Failure::could_not_run("surge mock did not start within 30 s"))?
        .map_err(|e| Failure::could_not_run(format!("reading surge mock's output: {e}")))?
        .ok_or_else(|| Failure::could_not_run("surge mock exited before listening"))?;
    let addr = first
        .strip_prefix("listening on ")
        .ok_or_else(|| {
            Failure::could_not_run(format!("unexpected first line from surge mock: {first}"))
        })?
        .trim()
        .to_string();
    // Keep draining its stdout so the mock never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, addr))
}

/// Closing the mock's stdin stops its workers; the parent is then killed if still there.
async fn stop_mock(mock: &mut Child) {
    drop(mock.stdin.take());
    let _ = mock.start_kill();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), mock.wait()).await;
}

async fn measure(
    exe: &Path,
    profile: &Profile,
    addr: &str,
    shards: u32,
    out: &Path,
) -> Result<(PathBuf, bool, RunStatus), Failure> {
    let opts = RunOptions {
        profile: profile.clone(),
        target: format!("ws://{addr}/chat"),
        headers: Vec::new(),
        token_env: None,
        shards,
        bind: Vec::new(),
        out: out.to_path_buf(),
        dir: None,
        metrics_addr: None,
        pushgateway: None,
        progress: std::io::stderr().is_terminal(),
        shard: None,
        start_at: None,
        worker_command: super::run::worker_command(exe),
        // The mock's own figures (tasks, queue depth, throttles) beside the measurements.
        scrape: vec![format!("http://{addr}/metrics")],
        max_errors: None,
        rendezvous: None,
    };
    let outcome = surge_loadgen::run(opts, super::run::interrupted())
        .await
        .map_err(|e| Failure::could_not_run(e.to_string()))?;
    println!("{}", outcome.report);
    for p in &outcome.problems {
        eprintln!("warning: {p}");
    }
    Ok((outcome.dir, outcome.summary.passed(), outcome.status))
}

/// Prints the simulated run against the measured one and writes the measured HTML report.
fn predicted_vs_measured(simulated: &Path, measured: &Path, html: &Path) -> Result<(), Failure> {
    let load = LoadOptions::default();
    let opts = ReportOptions::default();
    let failed = |e: surge_analyze::AnalyzeError| Failure::could_not_run(e.to_string());
    let sim = surge_analyze::report(&[simulated.to_path_buf()], &load, &opts).map_err(failed)?;
    let real = surge_analyze::report(&[measured.to_path_buf()], &load, &opts).map_err(failed)?;
    std::fs::write(html, render::report(&real, Format::Html))
        .map_err(|e| Failure::could_not_run(format!("writing {}: {e}", html.display())))?;
    let comparison = surge_analyze::compare(&sim, &real, &[], None).map_err(failed)?;
    println!("\npredicted (simulated) against measured (mock)");
    print!("{}", render::comparison(&comparison, Format::Text));
    Ok(())
}
