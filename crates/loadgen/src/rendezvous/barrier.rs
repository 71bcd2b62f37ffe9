//! The start barrier: shard 0 gathers the others ([`gather`]); each other shard joins it
//! ([`join`]). Both end with the same instant as time zero, whatever the machines' clocks say.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use surge_record::{JoinedShard, Rendezvous};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::{Instant, sleep, sleep_until, timeout};

use super::key::{self, Key, LinkKey, Nonces, Role};
use super::{Down, LineReader, LineWriter, Options, PROTOCOL, Up, seal, wall_us};
use crate::RunError;
use crate::wire::ShardId;

/// Clock probes per shard; the one with the shortest round trip is kept.
const PROBES: u32 = 5;
/// A connecting shard must finish its hello and probes within this.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(15);
/// Handshakes the coordinator runs at once; a connection beyond them is closed unread.
const MAX_HANDSHAKES: usize = 64;
/// Time zero is at least this long after the start decision, plus two round trips.
const MIN_LEAD: Duration = Duration::from_millis(300);

/// A shard that joined the coordinator.
pub struct Peer {
    pub shard: u32,
    pub addr: SocketAddr,
    pub(crate) reader: LineReader,
    pub(crate) writer: LineWriter,
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
    pub(crate) writer: LineWriter,
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
    unguarded(opts, note);
    note(&format!(
        "rendezvous: shard 0 of {} waiting on {ip}:{port} for {want} shard(s) (up to {:.0} s)",
        me.count,
        opts.join_timeout.as_secs_f64()
    ));
    let deadline = Instant::now() + opts.join_timeout;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let handshakes = std::sync::Arc::new(Semaphore::new(MAX_HANDSHAKES));
    let mut peers: BTreeMap<u32, Peer> = BTreeMap::new();
    while (peers.len() as u32) < want {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, addr)) = accepted {
                    let Ok(permit) = handshakes.clone().try_acquire_owned() else {
                        note(&format!(
                            "rendezvous: closed {addr} unread: {MAX_HANDSHAKES} handshakes \
                             are under way"
                        ));
                        continue;
                    };
                    let (tx, fp, key) = (tx.clone(), fingerprint.to_string(), opts.key.clone());
                    tokio::spawn(async move {
                        let run = Run { count: me.count, fingerprint: &fp, key: key.as_ref() };
                        let r = timeout(HANDSHAKE_LIMIT, handshake(stream, addr, run))
                            .await
                            .unwrap_or_else(|_| {
                                Err((addr, "did not finish its handshake within 15 s".into()))
                            });
                        drop(permit);
                        let _ = tx.send(r);
                    });
                }
            }
            Some(r) = rx.recv() => match r {
                Ok(mut p) if peers.contains_key(&p.shard) => {
                    let why = format!("shard {} has already joined", p.shard);
                    note(&format!("rendezvous: refused {}: {why}", p.addr));
                    let _ = p.writer.send(&Down::Refused { why }).await;
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
            let _ = p.writer.send(&Down::Refused { why: why.clone() }).await;
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
        p.writer
            .send(&Down::Start { in_us })
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

/// Says so when the rendezvous runs without a key: nothing then checks who joins.
fn unguarded(opts: &Options, note: &(dyn Fn(&str) + Sync)) {
    if opts.key.is_none() {
        note(&format!(
            "rendezvous: no {} set: anything that reaches {} and knows the profile can take \
             part, and the link is not sealed (give every machine the same random key to \
             close it)",
            key::KEY_ENV,
            opts.address
        ));
    }
}

fn list(shards: &[u32]) -> String {
    shards
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a connecting shard must match: the run's shard count, fingerprint and key.
#[derive(Clone, Copy)]
struct Run<'a> {
    count: u32,
    fingerprint: &'a str,
    key: Option<&'a Key>,
}

/// A connecting shard: hello checked, key proved both ways, clock probed, welcomed.
async fn handshake(
    stream: TcpStream,
    addr: SocketAddr,
    run: Run<'_>,
) -> Result<Peer, (SocketAddr, String)> {
    let Run {
        count,
        fingerprint,
        key,
    } = run;
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    let (mut reader, mut writer) = (LineReader::new(read), LineWriter::new(write));
    let fail = |why: String| (addr, why);
    let shard = match reader.next::<Up>().await.map_err(fail)? {
        Some(Up::Hello {
            shard,
            fingerprint: theirs,
            version,
            nonce: their_nonce,
            protocol,
        }) => {
            let refusal = if protocol != PROTOCOL {
                Some(format!(
                    "the shard speaks rendezvous protocol {protocol}, this coordinator {PROTOCOL} \
                     (run the same surge build on every machine)"
                ))
            } else if version != env!("CARGO_PKG_VERSION") {
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
                let _ = writer.send(&Down::Refused { why: why.clone() }).await;
                return Err(fail(why));
            }
            if let Some(key) = key {
                let link = challenge(
                    key,
                    &their_nonce,
                    shard.index,
                    fingerprint,
                    &mut reader,
                    &mut writer,
                )
                .await
                .map_err(fail)?;
                seal(&mut reader, &mut writer, &link, Role::Coordinator);
            }
            shard.index
        }
        Some(_) => return Err(fail("expected a hello".into())),
        None => return Err(fail("closed before its hello".into())),
    };
    let mut best: Option<(Duration, f64)> = None;
    for seq in 0..PROBES {
        let (sent, sent_wall) = (Instant::now(), wall_us());
        writer.send(&Down::Ping { seq }).await.map_err(fail)?;
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
    writer.send(&Down::Welcome).await.map_err(fail)?;
    Ok(Peer {
        shard,
        addr,
        reader: reader.joined(),
        writer,
        rtt,
        offset_ms,
    })
}

/// A coordinator with a key sends the shard a fresh nonce; the shard proves the key over
/// both nonces, and only then does the coordinator prove it back: then both hold the
/// link's key, returned. A shard that cannot is refused, having learnt nothing of the key.
async fn challenge(
    key: &Key,
    their_nonce: &str,
    shard: u32,
    fingerprint: &str,
    reader: &mut LineReader,
    writer: &mut LineWriter,
) -> Result<LinkKey, String> {
    let nonce = key::nonce();
    let nonces = Nonces {
        shard: their_nonce,
        coordinator: &nonce,
    };
    let why = if !key::is_nonce(their_nonce) {
        format!("shard {shard} sent no nonce to prove the key over")
    } else {
        writer
            .send(&Down::Challenge {
                nonce: nonce.clone(),
            })
            .await?;
        match reader.next::<Up>().await? {
            Some(Up::Proof { proof })
                if key.verify(Role::Shard, nonces, shard, fingerprint, &proof) =>
            {
                let proof = key.prove(Role::Coordinator, nonces, shard, fingerprint);
                writer.send(&Down::Proof { proof }).await?;
                return Ok(key.link(nonces, shard, fingerprint));
            }
            Some(Up::Proof { .. }) => format!(
                "shard {shard} holds another {} than this coordinator",
                key::KEY_ENV
            ),
            Some(_) => format!("shard {shard} did not answer the key challenge"),
            None => format!(
                "shard {shard} closed at the key challenge (does it have {}?)",
                key::KEY_ENV
            ),
        }
    };
    let _ = writer.send(&Down::Refused { why: why.clone() }).await;
    Err(why)
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
    unguarded(opts, note);
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
    let (read, write) = stream.into_split();
    let (mut reader, mut writer) = (LineReader::new(read), LineWriter::new(write));
    let lost = |e: String| {
        RunError::CouldNotRun(format!(
            "the rendezvous with {} broke before the start: {e}",
            opts.address
        ))
    };
    let my_nonce = key::nonce();
    writer
        .send(&Up::Hello {
            shard: me,
            fingerprint: fingerprint.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            nonce: my_nonce.clone(),
            protocol: PROTOCOL,
        })
        .await
        .map_err(lost)?;
    // With a key, nothing but its own proof goes to a coordinator that has not proved it.
    let mut proved = opts.key.is_none();
    let mut challenged: Option<String> = None;
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
            Some(Down::Challenge { nonce }) => {
                let Some(key) = &opts.key else {
                    return Err(RunError::CouldNotRun(format!(
                        "the coordinator at {} requires {}: give this shard the run's key",
                        opts.address,
                        key::KEY_ENV
                    )));
                };
                if challenged.is_some() || !key::is_nonce(&nonce) {
                    return Err(lost("a malformed key challenge".into()));
                }
                let nonces = Nonces {
                    shard: &my_nonce,
                    coordinator: &nonce,
                };
                let proof = key.prove(Role::Shard, nonces, me.index, fingerprint);
                writer.send(&Up::Proof { proof }).await.map_err(lost)?;
                challenged = Some(nonce);
            }
            Some(Down::Proof { proof }) => {
                let (Some(key), Some(nonce), false) = (&opts.key, &challenged, proved) else {
                    return Err(lost("a key proof it did not ask for".into()));
                };
                let nonces = Nonces {
                    shard: &my_nonce,
                    coordinator: nonce,
                };
                if !key.verify(Role::Coordinator, nonces, me.index, fingerprint, &proof) {
                    return Err(RunError::CouldNotRun(format!(
                        "the coordinator at {} holds another {} than this shard",
                        opts.address,
                        key::KEY_ENV
                    )));
                }
                let link = key.link(nonces, me.index, fingerprint);
                seal(&mut reader, &mut writer, &link, Role::Shard);
                proved = true;
            }
            _ if !proved && !matches!(next, Some(Down::Refused { .. }) | None) => {
                return Err(RunError::CouldNotRun(format!(
                    "the coordinator at {} did not prove {}: this shard has the key, the \
                     coordinator has none (give every machine of the run the same key)",
                    opts.address,
                    key::KEY_ENV
                )));
            }
            Some(Down::Ping { seq }) => {
                let pong = Up::Pong {
                    seq,
                    clock_us: wall_us(),
                };
                writer.send(&pong).await.map_err(lost)?;
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
                    reader: reader.joined(),
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

    const KEY: &str = "a key for this run only, 0123";

    /// A loopback port nothing listens on, for a coordinator to bind.
    fn free_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }

    fn options(port: u16, key: Option<&str>) -> Options {
        Options {
            address: format!("127.0.0.1:{port}"),
            join_timeout: Duration::from_secs(2),
            min_shards: None,
            key: key.map(|k| Key::new(k).unwrap()),
        }
    }

    /// A coordinator with `coordinator_key` and one shard with `shard_key` meet on loopback:
    /// how each side came out (the shard's error, the coordinator's error), and what the
    /// coordinator noted.
    async fn meet(
        coordinator_key: Option<&str>,
        shard_key: Option<&str>,
    ) -> (Result<(), String>, Result<(), String>, Vec<String>) {
        let port = free_port();
        let notes = std::sync::Mutex::new(Vec::new());
        let note = |line: &str| notes.lock().unwrap().push(line.to_string());
        let (coordinator_opts, shard_opts) =
            (options(port, coordinator_key), options(port, shard_key));
        let (gathered, joined) = tokio::join!(
            gather(
                &coordinator_opts,
                ShardId { index: 0, count: 2 },
                "fp",
                &note
            ),
            join(
                &shard_opts,
                ShardId { index: 1, count: 2 },
                "fp",
                &|_: &str| {}
            ),
        );
        let notes = notes.into_inner().unwrap();
        (
            joined.map(|_| ()).map_err(|e| e.to_string()),
            gathered.map(|_| ()).map_err(|e| e.to_string()),
            notes,
        )
    }

    #[tokio::test]
    async fn shards_with_the_run_key_join() {
        let (shard, coordinator, _) = meet(Some(KEY), Some(KEY)).await;
        assert_eq!(shard, Ok(()));
        assert_eq!(coordinator, Ok(()));
        let (shard, coordinator, _) = meet(None, None).await;
        assert_eq!((shard, coordinator), (Ok(()), Ok(())), "no key, no check");
    }

    #[tokio::test]
    async fn a_shard_with_another_key_neither_joins_nor_proves_anything() {
        let (shard, coordinator, notes) = meet(Some(KEY), Some("a different key, 0123456")).await;
        let shard = shard.unwrap_err();
        assert!(
            shard.contains("holds another SURGE_RENDEZVOUS_KEY"),
            "{shard}"
        );
        assert!(
            coordinator
                .unwrap_err()
                .contains("only 1 of 2 shards joined")
        );
        assert!(
            notes.iter().any(|n| n.contains("holds another")),
            "the coordinator refused it after its proof: {notes:?}"
        );
        let all = format!("{shard} {notes:?}");
        assert!(
            !all.contains(KEY) && !all.contains("different key"),
            "{all}"
        );
    }

    #[tokio::test]
    async fn a_key_on_one_side_only_is_refused_on_both() {
        let (shard, coordinator, notes) = meet(Some(KEY), None).await;
        let shard = shard.unwrap_err();
        assert!(shard.contains("requires SURGE_RENDEZVOUS_KEY"), "{shard}");
        assert!(coordinator.is_err());
        assert!(
            notes.iter().any(|n| n.contains("refused")),
            "the coordinator says why: {notes:?}"
        );

        let (shard, coordinator, _) = meet(None, Some(KEY)).await;
        let shard = shard.unwrap_err();
        assert!(
            shard.contains("did not prove SURGE_RENDEZVOUS_KEY"),
            "{shard}"
        );
        assert!(coordinator.is_err(), "the shard never answered its probes");
    }

    /// A connection to the coordinator at `port`, retried while it starts listening.
    async fn dial(port: u16) -> TcpStream {
        for _ in 0..50 {
            if let Ok(s) = TcpStream::connect(("127.0.0.1", port)).await {
                return s;
            }
            sleep(Duration::from_millis(20)).await;
        }
        panic!("the coordinator does not listen on {port}");
    }

    fn hello(nonce: String) -> Up {
        Up::Hello {
            shard: ShardId { index: 1, count: 2 },
            fingerprint: "fp".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            nonce,
            protocol: PROTOCOL,
        }
    }

    /// A shard speaking the protocol by hand to the coordinator at `port`: its hello, then a
    /// proof made with `key` over both nonces; the connection, for what comes next.
    async fn prove_by_hand(port: u16, key: &str) -> (LineReader, LineWriter) {
        let (read, write) = dial(port).await.into_split();
        let (mut reader, mut writer) = (LineReader::new(read), LineWriter::new(write));
        let mine = key::nonce();
        writer.send(&hello(mine.clone())).await.unwrap();
        let Some(Down::Challenge { nonce }) = reader.next::<Down>().await.unwrap() else {
            panic!("expected a challenge");
        };
        let nonces = Nonces {
            shard: &mine,
            coordinator: &nonce,
        };
        let proof = Key::new(key).unwrap().prove(Role::Shard, nonces, 1, "fp");
        writer.send(&Up::Proof { proof }).await.unwrap();
        (reader, writer)
    }

    /// Something that knows the run's fingerprint but not its key, speaking the protocol by
    /// hand, is turned away at the challenge, and gets no proof of the key to guess it from:
    /// the coordinator's challenge is a nonce alone, and its proof goes only to a shard
    /// whose own held.
    #[tokio::test]
    async fn a_forged_proof_is_refused_and_learns_nothing() {
        let port = free_port();
        let opts = options(port, Some(KEY));
        let intruder = async {
            let (mut reader, _writer) = prove_by_hand(port, "not the run's key at all").await;
            let mut answers = Vec::new();
            while let Ok(Some(down)) = reader.next::<Down>().await {
                answers.push(down);
                assert!(answers.len() < 10, "{answers:?}");
            }
            answers
        };
        let notes = std::sync::Mutex::new(Vec::new());
        let note = |line: &str| notes.lock().unwrap().push(line.to_string());
        let (gathered, answers) = tokio::join!(
            gather(&opts, ShardId { index: 0, count: 2 }, "fp", &note),
            intruder
        );
        assert!(
            matches!(&answers[..], [Down::Refused { why }] if why.contains("holds another")),
            "refused, and nothing else: {answers:?}"
        );
        assert!(gathered.is_err(), "nobody joined");
    }

    /// From the proofs on, lines must carry their seal: a peer that proved the key but then
    /// answers the clock probe with a bare line (as anything spliced into the connection
    /// after the handshake would) is refused, and the probe it was sent came sealed.
    #[tokio::test]
    async fn after_the_proofs_a_bare_line_is_refused() {
        let port = free_port();
        let opts = options(port, Some(KEY));
        let splicer = async {
            let (mut reader, mut writer) = prove_by_hand(port, KEY).await;
            let Some(Down::Proof { .. }) = reader.next::<Down>().await.unwrap() else {
                panic!("expected the coordinator's proof");
            };
            // Unsealed, the probe does not read as a message…
            let probe = reader.next::<Down>().await;
            assert!(probe.is_err(), "{probe:?}");
            // …and a bare answer is refused.
            writer
                .send(&Up::Pong {
                    seq: 0,
                    clock_us: 0,
                })
                .await
                .unwrap();
            let mut rest = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut reader.half, &mut rest).await;
        };
        let notes = std::sync::Mutex::new(Vec::new());
        let note = |line: &str| notes.lock().unwrap().push(line.to_string());
        let (gathered, ()) = tokio::join!(
            gather(&opts, ShardId { index: 0, count: 2 }, "fp", &note),
            splicer
        );
        assert!(gathered.is_err(), "nobody joined");
        let notes = notes.into_inner().unwrap();
        assert!(
            notes.iter().any(|n| n.contains("failed its seal")),
            "{notes:?}"
        );
    }

    /// A hello whose nonce could not be what a shard makes (here one that would put a line
    /// break into the signed text) is refused before any challenge.
    #[tokio::test]
    async fn a_hello_with_a_malformed_nonce_is_refused() {
        let port = free_port();
        let opts = options(port, Some(KEY));
        let intruder = async {
            let (read, write) = dial(port).await.into_split();
            let (mut reader, mut writer) = (LineReader::new(read), LineWriter::new(write));
            let bent = format!("{}\nshard", &key::nonce()[..26]);
            writer.send(&hello(bent)).await.unwrap();
            reader.next::<Down>().await.unwrap()
        };
        let (gathered, answer) = tokio::join!(
            gather(&opts, ShardId { index: 0, count: 2 }, "fp", &|_: &str| {}),
            intruder
        );
        assert!(
            matches!(&answer, Some(Down::Refused { why }) if why.contains("no nonce")),
            "{answer:?}"
        );
        assert!(gathered.is_err());
    }

    /// A shard of a build from before sealed links sends no protocol number: it is told so
    /// at its hello, not left to fail later at a seal it cannot make.
    #[tokio::test]
    async fn a_shard_of_another_protocol_is_refused_at_its_hello() {
        let port = free_port();
        let opts = options(port, Some(KEY));
        let old_build = async {
            let (read, write) = dial(port).await.into_split();
            let (mut reader, mut writer) = (LineReader::new(read), LineWriter::new(write));
            let hello = serde_json::json!({
                "kind": "hello",
                "shard": {"index": 1, "count": 2},
                "fingerprint": "fp",
                "version": env!("CARGO_PKG_VERSION"),
                "nonce": key::nonce(),
            });
            writer.send(&hello).await.unwrap();
            reader.next::<Down>().await.unwrap()
        };
        let (gathered, answer) = tokio::join!(
            gather(&opts, ShardId { index: 0, count: 2 }, "fp", &|_: &str| {}),
            old_build
        );
        assert!(
            matches!(&answer, Some(Down::Refused { why })
                if why.contains("rendezvous protocol 0, this coordinator 3")),
            "{answer:?}"
        );
        assert!(gathered.is_err());
    }

    /// A peer that streams a line without end is cut off at 64 KiB, not buffered until the
    /// coordinator runs out of memory, and the run's own shard still joins.
    #[tokio::test]
    async fn an_endless_line_is_cut_off_and_the_shard_still_joins() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let port = free_port();
        let opts = options(port, Some(KEY));
        let notes = std::sync::Mutex::new(Vec::new());
        let note = |line: &str| notes.lock().unwrap().push(line.to_string());
        let flood = async {
            let mut stream = dial(port).await;
            let chunk = vec![b'a'; 16 << 10];
            let mut sent = 0usize;
            // Bounded: 16 MiB at most; the coordinator closes long before.
            while sent < 16 << 20 {
                match stream.write_all(&chunk).await {
                    Ok(()) => sent += chunk.len(),
                    Err(_) => break,
                }
            }
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest).await;
            sent
        };
        let shard = async {
            sleep(Duration::from_millis(200)).await;
            join(
                &options(port, Some(KEY)),
                ShardId { index: 1, count: 2 },
                "fp",
                &|_: &str| {},
            )
            .await
        };
        let (gathered, sent, joined) = tokio::join!(
            gather(&opts, ShardId { index: 0, count: 2 }, "fp", &note),
            flood,
            shard
        );
        assert!(joined.is_ok(), "{:?}", joined.err());
        assert!(gathered.is_ok(), "{:?}", gathered.err());
        assert!(sent < 16 << 20, "the coordinator read all {sent} bytes");
        let notes = notes.into_inner().unwrap();
        assert!(
            notes.iter().any(|n| n.contains("longer than 64 KiB")),
            "{notes:?}"
        );
    }

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
