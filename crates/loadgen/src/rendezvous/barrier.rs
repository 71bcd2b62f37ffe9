//! The start barrier: shard 0 gathers the others ([`gather`]); each other shard joins it
//! ([`join`]). Both end with the same instant as time zero, whatever the machines' clocks say.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use surge_record::{JoinedShard, Rendezvous};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until, timeout};

use super::{Down, LineReader, Options, Up, send, wall_us};
use crate::RunError;
use crate::wire::ShardId;

/// Clock probes per shard; the one with the shortest round trip is kept.
const PROBES: u32 = 5;
/// A connecting shard must finish its hello and probes within this.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(15);
/// Time zero is at least this long after the start decision, plus two round trips.
const MIN_LEAD: Duration = Duration::from_millis(300);

/// A shard that joined the coordinator.
pub struct Peer {
    pub shard: u32,
    pub addr: SocketAddr,
    pub(crate) reader: LineReader,
    pub(crate) writer: OwnedWriteHalf,
    rtt: Duration,
    offset_ms: f64,
}

/// The coordinator's side once every shard (or enough) has joined.
pub struct Gathered {
    /// Time zero.
    pub start: Instant,
    pub start_at: SystemTime,
    pub(crate) peers: Vec<Peer>,
    /// Shards that never joined (with `--min-shards`): lost from the start.
    pub missing: Vec<u32>,
    pub info: Rendezvous,
    /// Still listening, to turn away shards that come too late.
    pub(crate) listener: TcpListener,
}

/// A shard's side once the coordinator has released it.
pub struct Joined {
    pub start: Instant,
    pub start_at: SystemTime,
    pub(crate) reader: LineReader,
    pub(crate) writer: OwnedWriteHalf,
}

fn split_address(address: &str) -> Result<(String, u16), RunError> {
    let bad = || {
        RunError::Usage(format!(
            "--rendezvous \"{address}\": expected HOST:PORT, e.g. surge-0.surge:7070 or 127.0.0.1:7070"
        ))
    };
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

/// Checks `--rendezvous` before anything starts.
pub fn check_address(address: &str) -> Result<(), RunError> {
    split_address(address).map(|_| ())
}

/// Shard 0: listens, waits for the others, measures each connection and releases them all.
pub async fn gather(
    opts: &Options,
    me: ShardId,
    fingerprint: &str,
    note: &(dyn Fn(&str) + Sync),
) -> Result<Gathered, RunError> {
    let (host, port) = split_address(&opts.address)?;
    let ip = host
        .parse::<IpAddr>()
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let listener = TcpListener::bind((ip, port)).await.map_err(|e| {
        RunError::CouldNotRun(format!(
            "cannot listen on {ip}:{port} for the rendezvous (--rendezvous {}): {e}",
            opts.address
        ))
    })?;
    let want = me.count - 1;
    note(&format!(
        "rendezvous: shard 0 of {} waiting on {ip}:{port} for {want} shard(s) (up to {:.0} s)",
        me.count,
        opts.join_timeout.as_secs_f64()
    ));
    let deadline = Instant::now() + opts.join_timeout;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut peers: BTreeMap<u32, Peer> = BTreeMap::new();
    while (peers.len() as u32) < want {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, addr)) = accepted {
                    let (tx, fp) = (tx.clone(), fingerprint.to_string());
                    tokio::spawn(async move {
                        let r = timeout(HANDSHAKE_LIMIT, handshake(stream, addr, me.count, &fp))
                            .await
                            .unwrap_or_else(|_| Err((addr, "no hello within 15 s".into())));
                        let _ = tx.send(r);
                    });
                }
            }
            Some(r) = rx.recv() => match r {
                Ok(mut p) if peers.contains_key(&p.shard) => {
                    let why = format!("shard {} has already joined", p.shard);
                    note(&format!("rendezvous: refused {}: {why}", p.addr));
                    let _ = send(&mut p.writer, &Down::Refused { why }).await;
                }
                Ok(p) => {
                    note(&format!(
                        "rendezvous: shard {} joined from {} (round trip {:.2} ms, clock {:+.1} ms)",
                        p.shard, p.addr, p.rtt.as_secs_f64() * 1e3, p.offset_ms
                    ));
                    peers.insert(p.shard, p);
                }
                Err((addr, why)) => note(&format!("rendezvous: refused {addr}: {why}")),
            },
            _ = sleep_until(deadline) => break,
        }
    }
    let missing: Vec<u32> = (1..me.count).filter(|i| !peers.contains_key(i)).collect();
    let joined = me.count - missing.len() as u32;
    let least = opts.min_shards.unwrap_or(me.count);
    if joined < least {
        let why = format!(
            "only {joined} of {} shards joined within {:.0} s (missing: {}); start them, give \
             more --join-timeout, or pass --min-shards to start without them",
            me.count,
            opts.join_timeout.as_secs_f64(),
            list(&missing)
        );
        for p in peers.values_mut() {
            let _ = send(&mut p.writer, &Down::Refused { why: why.clone() }).await;
        }
        return Err(RunError::CouldNotRun(why));
    }
    if !missing.is_empty() {
        note(&format!(
            "rendezvous: starting with {joined} of {} shards (--min-shards {least}); missing: {}",
            me.count,
            list(&missing)
        ));
    }
    let max_rtt = peers.values().map(|p| p.rtt).max().unwrap_or_default();
    let lead = MIN_LEAD + max_rtt * 2;
    let start = Instant::now() + lead;
    let start_at = SystemTime::now() + lead;
    for p in peers.values_mut() {
        let in_us = lead.saturating_sub(p.rtt / 2).as_micros() as u64;
        send(&mut p.writer, &Down::Start { in_us })
            .await
            .map_err(|e| RunError::CouldNotRun(format!("cannot release shard {}: {e}", p.shard)))?;
    }
    let mut joined_info = vec![JoinedShard {
        shard: 0,
        peer: "local".into(),
        rtt_ms: 0.0,
        clock_offset_ms: 0.0,
    }];
    joined_info.extend(peers.values().map(|p| JoinedShard {
        shard: p.shard,
        peer: p.addr.to_string(),
        rtt_ms: p.rtt.as_secs_f64() * 1e3,
        clock_offset_ms: p.offset_ms,
    }));
    Ok(Gathered {
        start,
        start_at,
        peers: peers.into_values().collect(),
        info: Rendezvous {
            address: opts.address.clone(),
            joined: joined_info,
            missing: missing.clone(),
            lead_ms: lead.as_secs_f64() * 1e3,
        },
        missing,
        listener,
    })
}

fn list(shards: &[u32]) -> String {
    shards
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A connecting shard: hello checked, clock probed, welcomed.
async fn handshake(
    stream: TcpStream,
    addr: SocketAddr,
    count: u32,
    fingerprint: &str,
) -> Result<Peer, (SocketAddr, String)> {
    let _ = stream.set_nodelay(true);
    let (read, mut writer) = stream.into_split();
    let mut reader = LineReader::new(read);
    let fail = |why: String| (addr, why);
    let shard = match reader.next::<Up>().await.map_err(fail)? {
        Some(Up::Hello {
            shard,
            fingerprint: theirs,
            version,
        }) => {
            let refusal = if version != env!("CARGO_PKG_VERSION") {
                Some(format!(
                    "surge {version} cannot join a run of surge {}",
                    env!("CARGO_PKG_VERSION")
                ))
            } else if shard.count != count {
                Some(format!(
                    "shard {}/{} does not belong to a run of {count} shards",
                    shard.index, shard.count
                ))
            } else if shard.index == 0 {
                Some("shard 0 is the coordinator: this run has one already".into())
            } else if theirs != fingerprint {
                Some(
                    "its profile differs from the coordinator's (give every shard the same \
                     profile and system model files)"
                        .into(),
                )
            } else {
                None
            };
            if let Some(why) = refusal {
                let _ = send(&mut writer, &Down::Refused { why: why.clone() }).await;
                return Err(fail(why));
            }
            shard.index
        }
        Some(_) => return Err(fail("expected a hello".into())),
        None => return Err(fail("closed before its hello".into())),
    };
    let mut best: Option<(Duration, f64)> = None;
    for seq in 0..PROBES {
        let (sent, sent_wall) = (Instant::now(), wall_us());
        send(&mut writer, &Down::Ping { seq }).await.map_err(fail)?;
        match reader.next::<Up>().await.map_err(fail)? {
            Some(Up::Pong { seq: s, clock_us }) if s == seq => {
                let rtt = sent.elapsed();
                let offset_us = clock_us as f64 - (sent_wall as f64 + rtt.as_micros() as f64 / 2.0);
                if best.is_none_or(|(r, _)| rtt < r) {
                    best = Some((rtt, offset_us / 1e3));
                }
            }
            _ => return Err(fail("did not answer the clock probe".into())),
        }
    }
    let (rtt, offset_ms) = best.expect("at least one probe");
    send(&mut writer, &Down::Welcome).await.map_err(fail)?;
    Ok(Peer {
        shard,
        addr,
        reader,
        writer,
        rtt,
        offset_ms,
    })
}

/// Shard I > 0: connects to the coordinator (retrying until it listens), answers its
/// probes and waits for the start.
pub async fn join(
    opts: &Options,
    me: ShardId,
    fingerprint: &str,
    note: &(dyn Fn(&str) + Sync),
) -> Result<Joined, RunError> {
    split_address(&opts.address)?;
    let deadline = Instant::now() + opts.join_timeout;
    let mut told = false;
    let stream = loop {
        match TcpStream::connect(&opts.address).await {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline => {
                if !told {
                    note(&format!(
                        "rendezvous: waiting for the coordinator at {} ({e})",
                        opts.address
                    ));
                    told = true;
                }
                sleep(Duration::from_millis(500)).await;
            }
            Err(e) => {
                return Err(RunError::CouldNotRun(format!(
                    "no coordinator at {} within {:.0} s: {e} (is shard 0 running, and is \
                     --rendezvous its address?)",
                    opts.address,
                    opts.join_timeout.as_secs_f64()
                )));
            }
        }
    };
    let _ = stream.set_nodelay(true);
    let (read, mut writer) = stream.into_split();
    let mut reader = LineReader::new(read);
    let lost = |e: String| {
        RunError::CouldNotRun(format!(
            "the rendezvous with {} broke before the start: {e}",
            opts.address
        ))
    };
    send(
        &mut writer,
        &Up::Hello {
            shard: me,
            fingerprint: fingerprint.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        },
    )
    .await
    .map_err(lost)?;
    // The coordinator may wait up to its own join timeout for the other shards.
    let release = deadline + opts.join_timeout;
    loop {
        let next = timeout(
            release.saturating_duration_since(Instant::now()),
            reader.next::<Down>(),
        )
        .await
        .map_err(|_| lost("no start signal in time".into()))?
        .map_err(lost)?;
        match next {
            Some(Down::Ping { seq }) => {
                let pong = Up::Pong {
                    seq,
                    clock_us: wall_us(),
                };
                send(&mut writer, &pong).await.map_err(lost)?;
            }
            Some(Down::Welcome) => note(&format!(
                "rendezvous: shard {} of {} joined {}; waiting for the start",
                me.index, me.count, opts.address
            )),
            Some(Down::Start { in_us }) => {
                let lead = Duration::from_micros(in_us);
                return Ok(Joined {
                    start: Instant::now() + lead,
                    start_at: SystemTime::now() + lead,
                    reader,
                    writer,
                });
            }
            Some(Down::Refused { why }) => {
                return Err(RunError::CouldNotRun(format!(
                    "the coordinator at {} refused shard {}: {why}",
                    opts.address, me.index
                )));
            }
            Some(Down::Beat | Down::Stop { .. }) => {}
            None => return Err(lost("the coordinator closed the connection".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_need_a_host_and_a_port() {
        assert_eq!(
            split_address("surge-0.surge:7070").unwrap(),
            ("surge-0.surge".into(), 7070)
        );
        assert_eq!(split_address("[::1]:7070").unwrap(), ("::1".into(), 7070));
        for bad in ["surge", ":7070", "h:0", "h:port", "h:70000"] {
            assert!(split_address(bad).is_err(), "{bad}");
        }
    }
}
