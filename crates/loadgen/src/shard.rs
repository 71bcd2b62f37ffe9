//! One shard: its share of the sessions, a lag probe and the one-second interval clock.
//!
//! A shard is one OS thread running its own single-threaded event loop ([`spawn`]), the way
//! wrk runs one event loop per thread: a session's timer, socket and recording all stay on
//! one core, with no work stealing and no cross-thread wake-ups (a work-stealing runtime
//! spent a quarter of the generator's CPU waking its other worker). More cores take more
//! shards (`--shards N`), each its own process.
//!
//! A shard owns the sessions whose global index is `index mod count`, so N shards together
//! run exactly the profile's sessions and rate without talking to each other; they share
//! only time zero. Every second the clock closes the interval (histograms, counter deltas,
//! sessions open, CPU) and sends it to the coordinator; at the end — or at Ctrl-C — it
//! closes the partial last interval, so nothing measured is lost.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use surge_profile::Profile;
use surge_protocol::Codec;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};

use crate::auth::Door;
use crate::catchup::CatchUp;
use crate::connect::{ConnectGate, Connector};
use crate::feed::Feed;
use crate::health::{thread_cpu_time, thread_cpu_wait};
use crate::plan::Plan;
use crate::recording::{CounterValues, Recording};
use crate::session::{self, Ctx};
use crate::wire::{IntervalReport, ShardFinal, ShardId, ShardMessage};

/// How often the lag probe wakes up. Under load every on-time send records its own lag
/// (session.rs), so the probe only has to cover quiet stretches: at 100 Hz its wake-ups
/// were ~7 % of the generator's CPU in the peer benchmark.
const PROBE_EVERY: Duration = Duration::from_millis(100);
/// Threads that open sockets for one shard (connect.rs: off the thread that times messages).
const BLOCKING_THREADS: usize = 4;
/// Length of one interval.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// Everything one shard needs.
#[derive(Debug, Clone)]
pub struct ShardSpec {
    pub profile: Profile,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub token: Option<String>,
    pub bind: Vec<IpAddr>,
    pub shard: ShardId,
    pub start_at: SystemTime,
}

/// The `Instant` that corresponds to a wall-clock time (now if it has passed).
fn instant_of(at: SystemTime) -> Instant {
    let now = Instant::now();
    match at.duration_since(SystemTime::now()) {
        Ok(ahead) => now + ahead,
        Err(_) => now,
    }
}

/// Starts the shard on a thread of its own with a single-threaded runtime; the thread ends
/// with [`run`]'s result ([`join`] waits for it).
pub fn spawn(
    spec: ShardSpec,
    out: UnboundedSender<ShardMessage>,
    stop: watch::Receiver<bool>,
) -> Result<std::thread::JoinHandle<Result<(), String>>, String> {
    let name = format!("surge-shard-{}", spec.shard.index);
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                // Sockets are opened on the blocking pool (connect.rs): a few threads
                // keep up with any connect rate, and bound the threads a ramp can start.
                .max_blocking_threads(BLOCKING_THREADS)
                .build()
                .map_err(|e| format!("cannot start the shard's runtime: {e}"))?
                .block_on(run(spec, out, stop))
        })
        .map_err(|e| format!("cannot start the shard thread: {e}"))
}

/// Waits for a shard's thread without blocking the caller's runtime: the shard's result,
/// or why it could not finish.
pub async fn join(thread: std::thread::JoinHandle<Result<(), String>>) -> Result<(), String> {
    match tokio::task::spawn_blocking(move || thread.join()).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) | Err(_) => Err("the shard thread panicked".to_string()),
    }
}

/// Runs the shard to the end of the profile (or until `stop`), sending its messages to `out`.
/// Call it on the shard's own thread ([`spawn`]): its CPU time is that thread's.
pub async fn run(
    spec: ShardSpec,
    out: UnboundedSender<ShardMessage>,
    stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let plan = Plan::new(&spec.profile);
    let start = instant_of(spec.start_at);
    let door = Door::open(&spec.profile, &spec.target, spec.token.as_deref()).await?;
    let connector = Connector::new(
        &spec.target,
        &spec.headers,
        door,
        spec.bind.clone(),
        plan.reply_timeout,
    )?;
    let (samples_tx, mut samples_rx) = unbounded_channel();
    let forward = {
        let out = out.clone();
        tokio::spawn(async move {
            while let Some(s) = samples_rx.recv().await {
                let _ = out.send(ShardMessage::Error(s));
            }
        })
    };
    let ctx = Arc::new(Ctx {
        gate: ConnectGate::new(plan.connect_rate / f64::from(spec.shard.count)),
        catch_up: CatchUp::new(start),
        shards: spec.shard.count,
        codec: Codec::for_profile(&spec.profile.protocol),
        unsolicited: spec.profile.protocol.unsolicited,
        keepalive: spec.profile.protocol.keepalive.clone(),
        rec: Recording::new(&plan.store_names(), spec.profile.goodput, start, samples_tx),
        feed: Feed::new(
            &spec.profile,
            &plan,
            u64::from(spec.shard.index),
            u64::from(spec.shard.count),
        ),
        plan,
        connector,
        start,
        stop: stop.clone(),
    });

    let all = ctx.plan.sessions();
    let mut sessions = JoinSet::new();
    for k in (u64::from(spec.shard.index)..all).step_by(spec.shard.count as usize) {
        sessions.spawn(session::run(ctx.clone(), k));
    }
    let probe = tokio::spawn(lag_probe(ctx.clone()));

    let mut clock = Clock::new(&ctx);
    let mut stop_rx = stop.clone();
    let mut done = false;
    while !done {
        let tick = start + INTERVAL * (clock.index as u32 + 1);
        let mut stopping = false;
        tokio::select! {
            _ = sleep_until(tick) => {}
            next = sessions.join_next() => {
                if next.is_some() { continue; }
                done = true;
            }
            _ = session::stopped(&mut stop_rx) => stopping = true,
        }
        if stopping {
            // Sessions close on their own (bounded by the close grace); then finish.
            while sessions.join_next().await.is_some() {}
            done = true;
        }
        let end = if done { start.elapsed() } else { tick - start };
        let _ = out.send(ShardMessage::Interval(clock.close(&ctx, end)));
    }
    probe.abort();
    let _ = probe.await;
    let final_msg = ShardFinal {
        tokens_per_s: ctx.rec.tokens_per_s(),
        upgrade_status: ctx
            .rec
            .upgrade_status()
            .into_iter()
            .map(|(status, n)| (status.to_string(), n))
            .collect(),
        closed_by_server: ctx
            .rec
            .closes_by_code()
            .into_iter()
            .map(|(code, n)| (code.to_string(), n))
            .collect(),
        goodput_by_scope: ctx.rec.goodput_by_scope(),
        interrupted: *stop.borrow(),
    };
    // Every session is gone, so the sample channel closes once `ctx` is dropped.
    drop(ctx);
    let _ = forward.await;
    let _ = out.send(ShardMessage::Finished(final_msg));
    Ok(())
}

/// Closes intervals: histograms, counter deltas, CPU.
struct Clock {
    index: u64,
    counted: CounterValues,
    cpu: Duration,
    wait: Duration,
}

impl Clock {
    fn new(ctx: &Ctx) -> Self {
        Self {
            index: 0,
            counted: ctx.rec.counters.values(),
            cpu: thread_cpu_time(),
            wait: thread_cpu_wait(),
        }
    }

    fn close(&mut self, ctx: &Ctx, end: Duration) -> IntervalReport {
        self.index += 1;
        let snapshot = ctx.rec.take_interval(end);
        let now = ctx.rec.counters.values();
        let counts = now.since(&self.counted);
        self.counted = now;
        let cpu = thread_cpu_time();
        let cpu_s = cpu.saturating_sub(self.cpu).as_secs_f64();
        self.cpu = cpu;
        let wait = thread_cpu_wait();
        let wait_s = wait.saturating_sub(self.wait).as_secs_f64();
        self.wait = wait;
        IntervalReport {
            index: self.index,
            snapshot,
            sessions_open: ctx.rec.counters.sessions_open.load(Ordering::Relaxed),
            counts,
            cpu_s,
            wait_s,
        }
    }
}

/// Wakes up every [`PROBE_EVERY`] and records how late it woke: the generator's own
/// scheduling lag, measured even while sessions are quiet.
async fn lag_probe(ctx: Arc<Ctx>) {
    let mut next = Instant::now().max(ctx.start) + PROBE_EVERY;
    loop {
        sleep_until(next).await;
        ctx.rec.lag(Instant::now().saturating_duration_since(next));
        next += PROBE_EVERY;
        let now = Instant::now();
        if next < now {
            next = now + PROBE_EVERY;
        }
    }
}
