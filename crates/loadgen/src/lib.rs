//! surge's load generator: tens of thousands of WebSocket chat sessions following a
//! profile's stages, measured the way wrk2 measures — from when each message was *due*.
//!
//! How a run is put together, one module per job:
//!
//! | module | job |
//! |---|---|
//! | [`plan`] | when each session is open and when its messages are due (open model) |
//! | [`session`] | one session: connect, send on schedule, time the answer, reconnect |
//! | [`connect`] | TCP from a chosen source address, TLS, upgrade; connect pacing; backoff |
//! | [`auth`] | each upgrade's credentials: bearer header, query token, SigV4 (IAM) |
//! | [`bind`] | `--bind` source-address lists |
//! | [`correlate`] | which message a frame answers |
//! | [`frames`] | what a frame or a server's close means: answer, unsolicited, error |
//! | [`recording`] | histograms per tag, counters, error samples of one process |
//! | [`errors`] | the error classes |
//! | [`shard`] | a share of the sessions, the lag probe, the one-second interval clock |
//! | [`wire`] | what shards tell the coordinator (JSON lines) |
//! | [`workers`] | shards as child processes of this binary |
//! | [`coordinator`] | merges shards into one run directory |
//! | [`rendezvous`] | many machines, one run: start barrier, live merge on shard 0, lost shards |
//! | [`merge`] | merges the directories of a multi-machine run |
//! | [`summary`] | `summary.json`, thresholds, the printed report |
//! | [`guard`] | stops a run whose merged figures break an `abort = true` threshold |
//! | [`exporter`] | Prometheus `/metrics` and the Pushgateway push |
//! | [`progress`] | the live line |
//! | [`limits`], [`health`] | open-file limits; the generator's own CPU and lag |
//! | [`testkit`] | a scripted chat server for tests |
//!
//! Entry points: [`run`] (a whole run, in process or with worker processes) and
//! [`worker`] (the body of one worker process).

pub mod auth;
pub mod bind;
pub mod catchup;
pub mod connect;
pub mod coordinator;
pub mod correlate;
pub mod errors;
pub mod exporter;
pub mod feed;
pub mod fence;
pub mod frames;
pub mod guard;
pub mod health;
pub mod limits;
pub mod merge;
pub mod plan;
pub mod progress;
pub mod recording;
pub mod rendezvous;
pub mod scrape;
pub mod session;
pub mod shard;
pub mod summary;
pub mod testkit;
pub mod wire;
pub mod workers;

use std::ffi::OsString;
use std::future::Future;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use surge_profile::Profile;
use surge_profile::target::parse_ws_url;
pub use surge_record::RunStatus;
use surge_record::{RunDir, Summary};
use tokio::sync::{mpsc, watch};

use crate::coordinator::Aggregator;
use crate::exporter::Exporter;
use crate::progress::Progress;
use crate::scrape::Scraper;
use crate::shard::ShardSpec;
use crate::wire::{ShardId, ShardMessage, WorkerSpec};
use crate::workers::{ShardEvent, Workers};

/// How long the coordinator waits for shards after Ctrl-C before giving up on them.
pub(crate) const INTERRUPT_GRACE: Duration = Duration::from_secs(10);

/// What `surge run` asks for.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub profile: Profile,
    /// `ws://` or `wss://` URL (may carry credentials; it is only ever written redacted).
    pub target: String,
    /// Extra upgrade headers, on top of the profile's `target.headers`.
    pub headers: Vec<(String, String)>,
    /// Environment variable with the bearer token (else the profile's `target.token_env`).
    pub token_env: Option<String>,
    /// Worker processes (1: everything in this process).
    pub shards: u32,
    pub bind: Vec<IpAddr>,
    /// Results root: run directories go to `OUT/<profile>/<UTC timestamp>/`.
    pub out: PathBuf,
    /// Write the run directory exactly here instead (one step of a sweep); it must not exist.
    pub dir: Option<PathBuf>,
    pub metrics_addr: Option<SocketAddr>,
    pub pushgateway: Option<String>,
    /// Show the live progress line.
    pub progress: bool,
    /// Run only this shard of a multi-machine run (writes OUT/shard-NNN/).
    pub shard: Option<ShardId>,
    /// Time zero (for shards on several machines to start together).
    pub start_at: Option<SystemTime>,
    /// How to start a worker process: program and arguments (`surge run --worker`).
    pub worker_command: Vec<OsString>,
    /// Prometheus text endpoints sampled once per interval into `timeline.csv`.
    pub scrape: Vec<String>,
    /// Stop the run once it has seen more errors than this (all shards together).
    pub max_errors: Option<u64>,
    /// With `shard`: meet the other machines' shards at shard 0 and run as one.
    pub rendezvous: Option<rendezvous::Options>,
}

/// Why a run did not happen (or could not be completed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// Bad usage: target not allowed, missing token, too many sessions per process, …
    #[error("{0}")]
    Usage(String),
    /// The run could not be carried out.
    #[error("{0}")]
    CouldNotRun(String),
}

/// How a run came out.
#[derive(Debug)]
pub struct RunOutcome {
    pub dir: PathBuf,
    pub summary: Summary,
    pub status: RunStatus,
    /// The guard that stopped the run (status `aborted`).
    pub breach: Option<surge_record::Breach>,
    /// The printed report.
    pub report: String,
    /// Shards that died, a failed push, …
    pub problems: Vec<String>,
    /// Where `/metrics` was served.
    pub metrics_addr: Option<SocketAddr>,
    /// A rendezvous run's own shard directory (the coordinator's outcome is the merged run).
    pub shard_dir: Option<PathBuf>,
    /// A shard of a rendezvous run other than shard 0: the run's verdict is the
    /// coordinator's, this outcome only says whether the shard did its part.
    pub verdict_elsewhere: bool,
}

/// The credentials and headers of a run, checked.
struct Access {
    headers: Vec<(String, String)>,
    token_env: Option<String>,
    token: Option<String>,
}

fn check_access(opts: &RunOptions) -> Result<Access, RunError> {
    let profile = &opts.profile;
    let (_, host) =
        parse_ws_url(&opts.target).map_err(|e| RunError::Usage(format!("--target: {e}")))?;
    if !profile.target.allows(host) {
        return Err(RunError::Usage(format!(
            "refusing to send load to \"{host}\": it is not loopback and matches no pattern in \
             target.allowed of {} (add it there if this target is meant to take load)",
            profile.files.profile.display()
        )));
    }
    let token_env = profile
        .target
        .token_var(opts.token_env.as_deref())
        .map(str::to_owned);
    let token = profile
        .target
        .token(opts.token_env.as_deref())
        .map_err(|e| RunError::Usage(e.to_string()))?;
    let headers = profile.target.headers_with(opts.headers.iter().cloned());
    Ok(Access {
        headers,
        token_env,
        token,
    })
}

/// Scrape endpoints are `http(s)://` URLs on hosts the profile may reach.
fn check_scrape_urls(profile: &Profile, urls: &[String]) -> Result<(), RunError> {
    for url in urls {
        let shown = surge_record::redact_url(url);
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| RunError::Usage(format!("--scrape {shown}: not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(RunError::Usage(format!(
                "--scrape {shown}: expected an http:// or https:// URL of a Prometheus endpoint"
            )));
        }
        let host = parsed.host_str().unwrap_or_default();
        if !profile
            .target
            .allows(host.trim_start_matches('[').trim_end_matches(']'))
        {
            return Err(RunError::Usage(format!(
                "--scrape {shown}: \"{host}\" is not loopback and matches no pattern in \
                 target.allowed of {}",
                profile.files.profile.display()
            )));
        }
    }
    Ok(())
}

/// Checks the run fits this machine's open files and ports, and spreads the sessions over
/// loopback source addresses when the target is loopback and `--bind` was not given.
fn check_capacity(opts: &mut RunOptions) -> Result<(), RunError> {
    let peak = plan::Plan::new(&opts.profile).peak_sessions();
    let processes = match opts.shard {
        Some(s) => s.count,
        None => opts.shards,
    };
    let limit = limits::raise_open_files()
        .map_err(|e| RunError::CouldNotRun(format!("cannot read the open-file limit: {e}")))?;
    limits::check_fits(peak, processes, limit).map_err(RunError::Usage)?;
    let here = match opts.shard {
        Some(s) => peak.div_ceil(u64::from(s.count)),
        None => peak,
    };
    if opts.bind.is_empty() {
        let target = parse_ws_url(&opts.target)
            .ok()
            .and_then(|(_, host)| host.trim_matches(['[', ']']).parse::<IpAddr>().ok());
        if let Some(ip) = target {
            opts.bind = bind::loopback_spread(ip, here);
        }
        if let (Some(first), Some(last)) = (opts.bind.first(), opts.bind.last()) {
            eprintln!("{here} sessions leave from {first}-{last} (--bind to choose)");
        }
    }
    if let Some(warning) = bind::crowding(here, opts.bind.len()) {
        eprintln!("{warning}");
    }
    let sources = opts.bind.len().max(1) as u64;
    if here > bind::PORTS_PER_ADDRESS * sources {
        return Err(RunError::Usage(format!(
            "{here} sessions toward one destination need more than the ~{} ephemeral ports of \
             {sources} source address(es); spread them with --bind 127.0.0.1-127.0.0.{}",
            bind::PORTS_PER_ADDRESS,
            here.div_ceil(bind::PORTS_PER_ADDRESS)
        )));
    }
    Ok(())
}

/// Where a run stands with the other machines of a rendezvous run.
enum Meeting {
    Alone,
    /// Shard 0: merges every shard live.
    Coordinator(Box<rendezvous::Gathered>),
    /// Another shard: reports to shard 0.
    Shard(Box<rendezvous::Joined>),
}

impl Meeting {
    fn start_at(&self) -> Option<SystemTime> {
        match self {
            Meeting::Alone => None,
            Meeting::Coordinator(g) => Some(g.start_at),
            Meeting::Shard(j) => Some(j.start_at),
        }
    }
}

/// The start barrier of a rendezvous run (nothing without `--rendezvous`).
async fn meet(opts: &RunOptions) -> Result<Meeting, RunError> {
    let (Some(r), Some(me)) = (&opts.rendezvous, opts.shard) else {
        return Ok(Meeting::Alone);
    };
    let fp = rendezvous::fingerprint(&coordinator::resolved_profile(&opts.profile), me.count);
    let note = |line: &str| eprintln!("{line}");
    Ok(if me.index == 0 {
        Meeting::Coordinator(Box::new(rendezvous::gather(r, me, &fp, &note).await?))
    } else {
        Meeting::Shard(Box::new(rendezvous::join(r, me, &fp, &note).await?))
    })
}

/// Runs a whole measured run and writes its run directory. `interrupt` resolves on Ctrl-C:
/// the shards then close their interval and the run is marked `interrupted`.
///
/// With `rendezvous` this process is one shard of a multi-machine run: shard 0 also merges
/// every shard into the one run directory and returns that; the others return their own.
pub async fn run(
    opts: RunOptions,
    interrupt: impl Future<Output = ()>,
) -> Result<RunOutcome, RunError> {
    if opts.shards == 0 {
        return Err(RunError::Usage("--shards must be at least 1".into()));
    }
    if let Some(r) = &opts.rendezvous {
        if opts.shard.is_none() {
            return Err(RunError::Usage(
                "--rendezvous needs --shard I/N: which shard of the run this machine is".into(),
            ));
        }
        rendezvous::check_address(&r.address)?;
    }
    let access = check_access(&opts)?;
    // Query tokens are read and AWS credentials found now, so a run that cannot get in
    // stops before it starts (each shard opens its own door again).
    auth::Door::open(&opts.profile, &opts.target, access.token.as_deref())
        .await
        .map_err(RunError::Usage)?;
    let mut opts = opts;
    check_capacity(&mut opts)?;
    let scraper = match opts.scrape.as_slice() {
        [] => None,
        urls => {
            check_scrape_urls(&opts.profile, urls)?;
            Some(Arc::new(Scraper::discover(urls).await?))
        }
    };
    let mut interrupt = std::pin::pin!(interrupt);
    let meeting = tokio::select! {
        m = meet(&opts) => m?,
        _ = &mut interrupt => {
            return Err(RunError::CouldNotRun("interrupted at the rendezvous, before the start".into()));
        }
    };
    let profile = &opts.profile;
    let in_process = opts.shards == 1 || opts.shard.is_some();
    let lead = if in_process {
        Duration::from_millis(200)
    } else {
        Duration::from_millis(1500)
    };
    let start = meeting
        .start_at()
        .or(opts.start_at)
        .unwrap_or_else(|| SystemTime::now() + lead);
    let shard_ids: Vec<ShardId> = match opts.shard {
        Some(s) => vec![s],
        None => (0..opts.shards)
            .map(|index| ShardId {
                index,
                count: opts.shards,
            })
            .collect(),
    };
    let count = shard_ids[0].count;
    let dir = match (&opts.dir, opts.shard) {
        (Some(exact), _) => RunDir::create_at(exact),
        (None, Some(s)) => RunDir::create_at(&opts.out.join(format!("shard-{:03}", s.index))),
        (None, None) => RunDir::create(&opts.out, &profile.name, start),
    }
    .map_err(|e| RunError::CouldNotRun(e.to_string()))?;
    let mut info = coordinator::run_info(profile, &opts.target, start, count);
    dir.write_run_info(&info)
        .map_err(|e| RunError::CouldNotRun(e.to_string()))?;

    let exporter = (opts.metrics_addr.is_some() || opts.pushgateway.is_some())
        .then(|| Arc::new(Exporter::new()));
    let mut serving = None;
    if let (Some(addr), Some(ex)) = (opts.metrics_addr, &exporter) {
        let (bound, task) = ex
            .clone()
            .serve(addr)
            .await
            .map_err(|e| RunError::CouldNotRun(format!("--metrics-addr {addr}: {e}")))?;
        serving = Some((bound, task));
    }
    let progress = Progress::new(profile.duration.to_std(), opts.progress);
    let guard = guard::Guard::new(&profile.thresholds, opts.max_errors);
    let indices: Vec<u32> = shard_ids.iter().map(|s| s.index).collect();
    // In a rendezvous run, shard 0's hub serves the merged view and judges the guards on
    // all shards; each shard's own directory is just its record.
    let (hub, link, mut agg) = match meeting {
        Meeting::Alone => {
            let agg = Aggregator::new(
                dir.clone(),
                &indices,
                start,
                exporter.clone(),
                progress,
                scraper.clone(),
                guard,
            )?;
            (None, None, agg)
        }
        Meeting::Coordinator(gathered) => {
            let merged_dir = RunDir::create(&opts.out, &profile.name, start)
                .map_err(|e| RunError::CouldNotRun(e.to_string()))?;
            let mut merged_info = coordinator::run_info(profile, &opts.target, start, count);
            merged_info.rendezvous = Some(gathered.info.clone());
            merged_dir
                .write_run_info(&merged_info)
                .map_err(|e| RunError::CouldNotRun(e.to_string()))?;
            let all: Vec<u32> = (0..count).collect();
            let merged = Aggregator::new(
                merged_dir,
                &all,
                start,
                exporter.clone(),
                progress,
                scraper.clone(),
                guard,
            )?;
            let hub = rendezvous::hub::Hub::start(*gathered, merged, merged_info, profile.clone());
            let own = own_aggregator(&dir, &indices, start)?;
            (Some(hub), None, own)
        }
        Meeting::Shard(joined) => {
            let own = own_aggregator(&dir, &indices, start)?;
            (None, Some(rendezvous::link::Link::start(*joined)), own)
        }
    };
    let sampling = scraper.clone().map(|s| s.spawn(shard::INTERVAL));

    let (events_tx, mut events) = mpsc::unbounded_channel::<(u32, ShardEvent)>();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut workers = None;
    if in_process {
        let spec = ShardSpec {
            profile: profile.clone(),
            target: opts.target.clone(),
            headers: access.headers.clone(),
            token: access.token.clone(),
            bind: opts.bind.clone(),
            shard: shard_ids[0],
            start_at: start,
        };
        if let Err(e) = spawn_in_process(spec, events_tx, stop_rx) {
            let _ = coordinator::finish_info(&dir, &mut info, RunStatus::Failed);
            return Err(RunError::CouldNotRun(e));
        }
    } else {
        let start_ms = surge_record::UtcTime::from(start).unix_millis();
        let specs = shard_ids
            .iter()
            .map(|&shard| WorkerSpec {
                profile: profile.files.profile.clone(),
                target: opts.target.clone(),
                headers: access.headers.clone(),
                token_env: access.token_env.clone(),
                bind: opts.bind.clone(),
                shard,
                start_at_ms: start_ms,
            })
            .collect();
        let spawned = Workers::spawn(&opts.worker_command, specs, events_tx).await;
        match spawned {
            Ok(w) => workers = Some(w),
            Err(e) => {
                let _ = coordinator::finish_info(&dir, &mut info, RunStatus::Failed);
                return Err(RunError::CouldNotRun(e));
            }
        }
    }

    let mut interrupted = false;
    let mut stopping = false;
    let mut grace = std::pin::pin!(tokio::time::sleep(Duration::MAX / 4));
    // Orders from the other machines: the hub's merged guards, or the coordinator's.
    let mut orders = match (&hub, &link) {
        (Some(h), _) => Some(h.orders()),
        (_, Some(l)) => Some(l.orders()),
        _ => None,
    };
    let mut remote_breach = None;
    let mut coordinator_lost = None;
    // Ctrl-C and a breached guard stop the shards the same way: each closes its sessions and
    // its interval, and the run directory is written from what they sent.
    let stop = |grace: std::pin::Pin<&mut tokio::time::Sleep>| {
        let _ = stop_tx.send(true);
        if let Some(w) = &workers {
            w.interrupt();
        }
        grace.reset(tokio::time::Instant::now() + INTERRUPT_GRACE);
    };
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some((i, ev)) => {
                    match &ev {
                        ShardEvent::Message(m) => {
                            if let Some(h) = &hub { h.report(m); }
                            if let Some(l) = &link { l.report(m); }
                        }
                        ShardEvent::Gone(why) | ShardEvent::Lost(why) => {
                            if let Some(h) = &hub { h.local_gone(why.clone()); }
                        }
                    }
                    agg.on_event(i, ev)?;
                    if agg.all_done() { break; }
                    if !stopping && agg.breach().is_some() {
                        stopping = true;
                        stop(grace.as_mut());
                    }
                }
                None => break,
            },
            changed = async { orders.as_mut().expect("guarded").changed().await }, if orders.is_some() => {
                if changed.is_err() {
                    orders = None;
                    continue;
                }
                let order = orders.as_ref().and_then(|o| o.borrow().clone());
                match order {
                    Some(rendezvous::link::Order::Stop { why, breach }) => {
                        remote_breach = breach;
                        if !stopping {
                            agg.note(&format!("the coordinator stops the run: {why}"));
                        }
                    }
                    Some(rendezvous::link::Order::CoordinatorLost(why)) => {
                        agg.note(&format!("lost the coordinator: {why}; closing the sessions"));
                        coordinator_lost = Some(why);
                    }
                    None => continue,
                }
                orders = None;
                if !stopping {
                    stopping = true;
                    stop(grace.as_mut());
                }
            }
            _ = &mut interrupt, if !interrupted => {
                interrupted = true;
                if let Some(h) = &hub { h.stop("interrupted on the coordinator"); }
                if !stopping {
                    stopping = true;
                    agg.note("interrupted: closing the interval and writing the run directory");
                    stop(grace.as_mut());
                }
            }
            _ = &mut grace => {
                agg.problems.push("shards did not finish within 10 s of the stop".into());
                break;
            }
        }
    }
    drop(workers);
    if let Some(task) = sampling {
        task.abort();
    }
    let breach = agg.breach().cloned().or(remote_breach);
    let finished = agg.finish(profile)?;
    let mut problems = finished.problems;
    if let Some(why) = &coordinator_lost {
        problems.push(format!(
            "lost the coordinator ({why}); this shard's own directory holds what it measured"
        ));
    }
    let status = coordinator::status_of(
        !finished.dead.is_empty() || coordinator_lost.is_some(),
        breach.is_some(),
        false,
        interrupted || finished.interrupted,
    );
    info.breach = breach.clone();
    coordinator::finish_info(&dir, &mut info, status)?;
    if let Some(l) = link {
        l.close().await;
    }
    let verdict_elsewhere = opts.rendezvous.is_some() && hub.is_none();
    // The coordinator's outcome is the merged run; its own shard's directory goes beside.
    let (dir, summary, status, breach, shard_dir) = match hub {
        Some(h) => {
            let merged = h.finish().await?;
            let m = merged.finished;
            problems.extend(m.problems);
            (
                m.dir,
                m.summary,
                merged.status,
                merged.breach,
                Some(finished.dir),
            )
        }
        None => (finished.dir, finished.summary, status, breach, None),
    };
    if let (Some(gw), Some(ex)) = (&opts.pushgateway, &exporter) {
        if let Err(e) = ex.push(gw, &profile.name).await {
            problems.push(e);
        }
    }
    if let Some((_, task)) = &serving {
        task.abort();
    }
    let report = summary::render(&summary);
    Ok(RunOutcome {
        dir,
        summary,
        status,
        breach,
        report,
        problems,
        metrics_addr: serving.map(|(a, _)| a),
        shard_dir,
        verdict_elsewhere,
    })
}

/// A rendezvous shard's own directory: its record only (no live view, no guards: the
/// coordinator judges those on every shard together).
fn own_aggregator(
    dir: &RunDir,
    indices: &[u32],
    start: SystemTime,
) -> Result<Aggregator, RunError> {
    Aggregator::new(
        dir.clone(),
        indices,
        start,
        None,
        Progress::new(Duration::ZERO, false),
        None,
        guard::Guard::new(&[], None),
    )
}

fn spawn_in_process(
    spec: ShardSpec,
    events: mpsc::UnboundedSender<(u32, ShardEvent)>,
    stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let index = spec.shard.index;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let thread = shard::spawn(spec, tx, stop)?;
    tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            let _ = events.send((index, ShardEvent::Message(Box::new(m))));
        }
        // The shard's sender is gone: its thread has ended (or is ending).
        if let Err(why) = shard::join(thread).await {
            let _ = events.send((index, ShardEvent::Gone(why)));
        }
    });
    Ok(())
}

/// The body of a worker process: reads nothing more, runs its shard, writes one JSON line
/// per [`ShardMessage`] to stdout. Stops early when `stop` turns true (SIGINT).
pub async fn worker(spec: WorkerSpec, stop: watch::Receiver<bool>) -> Result<(), RunError> {
    let profile = Profile::load(&spec.profile).map_err(|e| RunError::Usage(e.to_string()))?;
    let token = match &spec.token_env {
        Some(var) => Some(std::env::var(var).map_err(|_| {
            RunError::Usage(format!("the token variable {var} is not set in the worker"))
        })?),
        None => None,
    };
    limits::raise_open_files().map_err(|e| RunError::CouldNotRun(e.to_string()))?;
    let shard_spec = ShardSpec {
        profile,
        target: spec.target,
        headers: spec.headers,
        token,
        bind: spec.bind,
        shard: spec.shard,
        start_at: surge_record::UtcTime::from_unix_millis(spec.start_at_ms).to_system_time(),
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<ShardMessage>();
    let writer = tokio::task::spawn_blocking(move || {
        let stdout = std::io::stdout();
        while let Some(m) = rx.blocking_recv() {
            let mut line = serde_json::to_vec(&m).expect("shard messages serialize");
            line.push(b'\n');
            let mut out = stdout.lock();
            if out.write_all(&line).and_then(|()| out.flush()).is_err() {
                break;
            }
        }
    });
    let shard = shard::spawn(shard_spec, tx, stop).map_err(RunError::CouldNotRun)?;
    let _ = writer.await;
    shard::join(shard).await.map_err(RunError::CouldNotRun)
}
