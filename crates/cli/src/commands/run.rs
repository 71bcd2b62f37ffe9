//! `surge run PROFILE --target URL`: real WebSocket load, measured into a run directory.
//!
//! Argument parsing and wiring only; the load generator is `surge-loadgen`. With
//! `--shards N` this same binary is started N times with the hidden `--worker` flag, each
//! worker reading its brief from stdin and reporting on stdout.

use std::ffi::OsString;
use std::io::{IsTerminal, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use surge_loadgen::rendezvous::Options as Rendezvous;
use surge_loadgen::wire::{ShardId, WorkerSpec};
use surge_loadgen::{RunError, RunOptions, RunStatus};
use surge_profile::Profile;

use crate::{Failure, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The profile to run (a TOML file, e.g. profiles/local.toml).
    #[arg(required_unless_present_any = ["worker", "merge"])]
    pub profile: Option<PathBuf>,
    #[command(flatten)]
    pub load: Load,
    /// Serve live Prometheus metrics at http://ADDR/metrics during the run.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Push the final figures to this Prometheus Pushgateway at the end.
    #[arg(long, value_name = "URL")]
    pub pushgateway: Option<String>,
    /// Copy the finished run directory (whatever its status, interrupted or aborted too)
    /// to S3 or an S3-compatible store, for machines without a shared volume: each file to
    /// s3://BUCKET/PREFIX/<its path in the directory>, run.json last. Exactly PREFIX, not
    /// PREFIX/<timestamp>: give each run (and each --shard) its own prefix; one that
    /// already holds objects is refused. Credentials and region come from the usual AWS
    /// chain (AWS_ACCESS_KEY_ID…, AWS_PROFILE, EKS pod roles, instance roles; us-east-1
    /// without a region); for MinIO, moto or another S3-compatible store, set
    /// AWS_ENDPOINT_URL_S3=http://HOST:PORT. A failed upload keeps the local directory and
    /// exits 3; Ctrl-C during the upload keeps it too and exits 130. Read it back with
    /// `surge report s3://BUCKET/PREFIX`.
    #[arg(long, value_name = "s3://BUCKET/PREFIX", value_parser = crate::s3::parse_url)]
    pub upload: Option<surge_objstore::S3Url>,
    /// Sample these Prometheus text endpoints (the mock's http://ADDR/metrics, an exporter
    /// in front of CloudWatch) once per interval into timeline.csv columns named
    /// scrape:<metric>:<label>-<value>: the system's own figures (tasks, queue depth,
    /// throttles) beside what its users saw. Comma-separated or repeated.
    #[arg(long, value_name = "URL", value_delimiter = ',')]
    pub scrape: Vec<String>,
    /// Run only shard I of N of a multi-machine run (e.g. a Kubernetes Indexed Job).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Time zero of the run, so shards on several machines start together: RFC 3339
    /// (2026-11-28T14:00:00Z) or Unix seconds. Needs clocks that agree; --rendezvous does not.
    #[arg(long, value_name = "TIME", conflicts_with = "rendezvous")]
    pub start_at: Option<String>,
    /// With --shard I/N: make one run of the N machines. Shard 0 listens on PORT (on HOST
    /// when it is an IP address, else on every interface) and coordinates: the others
    /// connect to HOST:PORT, all start at one instant it gives (no clock agreement needed),
    /// and it merges every shard live into one run directory under --out, serving the
    /// merged /metrics and judging thresholds and aborts on all shards. Each shard also
    /// keeps OUT/shard-NNN/. A shard silent for two intervals is lost (status degraded);
    /// a lost coordinator stops every shard cleanly. With SURGE_RENDEZVOUS_KEY in the
    /// environment of every machine (16 bytes or more; on Kubernetes a Secret, as
    /// scripts/k8s/run.sh makes one per run), shards and coordinator prove the key to each
    /// other before a shard joins: nothing without it can join the run or be reported to.
    /// The key is never printed or written; the link is not encrypted.
    #[arg(long, value_name = "HOST:PORT", requires = "shard")]
    pub rendezvous: Option<String>,
    /// How long shards wait for each other at the rendezvous (and for the coordinator).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "5m",
        requires = "rendezvous"
    )]
    pub join_timeout: surge_profile::Duration,
    /// Start with at least K shards if not all N have joined by --join-timeout; the missing
    /// ones count as lost from the start (default: wait for all N).
    #[arg(long, value_name = "K", requires = "rendezvous", value_parser = clap::value_parser!(u32).range(1..))]
    pub min_shards: Option<u32>,
    /// Merge the shard directories of a multi-machine run (OUT/shard-NNN/ written by
    /// --shard I/N) into one run directory under --out, instead of running load. A
    /// SHARD_DIR may be s3://BUCKET/PREFIX/shard-NNN, where a rendezvous run's --upload
    /// put each shard's own directory (read with AWS's credential chain).
    #[arg(long, num_args = 1.., value_name = "SHARD_DIR", conflicts_with_all = ["profile", "target", "shard"])]
    pub merge: Vec<PathBuf>,
    /// Internal: run as a worker of a sharded run (brief on stdin, reports on stdout).
    #[arg(long, hide = true)]
    pub worker: bool,
}

/// The flags of a measured run that `surge run` and `surge sweep` share.
#[derive(Debug, clap::Args)]
pub struct Load {
    /// WebSocket URL to load: ws://HOST:PORT/PATH or wss://… (default: the profile's
    /// target.url). The host must be loopback or match the profile's target.allowed.
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// Worker processes to spread the sessions over (a process may hold only so many
    /// sockets); their measurements are merged into one run directory.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub shards: u32,
    /// Source addresses to connect from, past the ~28,000 ports of one address:
    /// 127.0.0.1-127.0.0.8 or a comma list.
    #[arg(long, value_name = "ADDRS")]
    pub bind: Option<String>,
    /// Where run directories go: OUT/<profile>/<UTC timestamp>/ (with --shard:
    /// OUT/shard-NNN/; a sweep: OUT/<profile>/sweep-<UTC timestamp>/step-NN-<rate>/).
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub out: PathBuf,
    /// Extra header on the WebSocket upgrade (repeatable). Never put secrets here: use
    /// --token-env.
    #[arg(long = "header", value_name = "K:V")]
    pub headers: Vec<String>,
    /// Environment variable holding a bearer token (default: the profile's
    /// target.token_env); sent as Authorization: Bearer, never written anywhere.
    #[arg(long, value_name = "VAR")]
    pub token_env: Option<String>,
    /// Stop the run (status aborted, exit 1) once more than N messages have failed, all
    /// shards together: a blunt guard beside the profile's `abort = true` thresholds.
    #[arg(long, value_name = "N")]
    pub max_errors: Option<u64>,
    /// Do not draw the live progress line.
    #[arg(long)]
    pub no_progress: bool,
}

impl Load {
    /// The run options of `profile` (read from `path`) with these flags; the rest off.
    pub(crate) fn options(&self, profile: Profile, path: &Path) -> Result<RunOptions, Failure> {
        let target = target_of(self.target.as_deref(), &profile, path)?;
        let headers = self
            .headers
            .iter()
            .map(|h| parse_header(h))
            .collect::<Result<_, _>>()?;
        let bind = match &self.bind {
            Some(b) => surge_loadgen::bind::parse_bind(b).map_err(Failure::Usage)?,
            None => Vec::new(),
        };
        let exe = std::env::current_exe()
            .map_err(|e| Failure::could_not_run(format!("cannot find this program: {e}")))?;
        Ok(RunOptions {
            profile,
            target,
            headers,
            token_env: self.token_env.clone(),
            shards: self.shards,
            bind,
            out: self.out.clone(),
            dir: None,
            metrics_addr: None,
            pushgateway: None,
            progress: !self.no_progress && std::io::stderr().is_terminal(),
            shard: None,
            start_at: None,
            worker_command: worker_command(&exe),
            scrape: Vec::new(),
            max_errors: self.max_errors,
            rendezvous: None,
        })
    }
}

/// `--target`, else the profile's `target.url`.
pub(crate) fn target_of(
    flag: Option<&str>,
    profile: &Profile,
    path: &Path,
) -> Result<String, Failure> {
    flag.map(str::to_owned)
        .or_else(|| profile.target.url.clone())
        .ok_or_else(|| {
            Failure::Usage(format!(
                "no target: give --target ws://HOST:PORT/PATH or set target.url in {}",
                path.display()
            ))
        })
}

pub(crate) fn failure(e: RunError) -> Failure {
    match e {
        RunError::Usage(m) => Failure::Usage(m),
        RunError::CouldNotRun(m) => Failure::CouldNotRun(m),
    }
}

pub(crate) fn parse_header(h: &str) -> Result<(String, String), Failure> {
    h.split_once(':')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| Failure::Usage(format!("--header \"{h}\": expected NAME:VALUE")))
}

pub async fn run(args: &Args) -> Result<Outcome, Failure> {
    if args.worker {
        return worker().await;
    }
    if !args.merge.is_empty() {
        let shards = crate::s3::fetch(&args.merge).await?;
        let (dir, summary, status) = surge_loadgen::merge::merge(&shards.sources(), &args.load.out)
            .map_err(|e| {
                failure(match e {
                    RunError::Usage(m) => RunError::Usage(shards.unmask(&m)),
                    RunError::CouldNotRun(m) => RunError::CouldNotRun(shards.unmask(&m)),
                })
            })?;
        // The shards' downloads are merged: gone before the upload listens for Ctrl-C.
        drop(shards);
        let mut interrupt = Interrupt::listen();
        println!("{}", surge_loadgen::summary::render(&summary));
        println!("run directory: {}", dir.display());
        let verdict = verdict(status, summary.passed(), &dir);
        let to = args.upload.as_ref();
        return crate::s3::upload_after(&dir, to, verdict, &mut interrupt).await;
    }
    let path = args.profile.as_ref().expect("clap requires PROFILE");
    let profile = Profile::load(path)?;
    let shard = match &args.shard {
        Some(s) => Some(s.parse::<ShardId>().map_err(Failure::Usage)?),
        None => None,
    };
    let start_at = args
        .start_at
        .as_deref()
        .map(|s| surge_loadgen::wire::parse_start_at(s).map_err(Failure::Usage))
        .transpose()?;
    let rendezvous = match &args.rendezvous {
        Some(address) => Some(Rendezvous {
            address: address.clone(),
            join_timeout: args.join_timeout.to_std(),
            min_shards: args.min_shards,
            key: surge_loadgen::rendezvous::Key::from_env().map_err(failure)?,
        }),
        None => None,
    };
    let opts = RunOptions {
        metrics_addr: args.metrics_addr,
        pushgateway: args.pushgateway.clone(),
        shard,
        start_at,
        scrape: args.scrape.clone(),
        rendezvous,
        ..args.load.options(profile, path)?
    };
    // One listener from the run through its upload: a Ctrl-C between the two is not lost.
    let mut interrupt = Interrupt::listen();
    let outcome = surge_loadgen::run(opts, interrupt.recv())
        .await
        .map_err(failure)?;
    println!("{}", outcome.report);
    println!("run directory: {}", outcome.dir.display());
    if let Some(own) = &outcome.shard_dir {
        println!("this shard's own directory: {}", own.display());
    }
    for p in &outcome.problems {
        eprintln!("warning: {p}");
    }
    if let Some(b) = &outcome.breach {
        eprintln!(
            "ABORTED at {:.0} s: {} (measured {}); the run directory holds everything up to the stop",
            b.at_s, b.guard, b.measured
        );
    }
    let verdict = if outcome.verdict_elsewhere {
        // The run's verdict is shard 0's: this shard only says whether it did its part.
        match outcome.status {
            RunStatus::Failed => verdict(outcome.status, false, &outcome.dir),
            _ => Ok(Outcome::Success),
        }
    } else {
        verdict(outcome.status, outcome.summary.passed(), &outcome.dir)
    };
    let Some(to) = &args.upload else {
        return verdict;
    };
    // A rendezvous run shares one prefix: the merged directory at PREFIX/, each shard's own
    // at PREFIX/shard-NNN/.
    let name = |dir: &Path| dir.file_name().map(|n| n.to_string_lossy().into_owned());
    if let Some(own) = &outcome.shard_dir {
        let beside = to.join(&name(own).unwrap_or_default());
        let done = Ok(Outcome::Success);
        match crate::s3::upload_after(own, Some(&beside), done, &mut interrupt).await {
            Ok(Outcome::Interrupted) => return verdict.and(Ok(Outcome::Interrupted)),
            // The merged directory is what the run is read from; this one only lets it be
            // merged again.
            Err(e) => eprintln!("warning: {}", e.message()),
            Ok(_) => {}
        }
    }
    let to = if outcome.verdict_elsewhere {
        to.join(&name(&outcome.dir).unwrap_or_default())
    } else {
        to.clone()
    };
    crate::s3::upload_after(&outcome.dir, Some(&to), verdict, &mut interrupt).await
}

/// How a sharded run starts a worker process: this program as `surge run --worker`.
pub(crate) fn worker_command(exe: &std::path::Path) -> Vec<OsString> {
    vec![
        exe.as_os_str().to_owned(),
        OsString::from("run"),
        OsString::from("--worker"),
    ]
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM (what Kubernetes sends a pod that must stop).
pub(crate) async fn interrupted() {
    Interrupt::listen().recv().await;
}

/// Ctrl-C (SIGINT) and SIGTERM, listened for from the moment this is made: one that comes
/// before [`recv`](Self::recv) is awaited is neither missed nor left to end the process.
pub(crate) struct Interrupt {
    interrupt: Option<tokio::signal::unix::Signal>,
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Interrupt {
    pub(crate) fn listen() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        Self {
            interrupt: signal(SignalKind::interrupt()).ok(),
            terminate: signal(SignalKind::terminate()).ok(),
        }
    }

    /// The next of either (never, if neither could be listened for).
    pub(crate) async fn recv(&mut self) {
        tokio::select! {
            Some(_) = async { self.interrupt.as_mut()?.recv().await } => {}
            Some(_) = async { self.terminate.as_mut()?.recv().await } => {}
            else => std::future::pending::<()>().await,
        }
    }
}

/// The exit of a run: 130 after Ctrl-C, 3 when shards failed or were lost, 1 when a guard stopped it,
/// else by the thresholds.
fn verdict(status: RunStatus, passed: bool, dir: &std::path::Path) -> Result<Outcome, Failure> {
    match status {
        RunStatus::Interrupted => Ok(Outcome::Interrupted),
        RunStatus::Aborted => Ok(Outcome::Failed),
        RunStatus::Failed => Err(Failure::could_not_run(format!(
            "the run did not complete (see warnings); what was measured is in {} (status failed)",
            dir.display()
        ))),
        RunStatus::Degraded => Err(Failure::could_not_run(format!(
            "shards were lost mid-run or left out of a merge (see warnings and lost_shards in \
             summary.json); {} holds the rest (status degraded)",
            dir.display()
        ))),
        _ if passed => Ok(Outcome::Success),
        _ => Ok(Outcome::Failed),
    }
}

/// A worker process: brief from stdin, its own single-threaded runtime (one core, so a
/// busy worker shows as a busy core), reports on stdout, SIGINT to stop.
async fn worker() -> Result<Outcome, Failure> {
    let mut brief = String::new();
    std::io::stdin()
        .read_to_string(&mut brief)
        .map_err(|e| Failure::could_not_run(format!("worker: reading the brief: {e}")))?;
    let spec: WorkerSpec = serde_json::from_str(&brief)
        .map_err(|e| Failure::could_not_run(format!("worker: bad brief: {e}")))?;
    tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure::could_not_run(format!("worker runtime: {e}")))?;
        rt.block_on(async move {
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                interrupted().await;
                let _ = stop_tx.send(true);
            });
            surge_loadgen::worker(spec, stop_rx).await.map_err(failure)
        })
    })
    .await
    .map_err(|e| Failure::could_not_run(format!("worker: {e}")))??;
    Ok(Outcome::Success)
}
