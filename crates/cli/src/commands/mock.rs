//! `surge mock`: serve the mock chatbot, Bedrock Runtime and DynamoDB on one port.
//!
//! Argument parsing and wiring only; the server is `surge-mock`. With `--workers N` this
//! same binary is started N−1 more times with the hidden `--worker-port` flag, every copy
//! listening on the same port (SO_REUSEPORT); this process supervises them.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use surge_mock::chat::gateway::GatewayFrames;
use surge_mock::faults::{ErrorRate, LatencySpike, Refuse, Stall};
use surge_mock::workers::{LISTENING, Workers, raise_file_limit, reuseport_listener, stdin_closed};
use surge_mock::{Config, Server};
use surge_profile::{ByteSize, Profile};

use crate::{Failure, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The profile whose system model is served (latencies, quotas, intents, stores, and
    /// API Gateway's limits: to close connections sooner in a test, override them in the
    /// profile, e.g. `gateway.max_connection = "5s"` and `gateway.idle_timeout = "2s"`
    /// under `[system]`, where `surge simulate` reads them too).
    #[arg(long, default_value = "profiles/local.toml", value_name = "PROFILE")]
    pub profile: PathBuf,
    /// Address to listen on; port 0 picks a free port. The first line on stdout is
    /// `listening on ADDR`, for a parent process to read.
    #[arg(long, default_value = "127.0.0.1:8787", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Processes serving the port together (SO_REUSEPORT). Use N > 1 for more chat
    /// sessions than one process may hold open files (about 18,000 here). Quotas and
    /// capacity are divided by N per worker; each worker holds its own DynamoDB tables
    /// and caches, so use one worker for SDK tests of the AWS APIs.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub workers: u32,
    /// Batch chat tokens due within this tick into one frame (0 = one frame per token).
    /// With a tick T the gap between token frames, which a client measures as
    /// inter-token latency, is about max(T, 1/output_rate); each frame's `tokens` says
    /// how many it carries.
    #[arg(long, default_value = "0", value_name = "DURATION")]
    pub token_tick: surge_profile::Duration,
    /// Largest request body accepted (DynamoDB, Bedrock).
    #[arg(long, default_value = "16MB", value_name = "SIZE")]
    pub max_body: ByteSize,
    /// Most Bedrock response streams open at once per worker; more are refused with
    /// ServiceUnavailableException (503).
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub max_streams: usize,
    /// Fail this fraction of requests of an API with its internal error: API=FRACTION,
    /// API one of chat, bedrock, dynamodb (e.g. dynamodb=0.01 or bedrock=5%). DynamoDB
    /// answers InternalServerError (500); Bedrock InternalServerException (500) before a
    /// response, or an internalServerException event after the first token of a stream;
    /// chat an error frame with code server_error. Repeatable.
    #[arg(long, value_name = "API=FRACTION")]
    pub fault_error_rate: Vec<ErrorRate>,
    /// Delay this fraction of requests of an API by a fixed extra time before serving
    /// them: API=DURATION@FRACTION (e.g. bedrock=2s@0.05). Repeatable.
    #[arg(long, value_name = "API=DURATION@FRACTION")]
    pub fault_latency: Vec<LatencySpike>,
    /// Stall everything for LENGTH at the start of every PERIOD after the server starts
    /// (e.g. 2s@every=30s: stalls at 30–32 s, 60–62 s, …). New requests wait for the
    /// window's end; open streams (Bedrock events, chat tokens) send nothing until then.
    #[arg(long, value_name = "LENGTH@every=PERIOD")]
    pub fault_stall: Option<Stall>,
    /// Drop the WebSocket of this fraction of chat messages: the TCP connection is closed
    /// at once, without a close frame or an answer.
    #[arg(long, default_value_t = 0.0, value_name = "FRACTION")]
    pub fault_drop_rate: f64,
    /// Refuse WebSocket upgrades with HTTP 429 or 503: STATUS[@FRACTION] (default all).
    #[arg(long, value_name = "STATUS[@FRACTION]")]
    pub fault_refuse: Option<Refuse>,
    /// Switch the faults on only this long after the server starts (e.g. 20s), to watch a
    /// healthy system break mid-run: what `abort = true` thresholds must catch.
    #[arg(long, default_value = "0s", value_name = "DURATION")]
    pub fault_from: surge_profile::Duration,
    /// The frames that answer throttles of the gateway's own limits (per-user and account
    /// rates). `surge`: surge's error frame with the message id,
    /// {"type":"error","code":"throttled",…}, which `surge run` reads with the default
    /// protocol. `aws`: what API Gateway itself sends, with no message id,
    /// {"message":"Too Many Requests","connectionId":…,"requestId":…}, to rehearse a
    /// client against the real frames.
    #[arg(long, default_value = "surge", value_name = "surge|aws")]
    pub gateway_frames: GatewayFrames,
    /// Require auth on the chat WebSocket, as API Gateway can: `sigv4` (IAM: each upgrade
    /// signed with SigV4 for execute-api by the key in this process's AWS_ACCESS_KEY_ID /
    /// AWS_SECRET_ACCESS_KEY [/ AWS_SESSION_TOKEN], any region), `sigv4:REGION`, or
    /// `query:PARAM` (a Lambda authorizer reading ?PARAM=token, tokens from --auth-tokens).
    /// Refused upgrades get 403 (401 without a token), as API Gateway answers.
    #[arg(
        long,
        default_value = "none",
        value_name = "none|sigv4[:REGION]|query:PARAM"
    )]
    pub auth: String,
    /// The tokens `--auth query:PARAM` accepts, one per line.
    #[arg(long, value_name = "FILE")]
    pub auth_tokens: Option<std::path::PathBuf>,
    /// Internal: serve as a worker on this port of --listen's address.
    #[arg(long, hide = true, value_name = "PORT")]
    pub worker_port: Option<u16>,
}

impl Args {
    fn config(&self) -> Result<Config, Failure> {
        let profile = Profile::load(&self.profile)?;
        if !(0.0..=1.0).contains(&self.fault_drop_rate) {
            return Err(Failure::Usage(
                "--fault-drop-rate must be between 0 and 1".into(),
            ));
        }
        let mut config = Config::new(profile.system);
        config.workers = self.workers;
        config.token_tick = self.token_tick.to_std();
        config.max_body = usize::try_from(self.max_body.bytes()).unwrap_or(usize::MAX);
        config.max_streams = self.max_streams;
        config.gateway_frames = self.gateway_frames;
        config.door = std::sync::Arc::new(
            surge_mock::door::Door::parse(&self.auth, self.auth_tokens.as_deref())
                .map_err(Failure::Usage)?,
        );
        let faults = &mut config.faults;
        faults.errors = self.fault_error_rate.clone();
        faults.latency = self.fault_latency.clone();
        faults.stall = self.fault_stall;
        faults.drop_rate = self.fault_drop_rate;
        faults.refuse = self.fault_refuse;
        faults.onset = self.fault_from.to_std();
        Ok(config)
    }
}

fn announce(addr: SocketAddr) {
    use std::io::Write;
    println!("{LISTENING}{addr}");
    let _ = std::io::stdout().flush();
}

pub async fn run(args: &Args) -> Result<Outcome, Failure> {
    let config = args.config()?;
    raise_file_limit();
    let cannot = |what: &str, e: std::io::Error| Failure::could_not_run(format!("{what}: {e}"));

    if let Some(port) = args.worker_port {
        let addr = SocketAddr::new(args.listen.ip(), port);
        let listener =
            reuseport_listener(addr).map_err(|e| cannot(&format!("cannot listen on {addr}"), e))?;
        let server = Server::on(listener, config);
        announce(server.addr);
        tokio::select! {
            r = server.run() => r.map_err(|e| cannot("the worker stopped", e))?,
            () = stdin_closed() => {}
        }
        return Ok(Outcome::Success);
    }

    let listener = if args.workers > 1 {
        reuseport_listener(args.listen)
    } else {
        tokio::net::TcpListener::bind(args.listen).await
    }
    .map_err(|e| cannot(&format!("cannot listen on {}", args.listen), e))?;
    let server = Server::on(listener, config);
    let addr = server.addr;
    let mut workers = if args.workers > 1 {
        let exe = std::env::current_exe().map_err(|e| cannot("cannot find this program", e))?;
        let mut child_args: Vec<OsString> = std::env::args_os().skip(1).collect();
        child_args.extend(["--worker-port".into(), addr.port().to_string().into()]);
        Workers::spawn(&exe, &child_args, args.workers - 1)
            .await
            .map_err(|e| cannot("cannot start the workers", e))?
    } else {
        Workers::none()
    };
    announce(addr);
    eprintln!(
        "surge mock: chat ws://{addr}/chat, Bedrock and DynamoDB http://{addr} \
         (AWS_ENDPOINT_URL=http://{addr}), metrics http://{addr}/metrics; {} worker(s); Ctrl-C stops",
        args.workers
    );
    let outcome = tokio::select! {
        _ = tokio::signal::ctrl_c() => Ok(Outcome::Success),
        r = server.run() => Err(Failure::could_not_run(format!("the server stopped: {r:?}"))),
        (i, status) = workers.wait_any() => Err(Failure::could_not_run(format!(
            "worker {} exited: {status:?}", i + 1
        ))),
    };
    tokio::time::timeout(Duration::from_secs(5), workers.shutdown())
        .await
        .ok();
    outcome
}
