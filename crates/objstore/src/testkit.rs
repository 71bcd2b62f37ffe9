//! For tests: an S3-compatible server surge did not write — the Python `moto` server —
//! on a free loopback port, and a client for it that reads nothing from the environment.
//!
//! `scripts/test.sh` installs moto into `.venv/s3` and names its Python in
//! `SURGE_S3_PYTHON`. Without it the tests that need moto say they were skipped, except
//! under `CI=true`, where they fail.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};

/// The variable that names a Python with `moto[server]`.
pub const PYTHON_VAR: &str = "SURGE_S3_PYTHON";
/// The dummy credentials the server accepts (moto checks none).
pub const ACCESS_KEY: &str = "surge-test-key";
pub const SECRET_KEY: &str = "surge-test-secret";
/// The region the tests use.
pub const REGION: &str = "us-east-1";

/// The Python with moto: `SURGE_S3_PYTHON`, or the repository's `.venv/s3`; `None` after
/// saying the test is skipped. Under `CI=true` a missing moto fails the test instead.
pub fn python_or_skip() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(PYTHON_VAR) {
        return Some(PathBuf::from(p));
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/s3/bin/python");
    let has = Command::new(&venv)
        .args(["-c", "import moto.server"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if has {
        return Some(venv);
    }
    let why = format!(
        "no Python with moto[server] (set {PYTHON_VAR}, or run scripts/test.sh, which \
         installs it into .venv/s3); looked at {}",
        venv.display()
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{why}");
    }
    eprintln!("skipped: {why}");
    None
}

/// A loopback port nothing listens on (bound, then let go).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A moto server process on 127.0.0.1, killed when dropped.
pub struct Moto {
    child: Child,
    addr: SocketAddr,
}

impl Moto {
    /// Starts `python -m moto.server` on a free loopback port and waits (at most 30 s)
    /// until it accepts connections.
    pub fn start(python: &Path) -> Moto {
        let port = free_port();
        let child = Command::new(python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start moto with {}: {e}", python.display()));
        let mut moto = Moto {
            child,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        };
        let started = Instant::now();
        loop {
            if TcpStream::connect_timeout(&moto.addr, Duration::from_millis(200)).is_ok() {
                return moto;
            }
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto exited before listening ({status})");
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto did not listen on {} within 30 s",
                moto.addr
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL_S3`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A path-style client of this server with the dummy credentials; nothing from the
    /// environment.
    pub fn client(&self) -> Client {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(self.endpoint())
            .force_path_style(true)
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new(
                ACCESS_KEY,
                SECRET_KEY,
                None,
                None,
                "surge-test",
            ))
            .build();
        Client::from_conf(config)
    }

    /// The variables that point a child process's AWS chain at this server.
    pub fn env(&self) -> [(&'static str, String); 4] {
        env_for(self.endpoint())
    }
}

/// The AWS settings of a process that talks to the S3 store at `endpoint` with the test
/// credentials (moto's, or a stand-in that fails on purpose).
pub fn env_for(endpoint: String) -> [(&'static str, String); 4] {
    [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
        ("AWS_REGION", REGION.to_string()),
        ("AWS_ENDPOINT_URL_S3", endpoint),
    ]
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates `bucket`.
pub async fn create_bucket(client: &Client, bucket: &str) {
    client
        .create_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bucket {bucket}: {}", crate::chain(&e)));
}

/// Stores `bytes` at `key` of `bucket`.
pub async fn put(client: &Client, bucket: &str, key: &str, bytes: Vec<u8>) {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(bytes.into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {key}: {}", crate::chain(&e)));
}

/// Every key under `prefix` with its bytes, sorted by key.
pub async fn objects(client: &Client, bucket: &str, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    let mut keys = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.unwrap_or_else(|e| panic!("list: {}", crate::chain(&e)));
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key())
                .map(str::to_owned),
        );
    }
    keys.sort();
    let mut out = Vec::new();
    for key in keys {
        let body = client
            .get_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("get {key}: {}", crate::chain(&e)))
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes()
            .to_vec();
        out.push((key, body));
    }
    out
}

/// Every regular file under `dir` with its bytes, by `/`-separated relative path, sorted.
pub fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = crate::files_of(dir)
        .expect("a readable directory")
        .into_iter()
        .map(|(path, suffix, _)| (suffix, std::fs::read(path).unwrap()))
        .collect();
    out.sort();
    out
}
