//! Command-line wiring for surge: argument definitions, one module per command, and the
//! mapping from outcomes to the exit codes a CI job can trust (see [`Outcome`]).
//!
//! The doc comments of the argument types are clap's `--help`, written for a terminal:
//! `[goodput]` there is a profile's TOML table and `<profile>` a placeholder, not a rustdoc
//! link or an HTML tag, so rustdoc's checks of either are off in this crate.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

mod commands;
mod exit;
mod format;
mod s3;

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
    Check(commands::check::Args),

    /// Local mock-mode benchmark in one command: mock, load, report, prediction.
    ///
    /// Starts `surge mock` on a free loopback port (as many processes as the sessions
    /// need), runs the profile against it as `surge run` would, stops the mock, writes the
    /// measured run directory and its HTML report, then simulates the same profile and
    /// prints predicted against measured. Exits 1 when the measured run fails a threshold.
    ///
    /// Example: surge bench            (the built-in local profile, about two minutes)
    Bench(commands::bench::Args),

    /// Predict a profile with the discrete-event simulation.
    ///
    /// Runs the profile's traffic through the model of the whole architecture (gateway
    /// limits, orchestrator queue and autoscaling, Lambda burst workers, DynamoDB capacity,
    /// caches, RAG, Bedrock quotas and provisioned throughput, token streaming) and prints
    /// the latency table (e2e and TTFT, overall and per stage), throttles per layer, peak
    /// capacity used and where the time went. Writes a run directory of kind "simulated"
    /// (hlog, timeline.csv, summary.json, run.json) under --out. Exits 1 when a threshold
    /// of the profile fails.
    ///
    /// With --replications N, runs N seeds in parallel and adds the mean and 95%
    /// confidence interval (Student t) of every headline figure.
    ///
    /// Example: surge simulate profiles/one-piece-spike.toml --replications 4
    Simulate(commands::simulate::Args),

    /// Cost table from first principles: per component, per conversation, per store.
    ///
    /// Derives one day of the profile's [cost] scenario the way the seed's Q35 reasons
    /// (conversations × turns × LLM share × tokens × prices from the system model), prices
    /// every component (Bedrock per model, Fargate, DynamoDB, OpenSearch, ElastiCache, API
    /// Gateway, Lambda, fixed lines), then stacks the optimizations — model tiering,
    /// semantic caching, response length limits, provisioned discount — showing each
    /// saving. Ends with cost per conversation against a human agent, the monthly
    /// chargeback per store, and where the seed's own arithmetic differs.
    ///
    /// Example: surge cost profiles/cost-100k.toml
    Cost(commands::cost::Args),

    /// Find the cheapest system settings that meet latency SLOs, by simulation.
    ///
    /// Varies keys of the system model — ranges such as orchestrator.min_tasks=10..60 or
    /// bedrock.models.sonnet.provisioned_units=0..40 (bisected, taken as monotone), choices
    /// such as cache.prewarm=on|off (all tried) — runs the whole profile with replications
    /// for each candidate, and keeps the cheapest whose 95% confidence bound meets every
    /// SLO. Prints the cost/latency frontier it explored and the winner with its margins.
    /// Exits 1 when no setting explored meets the SLOs.
    ///
    /// Example: surge plan profiles/one-piece-spike.toml --slo 'ttft.p99<=2s,errors.rate<=0.1%'
    ///   --vary orchestrator.min_tasks=10..60 --vary cache.prewarm=on|off
    Plan(commands::plan::Args),

    /// Fit the system model to measured runs, so that it predicts the next load level.
    ///
    /// Replays each measured run's own traffic (from its run.json) on the profile's system
    /// model and moves the keys named by --fit until the replays reproduce what the runs
    /// measured: e2e, TTFT and inter-token latency percentiles (p50/p90/p99) overall, per
    /// store and per model, the error ratio, and — when the run scraped the server
    /// (`surge run --scrape`) — busy orchestrator workers and the task count. Latency
    /// distributions are fitted as distributions (size and spread). Keys the runs cannot
    /// identify are named with the reason and kept as written; keys whose effects cannot
    /// be told apart are fitted as one. Give runs at two or more load levels: a worker
    /// pool's size only shows where messages queue. Writes the fitted system model with
    /// --out (TOML, each fitted key commented) and prints the fit, worst scope first.
    /// Deterministic for a given --seed. Exits 2 for a run directory that is not a measured
    /// run, or a key that is unknown or not a latency, rate or number.
    ///
    /// Example: surge calibrate results/local/run-30 results/local/run-60
    ///   --profile profiles/local.toml --out fitted.toml
    Calibrate(commands::calibrate::Args),

    /// Report on one or more run directories: percentiles, stages, stores, models, charts.
    ///
    /// Merges every shard log of every directory given (histograms are added, never
    /// percentiles averaged), over the whole run, a window (--from/--to, seconds since the
    /// start) or per stage, store and model (--by). Prints count, rate and p50/p90/p99/
    /// p99.9/max of e2e, TTFT, ITL, service and connect time; traffic and errors by class;
    /// generator health (scheduling lag); the profile's thresholds re-evaluated on exactly
    /// this data; and for simulated runs the infrastructure peaks and the cost table.
    /// --format html writes one self-contained page with SVG charts; junit has one test
    /// case per threshold; --hgrm DIR adds HdrHistogram percentile-distribution files.
    /// Exits 1 when a threshold fails. A RUN_DIR may be s3://BUCKET/PREFIX, where
    /// `surge run --upload` put one.
    ///
    /// Example: surge report results/local/2026-11-28T13-05-00Z --format html --out r.html
    Report(commands::report::Args),

    /// Compare two runs side by side; exit 1 on regression beyond the limits.
    ///
    /// Shows every figure of BASE and CANDIDATE with absolute and relative differences;
    /// when one run is simulated and the other measured, also the simulator's prediction
    /// error per figure. --max-regression names figures as profile thresholds do
    /// (e2e.p99, ttft:manga_jp.p99, errors.rate) with a relative (+10%), absolute latency
    /// (+50ms) or percentage-point (+0.05pp) allowance; a figure that is unknown or that
    /// either run lacks is an error (exit 2), never a silent pass.
    ///
    /// Example: surge compare results/baselines/nightly results/nightly-staging/LATEST
    /// --max-regression 'e2e.p99=+10%,ttft.p99=+50ms,errors.rate=+0.05pp'
    Compare(commands::compare::Args),

    /// Measure: real WebSocket load on a target, written to a run directory.
    ///
    /// Opens the profile's sessions against --target (ws:// or wss://; loopback or a host
    /// in the profile's target.allowed), ramping connections no faster than
    /// traffic.connect_rate and following the stages. Messages are due on an open-model
    /// schedule (Poisson or constant), whatever the server does; latency is measured from
    /// when each message was due (e2e, ttft: coordinated omission corrected, as wrk2) and
    /// from when it was actually sent (service), plus itl, connect time and the
    /// generator's own scheduling lag. Errors are counted by class (refused, timeout, tls,
    /// upgrade_rejected, throttled, server_error, protocol_violation, reply_timeout,
    /// closed_mid_answer, dropped) with samples kept. Writes a run directory of kind
    /// "measured" under --out; exits 1 when a threshold fails, 130 after Ctrl-C (the run
    /// directory is then complete up to the interrupt and marked "interrupted").
    ///
    /// A process may hold only so many sockets: --shards N spreads the sessions over N
    /// worker processes and merges them; --bind spreads source addresses; --shard I/N with
    /// --start-at runs one shard of a multi-machine run. Credentials come only from the
    /// environment (--token-env) and are never written.
    ///
    /// Example: surge run profiles/local.toml --target ws://127.0.0.1:8080/chat
    Run(commands::run::Args),

    /// Warm the target's caches before a spike: the profile's [prewarm] HTTP calls.
    ///
    /// Makes the calls of the profile's [prewarm] table in order — the seed's
    /// pre_warm_for_release(asin, release_datetime) of Q19, one hour before a release —
    /// against the target's host (http for ws://, https for wss://; a call may name its
    /// own URL on an allowed host), with the target's headers and bearer token
    /// (--token-env, never printed). Refuses hosts the profile's target.allowed does not
    /// match (loopback is always allowed), prints each call's status and time, and exits 3
    /// when any call fails or answers another status than expected. --dry-run checks the
    /// target and token and prints the calls without making them. `surge mock` answers
    /// POST /admin/prewarm {"asin": …, "ttl": "2h"} by switching its product cache to the
    /// system model's cache.prewarmed_hit_ratio.
    ///
    /// Example: surge prewarm profiles/one-piece-spike.toml --target ws://127.0.0.1:8787/chat
    Prewarm(commands::prewarm::Args),

    /// Find the highest rate the target sustains: stepped live load up to the knee.
    ///
    /// Runs the profile against --target once per step of --rates (LO..HI[:STEP], messages
    /// per minute or 10/s..50/s:10/s), each step one stage held at its rate for --hold
    /// (sessions scaled with the rate, or --sessions N fixed), and judges each against the
    /// profile's thresholds (goodput.ratio among them with a [goodput] table). Stops at the
    /// first step that fails or is aborted by a guard, or at which the load generator itself
    /// was the bottleneck; prints the step table (rate, goodput, p50/p99 e2e and TTFT,
    /// errors, generator lag) and names the maximum sustainable rate. Writes one run
    /// directory per step under OUT/<profile>/sweep-<UTC timestamp>/, with sweep.json (the
    /// steps and max_sustainable_rate_per_min) and sweep.html (the table and the latency
    /// and throughput curves against rate), rewritten after every step. Before any load,
    /// every step is simulated on the profile's system model and the simulator's verdict is
    /// printed, then shown beside each measured step (--no-predict skips it).
    ///
    /// Safety: --max-rate (required against a target that is not loopback) and
    /// --max-duration refuse sweeps past them; against a target that is not loopback the
    /// Bedrock spend of the whole sweep is estimated from the system model's prices and
    /// printed first, and the sweep asks to go on (--yes when stdin is not a terminal).
    ///
    /// Exits 0 when every step passed, 1 when the sweep stopped at a failing step or a
    /// saturated generator (the answer is still printed), 130 after Ctrl-C (the current
    /// step is marked interrupted and sweep.json holds every step so far).
    ///
    /// Example: surge sweep profiles/local.toml --target ws://127.0.0.1:8787/chat
    ///   --rates 600..3000:600 --hold 60s
    Sweep(commands::sweep::Args),

    /// Serve the mock chatbot, Bedrock Runtime and DynamoDB on one loopback port.
    ///
    /// What `surge run` and `surge bench` measure when there is no staging: the seed's
    /// chatbot on a WebSocket at /chat (intent classifier learned from the intents' texts,
    /// DynamoDB memory, caches and semantic cache, RAG, model tiering, streamed tokens at
    /// the model's TTFT and output rate, guardrails, a done frame with usage and cost),
    /// with every delay a real sleep drawn from the profile's system model. The same port
    /// serves the Bedrock Runtime API (POST /model/{id}/converse, converse-stream, invoke,
    /// invoke-with-response-stream; event-stream framing; model quotas →
    /// ThrottlingException) and the DynamoDB API (POST / with X-Amz-Target; tables in
    /// memory; on-demand capacity → ProvisionedThroughputExceededException), so AWS SDKs
    /// work with AWS_ENDPOINT_URL=http://ADDR and any credentials. GET /metrics is
    /// Prometheus text, GET /healthz is a liveness check, POST /admin/prewarm
    /// {"asin": …, "ttl": "2h"} pre-warms the product cache (see `surge prewarm`).
    ///
    /// The chat sits behind API Gateway's rules, from the system model's [gateway] and
    /// written once in surge-model, which the simulator runs too: upgrades beyond
    /// connect_rate are refused with 429; a connection is closed with 1001 "Going away"
    /// at max_connection (2h), even in the middle of an answer, and after idle_timeout
    /// (10m) without a message from the client; the per-user and account rates throttle
    /// messages, answered with surge's error frame or, with --gateway-frames aws, API
    /// Gateway's own. To see the closes in a test, shorten the limits in the profile's
    /// [system] table (gateway.max_connection = "5s", gateway.idle_timeout = "2s").
    /// /metrics counts closes by reason and refused upgrades.
    ///
    /// Prints `listening on ADDR` as its first line. --workers N serves one port from N
    /// processes for more sessions than one process may hold files; --fault-* flags
    /// inject errors, latency spikes, stalls, dropped sockets and refused upgrades.
    ///
    /// Example: surge mock --profile profiles/local.toml --listen 127.0.0.1:0 --workers 2
    Mock(commands::mock::Args),
}

/// Runs one command.
pub async fn run(cli: Cli) -> Result<Outcome, Failure> {
    match cli.command {
        Command::Check(args) => commands::check::run(&args),
        Command::Bench(args) => commands::bench::run(&args).await,
        Command::Simulate(args) => commands::simulate::run(&args),
        Command::Cost(args) => commands::cost::run(&args),
        Command::Plan(args) => commands::plan::run(&args),
        Command::Calibrate(args) => commands::calibrate::run(&args),
        Command::Report(args) => commands::report::run(&args).await,
        Command::Compare(args) => commands::compare::run(&args).await,
        Command::Run(args) => commands::run::run(&args).await,
        Command::Prewarm(args) => commands::prewarm::run(&args).await,
        Command::Mock(args) => commands::mock::run(&args).await,
        Command::Sweep(args) => commands::sweep::run(&args).await,
    }
}
