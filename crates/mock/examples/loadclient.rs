//! A small load client for `scripts/bench-mock.sh`: drives one API of an AWS-compatible
//! endpoint (surge mock, moto, …) with a fixed number of requests at a fixed concurrency
//! and prints what it measured as one line of JSON.
//!
//! ```text
//! cargo run --release -p surge-mock --example loadclient -- \
//!     ENDPOINT MODE [REQUESTS] [CONCURRENCY]
//! MODE: dynamodb-put | dynamodb-get | bedrock-stream
//! ```
//!
//! Each of CONCURRENCY tasks keeps one HTTP/1.1 keep-alive connection and sends its
//! requests on it one after another (a fresh connection after an error), so the client
//! costs little next to the server it measures. Requests carry a syntactically valid SigV4
//! `Authorization` header with a dummy signature (neither server checks signatures).
//! `bedrock-stream` calls ConverseStream and decodes every event-stream message (CRCs
//! checked).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::json;
use surge_mock::eventstream;

const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=0000000000000000000000000000000000000000000000000000000000000000";
const TABLE: &str = "bench";
const KEYS: u64 = 10_000;

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    errors: AtomicU64,
    events: AtomicU64,
}

/// One keep-alive HTTP/1.1 connection; the client drives each sequentially.
struct Conn {
    authority: String,
    send: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    /// The server said it closes the connection after this response (moto does).
    closing: bool,
}

impl Conn {
    async fn open(endpoint: &str) -> Result<Self, String> {
        let authority = endpoint.trim_start_matches("http://").to_string();
        let tcp = tokio::net::TcpStream::connect(&authority)
            .await
            .map_err(|e| e.to_string())?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        Ok(Self {
            authority,
            send,
            closing: false,
        })
    }

    async fn post(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> Result<hyper::Response<hyper::body::Incoming>, String> {
        let mut req = hyper::Request::post(path).header("host", &self.authority);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        self.send.ready().await.map_err(|e| e.to_string())?;
        let res = self
            .send
            .send_request(req)
            .await
            .map_err(|e| e.to_string())?;
        let close = res
            .headers()
            .get("connection")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        self.closing = close || res.version() == hyper::Version::HTTP_10;
        Ok(res)
    }

    async fn dynamodb(&mut self, op: &str, body: serde_json::Value) -> Result<(), String> {
        let target = format!("DynamoDB_20120810.{op}");
        let res = self
            .post(
                "/",
                &[
                    ("x-amz-target", &target),
                    ("content-type", "application/x-amz-json-1.0"),
                    ("x-amz-date", "20260101T000000Z"),
                    ("authorization", AUTH),
                ],
                body.to_string(),
            )
            .await?;
        let status = res.status();
        let text = res
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("{status}: {}", String::from_utf8_lossy(&text)))
        }
    }
}

fn key(i: u64) -> String {
    format!("user-{}", i % KEYS)
}

async fn one(conn: &mut Conn, mode: &str, i: u64, tally: &Tally) -> Result<(), String> {
    match mode {
        "dynamodb-put" => {
            conn.dynamodb("PutItem", json!({
                "TableName": TABLE,
                "Item": {"pk": {"S": key(i)}, "turn": {"N": i.to_string()}, "text": {"S": "What should I read after finishing Naruto?"}}
            }))
            .await
        }
        "dynamodb-get" => {
            conn.dynamodb("GetItem", json!({"TableName": TABLE, "Key": {"pk": {"S": key(i)}}})).await
        }
        "bedrock-stream" => {
            let body = json!({
                "messages": [{"role": "user", "content": [{"text": "Hi there!"}]}],
                "inferenceConfig": {"maxTokens": 50}
            });
            let auth = AUTH.replace("dynamodb", "bedrock");
            let res = conn
                .post(
                    "/model/haiku/converse-stream",
                    &[("content-type", "application/json"), ("authorization", &auth)],
                    body.to_string(),
                )
                .await?;
            let status = res.status();
            let mut body = res.into_body();
            if !status.is_success() {
                let text = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
                return Err(format!("{status}: {}", String::from_utf8_lossy(&text)));
            }
            let mut buf = BytesMut::new();
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame.map_err(|e| e.to_string())?.into_data() {
                    buf.extend_from_slice(&data);
                }
                while let Some(_msg) = eventstream::decode(&mut buf).map_err(|e| e.to_string())? {
                    tally.events.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(())
        }
        other => Err(format!("unknown mode {other}")),
    }
}

/// This process's CPU time (user + system, every thread) so far, in seconds: what the client
/// itself costs the cores it shares with the server it measures.
fn own_cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct passed to it.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!(
            "usage: loadclient ENDPOINT dynamodb-put|dynamodb-get|bedrock-stream [REQUESTS] [CONCURRENCY]"
        );
        std::process::exit(2);
    }
    let endpoint = args[1].trim_end_matches('/').to_string();
    let mode = args[2].clone();
    let requests: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let concurrency: u64 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(64);
    if mode.starts_with("dynamodb") {
        // The table may exist from an earlier mode; either answer is fine.
        let mut conn = Conn::open(&endpoint).await.expect("connects");
        let create = json!({
            "TableName": TABLE,
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST"
        });
        let _ = conn.dynamodb("CreateTable", create).await;
    }

    let tally = Arc::new(Tally::default());
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let cpu_before = own_cpu_seconds();
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|w| {
            let (endpoint, mode) = (endpoint.clone(), mode.clone());
            let (tally, first_error) = (tally.clone(), first_error.clone());
            tokio::spawn(async move {
                let mut conn = None;
                let mut i = w;
                while i < requests {
                    if conn.as_ref().is_none_or(|c: &Conn| c.closing) {
                        conn = Conn::open(&endpoint).await.ok();
                    }
                    let result = match conn.as_mut() {
                        Some(c) => one(c, &mode, i, &tally).await,
                        None => Err("cannot connect".to_string()),
                    };
                    if result.is_err() {
                        conn = None; // a fresh connection after any error
                    }
                    match result {
                        Ok(()) => tally.ok.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            first_error.lock().unwrap().get_or_insert(e);
                            tally.errors.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                    i += concurrency;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = own_cpu_seconds() - cpu_before;
    let ok = tally.ok.load(Ordering::Relaxed);
    let events = tally.events.load(Ordering::Relaxed);
    println!(
        "{}",
        json!({
            "mode": mode, "endpoint": endpoint, "requests": requests, "concurrency": concurrency,
            "ok": ok, "errors": tally.errors.load(Ordering::Relaxed),
            "seconds": (secs * 1000.0).round() / 1000.0,
            "requests_per_second": (ok as f64 / secs).round(),
            "events": events, "events_per_second": (events as f64 / secs).round(),
            "client_cpu_seconds": (cpu * 1000.0).round() / 1000.0,
            "first_error": first_error.lock().unwrap().clone(),
        })
    );
}
