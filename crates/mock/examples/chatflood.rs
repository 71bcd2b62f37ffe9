//! Opens many chat WebSockets at once and keeps them open: the scale check of `surge mock`
//! (25,000 sessions need two client processes here, as each may hold 20,000 files).
//!
//! ```text
//! cargo run --release -p surge-mock --example chatflood -- ws://127.0.0.1:PORT/chat 12500 [HOLD_SECS]
//! ```
//!
//! Connects at up to 2,000 new connections per second, sends one message per session once
//! every session is open, waits for every done frame, holds the sessions `HOLD_SECS`, and
//! prints one JSON line: sessions opened, answers received, failures.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use surge_protocol::{ChatMessage, ServerFrame};
use tokio::sync::Barrier;
use tokio_tungstenite::tungstenite::Message;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "ws://127.0.0.1:8787/chat".into());
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let hold = Duration::from_secs(args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5));
    let (opened, answered, failed) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let all_open = Arc::new(Barrier::new(n + 1));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        if i % 200 == 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (url, opened, answered, failed, all_open) = (
            url.clone(),
            opened.clone(),
            answered.clone(),
            failed.clone(),
            all_open.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let ws = tokio::time::timeout(
                Duration::from_secs(30),
                tokio_tungstenite::connect_async(url.as_str()),
            )
            .await;
            let mut ws = match ws {
                Ok(Ok((ws, _))) => {
                    opened.fetch_add(1, Ordering::Relaxed);
                    Some(ws)
                }
                _ => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    None
                }
            };
            all_open.wait().await;
            let Some(ws) = ws.as_mut() else { return };
            let msg = ChatMessage {
                session: format!("s-{i}"),
                id: "m-1".into(),
                store: "comics_us".into(),
                text: "Where is my order?".into(),
            };
            if ws.send(Message::Text(msg.to_json().into())).await.is_err() {
                failed.fetch_add(1, Ordering::Relaxed);
                return;
            }
            for _ in 0..1000 {
                match tokio::time::timeout(Duration::from_secs(60), ws.next()).await {
                    Ok(Some(Ok(Message::Text(t)))) => {
                        match serde_json::from_str::<ServerFrame>(t.as_str()) {
                            Ok(ServerFrame::Done { .. }) => {
                                answered.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                            Ok(ServerFrame::Error { .. }) | Err(_) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                            Ok(_) => {}
                        }
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
            tokio::time::sleep(hold).await;
            let _ = ws.close(None).await;
        }));
    }
    all_open.wait().await;
    let connect_secs = started.elapsed().as_secs_f64();
    for t in tasks {
        let _ = t.await;
    }
    println!(
        "{}",
        serde_json::json!({
            "sessions": n, "opened": opened.load(Ordering::Relaxed),
            "answered": answered.load(Ordering::Relaxed), "failed": failed.load(Ordering::Relaxed),
            "connect_seconds": (connect_secs * 10.0).round() / 10.0,
        })
    );
}
