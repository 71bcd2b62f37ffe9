//! A bare WebSocket load client on tokio and tungstenite, the stack surge is built on:
//! sessions that send their messages on a timer and read and drop every frame that comes
//! back, timing nothing, recording nothing, parsing nothing, written the plain way
//! (`connect_async`, one task a session). `scripts/bench-loadgen-peers.sh` runs it beside
//! surge, Tsung and Artillery on the same load: what surge costs beyond it is the price of
//! measuring every message, and what it costs itself is mostly the kernel's (its system
//! time: the timer's wake-up, a write, the reads of the answer's frames).
//!
//! ```text
//! cargo run --release -p surge-loadgen --example bare_client -- \
//!     URL SESSIONS MESSAGES GAP_S RAMP_S TEXT
//! ```
//!
//! Prints `messages N` (messages sent) and `frames N` (frames read) when every session has
//! ended. One thread, as one surge shard.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::time::{Instant, interval_at, sleep_until};
use tokio_tungstenite::tungstenite::Message;

#[derive(Default)]
struct Tally {
    messages: AtomicU64,
    frames: AtomicU64,
}

struct Load {
    url: String,
    messages: u64,
    gap: Duration,
    text: String,
}

/// One session: connect, send `messages` messages a `gap` apart, read every frame until
/// one `gap` after the last, then close.
async fn session(load: Arc<Load>, n: u64, tally: Arc<Tally>) -> Result<(), String> {
    let (mut ws, _) = tokio_tungstenite::connect_async(load.url.as_str())
        .await
        .map_err(|e| format!("session {n}: {e}"))?;
    let mut ticks = interval_at(Instant::now(), load.gap);
    let mut sent = 0;
    let end = loop {
        tokio::select! {
            _ = ticks.tick(), if sent < load.messages => {
                let text = format!(
                    r#"{{"type":"message","session":"f{n}","id":"m{sent}","store":"manga_jp","text":"{}"}}"#,
                    load.text
                );
                ws.send(Message::text(text)).await.map_err(|e| e.to_string())?;
                tally.messages.fetch_add(1, Ordering::Relaxed);
                sent += 1;
                if sent == load.messages {
                    break Instant::now() + load.gap;
                }
            }
            frame = ws.next() => match frame {
                Some(Ok(_)) => { tally.frames.fetch_add(1, Ordering::Relaxed); }
                Some(Err(e)) => return Err(e.to_string()),
                None => return Ok(()),
            },
        }
    };
    // The last answers.
    loop {
        tokio::select! {
            _ = sleep_until(end) => break,
            frame = ws.next() => match frame {
                Some(Ok(_)) => { tally.frames.fetch_add(1, Ordering::Relaxed); }
                _ => return Ok(()),
            },
        }
    }
    let _ = ws.close(None).await;
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 7 {
        eprintln!("usage: bare_client URL SESSIONS MESSAGES GAP_S RAMP_S TEXT");
        std::process::exit(2);
    }
    let number = |i: usize| -> f64 {
        args[i].parse().unwrap_or_else(|_| {
            eprintln!("bare_client: {:?} is not a number", args[i]);
            std::process::exit(2)
        })
    };
    let (sessions, messages, gap, ramp) =
        (number(2) as u64, number(3) as u64, number(4), number(5));
    let load = Arc::new(Load {
        url: args[1].clone(),
        messages,
        gap: Duration::from_secs_f64(gap),
        text: args[6].clone(),
    });
    let tally = Arc::new(Tally::default());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let failed = rt.block_on(async {
        let start = Instant::now();
        let spacing = Duration::from_secs_f64(ramp / sessions.max(1) as f64);
        let mut tasks = Vec::new();
        for n in 0..sessions {
            sleep_until(start + spacing * n as u32).await;
            tasks.push(tokio::spawn(session(load.clone(), n, tally.clone())));
        }
        let mut failed = 0;
        for t in tasks {
            if let Ok(Err(e)) = t.await {
                if failed == 0 {
                    eprintln!("bare_client: {e}");
                }
                failed += 1;
            }
        }
        failed
    });
    println!("messages {}", tally.messages.load(Ordering::Relaxed));
    println!("frames {}", tally.frames.load(Ordering::Relaxed));
    if failed > 0 {
        eprintln!("bare_client: {failed} sessions failed");
        std::process::exit(1);
    }
}
