//! The coordinator's live view: every shard's intervals merged into the one run directory.
//!
//! Shard 0 feeds its own shard's messages in-process; the others arrive over their links.
//! One [`Aggregator`] merges them exactly as it merges local worker processes — histograms
//! added, never percentiles averaged — so the live `/metrics`, the progress line and the
//! guards all see the whole run. The hub also watches for silence: a shard whose link ends
//! without its closing report, or that sends nothing for
//! [`SILENCE_LIMIT`], is declared lost and the run goes on without it.

use std::collections::BTreeMap;
use std::time::Duration;

use surge_profile::Profile;
use surge_record::{Breach, RunDir, RunInfo, RunStatus};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, interval, sleep_until};

use super::barrier::Peer;
use super::link::Order;
use super::{BEAT_EVERY, Down, Gathered, LineWriter, SILENCE_LIMIT, Up};
use crate::coordinator::{Aggregator, Finished, finish_info, status_of};
use crate::wire::ShardMessage;
use crate::workers::ShardEvent;
use crate::{INTERRUPT_GRACE, RunError};

/// How the merged run came out.
pub struct Merged {
    pub finished: Finished,
    pub status: RunStatus,
    pub breach: Option<Breach>,
}

/// The coordinator's handle on the running hub.
pub struct Hub {
    local: mpsc::UnboundedSender<(u32, ShardEvent)>,
    stop: mpsc::UnboundedSender<String>,
    orders: watch::Receiver<Option<Order>>,
    task: JoinHandle<Result<Merged, RunError>>,
}

impl Hub {
    /// Starts merging into `agg` (whose directory holds `info`) the shards gathered.
    pub fn start(gathered: Gathered, agg: Aggregator, info: RunInfo, profile: Profile) -> Self {
        let (events_tx, events) = mpsc::unbounded_channel();
        let mut writers = BTreeMap::new();
        for peer in gathered.peers {
            writers.insert(peer.shard, follow(peer, events_tx.clone()));
        }
        let (stop, stop_rx) = mpsc::unbounded_channel();
        let (orders_tx, orders) = watch::channel(None);
        let run = Running {
            agg,
            events,
            stop: stop_rx,
            orders: orders_tx,
            writers,
            missing: gathered.missing,
            start: gathered.start,
            listener: gathered.listener,
        };
        let task = tokio::spawn(run.run(info, profile));
        Self {
            local: events_tx,
            stop,
            orders,
            task,
        }
    }

    /// Shard 0's own message, merged like the others.
    pub fn report(&self, message: &ShardMessage) {
        let _ = self
            .local
            .send((0, ShardEvent::Message(Box::new(message.clone()))));
    }

    /// Shard 0's own shard ended without finishing.
    pub fn local_gone(&self, why: String) {
        let _ = self.local.send((0, ShardEvent::Gone(why)));
    }

    /// Stops every shard (Ctrl-C on the coordinator).
    pub fn stop(&self, why: &str) {
        let _ = self.stop.send(why.to_string());
    }

    /// What the hub asks of shard 0's own shard (a merged guard broke).
    pub fn orders(&self) -> watch::Receiver<Option<Order>> {
        self.orders.clone()
    }

    /// Waits for every shard to finish or be lost; the merged run.
    pub async fn finish(self) -> Result<Merged, RunError> {
        drop(self.local);
        self.task
            .await
            .map_err(|e| RunError::CouldNotRun(format!("the coordinator's merge failed: {e}")))?
    }
}

/// Reads one remote shard's link into the hub's events; returns the sender of its orders.
fn follow(
    peer: Peer,
    events: mpsc::UnboundedSender<(u32, ShardEvent)>,
) -> mpsc::UnboundedSender<Down> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Down>();
    let Peer {
        shard,
        mut reader,
        mut writer,
        ..
    } = peer;
    tokio::spawn(async move {
        while let Some(down) = rx.recv().await {
            if writer.send(&down).await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        let mut finished = false;
        let end = loop {
            match reader.next::<Up>().await {
                Ok(Some(Up::Report { message })) => {
                    finished |= matches!(*message, ShardMessage::Finished(_));
                    let _ = events.send((shard, ShardEvent::Message(message)));
                }
                Ok(Some(_)) => {}
                Ok(None) => break "its connection ended".to_string(),
                Err(e) => break format!("its link broke ({e})"),
            }
        };
        if !finished {
            let why = format!("shard {shard} lost: {end} without its closing report");
            let _ = events.send((shard, ShardEvent::Lost(why)));
        }
    });
    tx
}

struct Running {
    agg: Aggregator,
    events: mpsc::UnboundedReceiver<(u32, ShardEvent)>,
    stop: mpsc::UnboundedReceiver<String>,
    orders: watch::Sender<Option<Order>>,
    writers: BTreeMap<u32, mpsc::UnboundedSender<Down>>,
    missing: Vec<u32>,
    start: Instant,
    listener: TcpListener,
}

impl Running {
    async fn run(mut self, mut info: RunInfo, profile: Profile) -> Result<Merged, RunError> {
        for &m in &self.missing {
            let why = format!("shard {m} never joined");
            self.agg.on_event(m, ShardEvent::Lost(why))?;
        }
        // Until its first report, a shard is as fresh as time zero.
        let mut heard: BTreeMap<u32, Instant> =
            self.writers.keys().map(|&i| (i, self.start)).collect();
        let mut check = interval(Duration::from_millis(100));
        let mut beat = interval(BEAT_EVERY);
        let mut interrupted = false;
        let mut stopping = false;
        let mut grace = std::pin::pin!(sleep_until(Instant::now() + Duration::MAX / 4));
        loop {
            tokio::select! {
                ev = self.events.recv() => match ev {
                    Some((i, ev)) => {
                        // Shard 0's own reports come in-process: only links can fall silent.
                        if let Some(t) = heard.get_mut(&i) {
                            *t = Instant::now();
                        }
                        self.agg.on_event(i, ev)?;
                        if self.agg.all_done() { break; }
                        if !stopping {
                            if let Some(b) = self.agg.breach().cloned() {
                                stopping = true;
                                self.stop_all(format!("{} measured {}", b.guard, b.measured), Some(b));
                                grace.as_mut().reset(Instant::now() + INTERRUPT_GRACE);
                            }
                        }
                    }
                    None => break,
                },
                _ = check.tick() => {
                    let now = Instant::now();
                    let silent: Vec<(u32, Duration)> = heard
                        .iter()
                        .filter(|(i, _)| !self.agg.is_done(**i))
                        .map(|(i, t)| (*i, now.saturating_duration_since(*t)))
                        .filter(|(_, quiet)| *quiet > SILENCE_LIMIT)
                        .collect();
                    for (i, quiet) in silent {
                        let why = format!("shard {i} lost: nothing from it for {:.1} s", quiet.as_secs_f64());
                        self.agg.on_event(i, ShardEvent::Lost(why))?;
                        // A silent shard may still be sending load: tell it to stop.
                        if let Some(w) = self.writers.get(&i) {
                            let _ = w.send(Down::Stop { why: "declared lost by the coordinator".into(), breach: None });
                        }
                    }
                    if self.agg.all_done() { break; }
                }
                _ = beat.tick() => {
                    for w in self.writers.values() {
                        let _ = w.send(Down::Beat);
                    }
                }
                Some(why) = self.stop.recv(), if !stopping => {
                    stopping = true;
                    interrupted = true;
                    self.stop_all(why, None);
                    grace.as_mut().reset(Instant::now() + INTERRUPT_GRACE);
                }
                accepted = self.listener.accept() => {
                    if let Ok((stream, addr)) = accepted {
                        refuse_late(stream);
                        self.agg.note(&format!("rendezvous: turned away {addr}: the run has started"));
                    }
                }
                _ = &mut grace => {
                    self.agg.problems.push("shards did not finish within 10 s of the stop".into());
                    break;
                }
            }
        }
        let breach = self.agg.breach().cloned();
        let dir: RunDir = self.agg.dir().clone();
        let finished = self.agg.finish(&profile)?;
        let status = status_of(
            !finished.dead.is_empty(),
            breach.is_some(),
            !finished.summary.lost_shards.is_empty(),
            interrupted || finished.interrupted,
        );
        info.breach = breach.clone();
        finish_info(&dir, &mut info, status)?;
        Ok(Merged {
            finished,
            status,
            breach,
        })
    }

    fn stop_all(&mut self, why: String, breach: Option<Breach>) {
        self.agg.note(&format!("stopping every shard: {why}"));
        for w in self.writers.values() {
            let _ = w.send(Down::Stop {
                why: why.clone(),
                breach: breach.clone(),
            });
        }
        let _ = self.orders.send(Some(Order::Stop { why, breach }));
    }
}

/// Tells a shard that connects after the start why it cannot join.
fn refuse_late(stream: tokio::net::TcpStream) {
    tokio::spawn(async move {
        let mut w = LineWriter::new(stream.into_split().1);
        let why = "the run has already started: a shard joining late would measure another \
                   window"
            .to_string();
        let _ = w.send(&Down::Refused { why }).await;
    });
}
