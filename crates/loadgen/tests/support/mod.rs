//! Shared by the load-generator tests: short profiles on a compressed time scale and
//! run options aimed at loopback.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use surge_loadgen::testkit::{Script, TestServer};
use surge_loadgen::{RunOptions, RunOutcome};
use surge_profile::Profile;
use tempfile::TempDir;

/// What a test profile varies.
pub struct Shape<'a> {
    pub arrival: &'a str,
    pub sessions: u64,
    pub rate: &'a str,
    pub duration: &'a str,
    pub reply_timeout: &'a str,
    pub connect_rate: &'a str,
    /// Appended verbatim (e.g. a [protocol] table or thresholds).
    pub extra: &'a str,
}

impl Default for Shape<'_> {
    fn default() -> Self {
        Self {
            arrival: "constant",
            sessions: 4,
            rate: "20/s",
            duration: "3s",
            reply_timeout: "2s",
            connect_rate: "500/s",
            extra: "",
        }
    }
}

pub fn system_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../profiles/system/mangaassist.toml")
        .canonicalize()
        .expect("the shipped system model")
}

/// Writes `dir/test.toml` and loads it.
pub fn profile(dir: &Path, s: &Shape<'_>) -> Profile {
    let text = format!(
        r#"description = "loadgen test"
seed = 7
[system]
file = "{system}"
[traffic]
arrival = {arrival}
conversation_turns = 5
reply_timeout = "{reply}"
connect_rate = "{connect_rate}"
[traffic.stores]
manga_jp = "100%"
[traffic.intents]
chitchat = "50%"
order_tracking = "50%"
[[traffic.stages]]
name = "hold"
duration = "{duration}"
sessions = {sessions}
message_rate = "{rate}"
{extra}
"#,
        system = system_file().display(),
        // A table (a trace) as written, a name quoted.
        arrival = if s.arrival.starts_with('{') {
            s.arrival.to_string()
        } else {
            format!("\"{}\"", s.arrival)
        },
        connect_rate = s.connect_rate,
        reply = s.reply_timeout,
        duration = s.duration,
        sessions = s.sessions,
        rate = s.rate,
        extra = s.extra,
    );
    let path = dir.join("test.toml");
    std::fs::write(&path, text).unwrap();
    Profile::load(&path).unwrap()
}

pub fn options(profile: Profile, target: String, out: &Path) -> RunOptions {
    RunOptions {
        profile,
        target,
        headers: Vec::new(),
        token_env: None,
        shards: 1,
        bind: Vec::new(),
        out: out.to_path_buf(),
        dir: None,
        metrics_addr: None,
        pushgateway: None,
        progress: false,
        shard: None,
        start_at: None,
        worker_command: Vec::new(),
        scrape: Vec::new(),
        max_errors: None,
        rendezvous: None,
    }
}

/// Runs to the end (no Ctrl-C), bounded so a hung run fails the test instead of CI.
pub async fn run(opts: RunOptions) -> RunOutcome {
    tokio::time::timeout(
        Duration::from_secs(120),
        surge_loadgen::run(opts, std::future::pending()),
    )
    .await
    .expect("the run ends on its own")
    .expect("the run is carried out")
}

/// A run of `shape` against a test server that plays `script`: the server (to ask what
/// it saw), the outcome, and the directory the run was written to.
pub async fn against(script: Script, shape: &Shape<'_>) -> (TestServer, RunOutcome, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(script).await.unwrap();
    let p = profile(dir.path(), shape);
    let o = run(options(p, server.url(), dir.path())).await;
    (server, o, dir)
}

pub fn errors(o: &RunOutcome, class: &str) -> u64 {
    o.summary.errors.get(class).copied().unwrap_or(0)
}

/// A loopback port with nothing listening.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
