//! Watching a run: live Prometheus metrics during the run, the final Pushgateway push.

mod support;

use std::time::Duration;

use support::{Shape, options, profile};
use surge_loadgen::testkit::{Script, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn get(addr: std::net::SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).await.ok()?;
    Some(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_live_and_pushed_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(Script::default()).await.unwrap();
    // A fake Pushgateway that keeps what it is sent.
    let gateway = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway_url = format!("http://{}", gateway.local_addr().unwrap());
    let pushed = tokio::spawn(async move {
        let (mut conn, _) = gateway.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let n = conn.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf);
            if n == 0 || (text.contains("surge_sessions_open") && text.ends_with('\n')) {
                break;
            }
        }
        conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        String::from_utf8_lossy(&buf).into_owned()
    });
    let metrics_addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let p = profile(
        dir.path(),
        &Shape {
            duration: "4s",
            ..Shape::default()
        },
    );
    let mut opts = options(p, server.url(), dir.path());
    opts.metrics_addr = Some(metrics_addr);
    opts.pushgateway = Some(gateway_url);
    let running = tokio::spawn(surge_loadgen::run(opts, std::future::pending()));

    let mut live = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Some(body) = get(metrics_addr, "/metrics").await {
            if body.contains("surge_ttft_seconds_count") {
                live = Some(body);
                break;
            }
        }
    }
    let live = live.expect("/metrics answered with latency histograms during the run");
    assert!(live.starts_with("HTTP/1.1 200"), "{live}");
    assert!(live.contains("surge_messages_sent_total"), "{live}");
    assert!(
        live.contains("surge_errors_total{class=\"refused\"} 0"),
        "{live}"
    );
    assert!(
        live.contains("surge_e2e_seconds_bucket{le=\"+Inf\"}"),
        "{live}"
    );
    let not_found = get(metrics_addr, "/").await.unwrap();
    assert!(not_found.starts_with("HTTP/1.1 404"), "{not_found}");

    let o = tokio::time::timeout(Duration::from_secs(60), running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(o.problems.is_empty(), "{:?}", o.problems);
    let push = tokio::time::timeout(Duration::from_secs(10), pushed)
        .await
        .unwrap()
        .unwrap();
    assert!(
        push.starts_with("PUT /metrics/job/surge/profile/test "),
        "{push}"
    );
    let sent_line = format!("surge_messages_sent_total {}", o.summary.counts.sent);
    assert!(push.contains(&sent_line), "{push}");
}
