//! The engine: the model's route of a turn ([`surge_model::turn`]) driven as events.
//!
//! A message arrives (gateway admission, auth), waits for an orchestrator worker (or a
//! Lambda burst worker when the queue is deep), is classified, loads conversation memory
//! from DynamoDB, fans out to the product cache and retrieval, asks the semantic cache,
//! calls Bedrock, passes guardrails and formatting, and travels back over the network;
//! after the answer its memory is written. Only contended steps are events: the
//! orchestrator queue and Bedrock quotas; every uncontended latency in between is drawn
//! and added to the next event's time. Two more shortcuts keep a typical turn at two or
//! three events:
//!
//! - *Charging ahead.* DynamoDB requests are charged to the table's capacity when the turn
//!   reaches them in the handler before (the end of orchestration, the answer), stamped
//!   with their due time. The capacity's token bucket only refills forwards, so requests
//!   due within a few hundred milliseconds of each other are served in the order they
//!   were issued rather than due; the units admitted per second are the same. Throttled
//!   requests retry through events, as the SDK would.
//! - *Same-interval answers.* An answer that lands before the current hlog interval (and
//!   timeline minute) closes is recorded at once instead of through an event: every
//!   output is per interval, so nothing observable changes.
//!
//! Periodic events drive connections and capacity growth (every second), autoscaling
//! (every datapoint) and the outputs.
//!
//! Users react as the load generator's do (`[traffic] abandon_after`, `retry_after_error`,
//! see `surge_loadgen::session`). A user gives up on an answer not landed `abandon_after`
//! after the intended time: the message counts as abandoned, not in the latencies, but the
//! system still does all its work (nothing tells the orchestrator or Bedrock the user
//! left), so the capacity it spends is spent. The user's session is free from the moment
//! they gave up: with `abandon_after` set, each message sent has one more event, when its
//! user's patience ends (a no-op if the answer came first), so the next message goes out
//! then, as the generator sends it. After a failure the
//! user sends the same text again once, `retry_after_error` later: another arrival, kept in
//! a heap beside the arrival process. A failure the user has given up on already is
//! counted abandoned, like the late error frame the generator drops.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use surge_model::draw;
use surge_model::orchestrator::WorkerShare;
use surge_model::turn;
use surge_profile::{Dist, Duration, Profile, Schedule, SystemModel};

use crate::SimError;

mod route;
use crate::arrivals::Arrivals;
use crate::consumption::Consumption;
use crate::early_stop::EarlyStop;
use crate::message::{NO_SESSION, Slab};
use crate::output::Output;
use crate::plan::Plan;
use crate::progress::Progress;
use crate::queue::EventQueue;
use crate::report::{Connections, Peaks};
use crate::rng::Stream;
use crate::sessions::Sessions;
use crate::stats::{Counters, ErrorClass, Latencies, Step, StepTimes};
use crate::streams::Streams;
use crate::timeline::{Layers, MinuteSampler};
use surge_model::autoscaling::TargetTracking;
use surge_model::bedrock;
use surge_model::burst::Burst;
use surge_model::dynamodb::Table;
use surge_model::gateway::{self, Gateway, TICK};
use surge_model::orchestrator::{Integrals, Orchestrator};
use surge_model::time::{MINUTE, Nanos, SECOND, nanos};

/// How long in-flight messages may take to finish after the last arrival.
pub const DRAIN: Nanos = 10 * MINUTE;

#[derive(Debug, Clone, Copy)]
enum Event {
    /// An autoscaling datapoint.
    Datapoint,
    TaskReady,
    /// The message reaches the orchestrator.
    Orchestrate(u32),
    CpuDone(u32),
    BurstDone(u32),
    MemoryRead(u32),
    LlmStart(u32),
    LlmEnd(u32),
    Done(u32),
    MemoryWrite(u32),
    /// The user of the message gives up waiting (`traffic.abandon_after`).
    GiveUp(u32),
}

/// A message its user will send again after a failure: when, and as which message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Retry {
    t0: Nanos,
    session: u32,
    store: u8,
    intent: u8,
    stage: u8,
}

/// The ECS service: its workers and queue, its scaling policy and the bookkeeping of both.
struct Ecs {
    service: Orchestrator,
    scaling: TargetTracking,
    share: WorkerShare,
}

/// How to run: everything but the profile, the seed and the output.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// Messages sent before this are simulated but not measured.
    pub warmup: Nanos,
    /// Length of one hlog interval.
    pub hlog_interval: Nanos,
    pub progress: bool,
}

/// What [`Sim::run`] hands back.
pub(crate) struct Finished {
    pub counters: Counters,
    pub steps: StepTimes,
    pub latencies: Latencies,
    pub peaks: Peaks,
    pub events: u64,
    /// Simulated time at which the run ended (arrivals end + drain).
    pub ended: Nanos,
    /// Time-average orchestrator queue length after the warm-up.
    pub queue_mean: f64,
    pub sessions: u64,
    /// What the gateway did with the connections.
    pub connections: Connections,
    pub consumption: Consumption,
    /// ECS task-seconds over the whole run (for cost).
    pub task_seconds: f64,
    pub output: Option<Output>,
    /// Why the run stopped before its end (a threshold could no longer hold).
    pub stopped_early: Option<String>,
    /// Messages sent after their intended time (their session was busy).
    pub late: u64,
}

pub(crate) struct Sim<'p> {
    sys: &'p SystemModel,
    plan: Plan,
    schedule: Schedule,
    end: Nanos,
    warmup: Nanos,
    hlog_interval: Nanos,
    /// The next hlog interval or timeline minute boundary (set every tick).
    recording_until: Nanos,
    /// The next multiple of the hlog interval and of a minute after the last tick (0
    /// before the first): a tick reaching one closes it, without dividing every second.
    next_interval: Nanos,
    next_minute: Nanos,
    /// Until when `wanted` and `rate` hold: the end of the flat schedule piece they were
    /// read in (0: read them again at the next tick).
    levels_until: Nanos,
    /// Messages per second the schedule wants (read with `wanted`, when idle connections
    /// can close).
    rate: f64,
    /// The next tick's time. Ticks are kept beside the event queue, one at a time, and run
    /// after every event due at the same nanosecond (before arrivals due then).
    next_tick: Option<Nanos>,
    reply_timeout: Nanos,
    /// How long users wait from the intended time before giving up.
    abandon_after: Option<Nanos>,
    /// How long after a failure users send the text again.
    retry_after: Option<Dist<Duration>>,
    /// Retries not yet due, earliest first.
    retries: BinaryHeap<Reverse<Retry>>,
    /// A constant auth latency in front of the orchestrator: arrivals are handled that
    /// much later instead of through an event (arrival order is kept, so nothing changes).
    auth_folded: Nanos,
    /// Sessions the schedule wants open (updated every second).
    wanted: f64,
    now: Nanos,
    stopped: bool,
    events: EventQueue<Event>,
    arrivals: Arrivals,
    msgs: Slab,
    sessions: Sessions,
    rng: Streams,
    gateway: Gateway,
    /// Whether the idle timeout can close connections (no keepalive holds them).
    idle_binds: bool,
    /// Output tokens per `@connections` post, when streamed answers are posted in chunks.
    chunk: Option<u32>,
    connections: Connections,
    /// Gateway closes counted by the last timeline minute.
    closes_before_minute: u64,
    ecs: Option<Ecs>,
    burst: Option<Burst>,
    table: Option<Table>,
    bedrock: Option<bedrock::Capacity>,
    /// Serving slots per model (`None`: the model serves every call at once).
    slots: Vec<Option<Orchestrator>>,
    /// Messages each session has sent, when the context grows with them.
    turns: Option<Vec<u8>>,
    counters: Counters,
    consumption: Consumption,
    steps: StepTimes,
    lat: Latencies,
    sampler: MinuteSampler,
    warm_integrals: Option<Integrals>,
    sessions_opened: u64,
    processed: u64,
    ready: Vec<u32>,
    progress: Progress,
    output: Option<Output>,
    early_stop: Option<EarlyStop>,
    stopped_early: Option<String>,
}

impl<'p> Sim<'p> {
    pub fn new(
        profile: &'p Profile,
        plan: &Plan,
        seed: u64,
        settings: Settings,
        output: Option<Output>,
        early_stop: Option<EarlyStop>,
    ) -> Result<Self, SimError> {
        let sys = &profile.system;
        let plan = plan.clone();
        let consumption = Consumption::new(&plan);
        let Settings {
            warmup,
            hlog_interval,
            progress,
        } = settings;
        let schedule = profile.schedule();
        let rng = Streams::new(seed);
        let arrivals = Arrivals::new(&profile.traffic, &schedule, Stream::new(seed, "arrivals"));
        let o = &sys.orchestrator;
        let ecs = o.enabled.then(|| Ecs {
            service: Orchestrator::new(o.initial_tasks, o.workers_per_task),
            scaling: TargetTracking::new(o),
            share: WorkerShare::new(o),
        });
        let burst = (o.enabled && sys.burst.enabled).then(|| Burst::new(&sys.burst));
        let table = sys.memory.enabled.then(|| Table::new(&sys.memory));
        let bedrock = sys
            .bedrock
            .enabled
            .then(|| bedrock::Capacity::new(plan.models.iter().map(|m| &m.model)));
        let slots = plan
            .models
            .iter()
            .map(|m| bedrock::slots(&m.model, 1.0))
            .collect();
        let end = nanos(profile.duration);
        // A turn costs two to four events (see the module docs).
        let events_per_second = 3.0 * schedule.peak_rate();
        let mut sim = Self {
            sys,
            lat: Latencies::new(&plan),
            sampler: MinuteSampler::new(&plan),
            plan,
            schedule,
            end,
            warmup,
            hlog_interval: hlog_interval.max(SECOND) / SECOND * SECOND,
            recording_until: 0,
            next_interval: 0,
            next_minute: 0,
            levels_until: 0,
            rate: 0.0,
            next_tick: None,
            reply_timeout: nanos(profile.traffic.reply_timeout),
            abandon_after: profile.traffic.abandon_after.map(nanos),
            retry_after: profile.traffic.retry_after_error.clone(),
            retries: BinaryHeap::new(),
            auth_folded: if sys.gateway.enabled && sys.gateway.auth.is_constant() {
                draw::latency(&sys.gateway.auth, &mut Stream::new(seed, "auth"))
            } else {
                0
            },
            wanted: 0.0,
            now: 0,
            stopped: false,
            events: EventQueue::for_rate(events_per_second),
            arrivals,
            msgs: Slab::default(),
            sessions: Sessions::default(),
            rng,
            gateway: Gateway::new(&sys.gateway, sys.bedrock.streaming),
            idle_binds: !gateway::keepalive_holds(
                &sys.gateway,
                profile.protocol.keepalive.as_ref(),
            ),
            chunk: sys
                .gateway
                .enabled
                .then(|| gateway::chunk(&sys.gateway, sys.bedrock.streaming))
                .flatten(),
            connections: Connections::default(),
            closes_before_minute: 0,
            ecs,
            burst,
            table,
            bedrock,
            slots,
            turns: sys.prompt.history.is_some().then(Vec::new),
            counters: Counters::default(),
            consumption,
            steps: StepTimes::default(),
            warm_integrals: None,
            sessions_opened: 0,
            processed: 0,
            ready: Vec::new(),
            progress: Progress::new(progress, end),
            output,
            early_stop,
            stopped_early: None,
        };
        sim.next_tick = Some(0);
        if let Some(ecs) = &sim.ecs {
            if ecs.scaling.enabled() {
                sim.events.push(ecs.scaling.period(), Event::Datapoint);
            }
        }
        Ok(sim)
    }

    /// Runs the scenario to its end and the in-flight messages to completion.
    pub fn run(mut self) -> Result<Finished, SimError> {
        while !self.stopped {
            // A message due at t0 is handled at t0 + the folded auth latency.
            let scheduled = self.arrivals.peek();
            let retry = self.retries.peek().map(|r| r.0.t0);
            let (due, is_retry) = match (scheduled, retry) {
                (Some(s), Some(r)) if r < s => (Some(r), true),
                (None, Some(r)) => (Some(r), true),
                (s, _) => (s, false),
            };
            let queued = self.events.peek_time();
            let tick = self.next_tick.filter(|&t| queued.is_none_or(|e| t < e));
            let next = tick.or(queued);
            match due {
                Some(t0) if next.is_none_or(|e| t0 + self.auth_folded < e) => {
                    if is_retry {
                        self.retry_arrival();
                    } else {
                        self.arrival(t0);
                    }
                }
                _ if tick.is_some() => {
                    self.next_tick = None;
                    self.now = tick.expect("checked");
                    self.tick()?;
                }
                _ => {
                    let Some((t, ev)) = self.events.pop() else {
                        break;
                    };
                    self.now = t;
                    self.dispatch(ev)?;
                }
            }
            self.processed += 1;
        }
        self.progress.finish();
        if self.output.is_none() {
            // Nothing was written per interval: fold the whole run into the totals.
            self.lat.settle()?;
            self.lat
                .recorder
                .fold_interval(std::time::Duration::from_nanos(self.now))?;
        }
        let unfinished = self.msgs.in_use() as u64;
        self.counters.errors[ErrorClass::Unfinished as usize] += unfinished;
        let queue_mean = match (&mut self.ecs, self.warm_integrals) {
            (Some(ecs), Some(warm)) => ecs.service.integrals(self.now).queue_since(&warm),
            _ => 0.0,
        };
        let peaks = self.sampler.peaks(
            &self.plan,
            self.burst.as_ref(),
            self.table.as_ref(),
            self.bedrock.as_ref(),
        );
        let task_seconds = match &mut self.ecs {
            Some(ecs) => {
                // The integral is in worker-nanoseconds.
                let workers = f64::from(sys_workers_per_task(self.sys));
                ecs.service.integrals(self.now).workers / workers / SECOND as f64
            }
            None => 0.0,
        };
        Ok(Finished {
            consumption: self.consumption,
            task_seconds,
            counters: self.counters,
            steps: self.steps,
            latencies: self.lat,
            peaks,
            events: self.processed,
            ended: self.now,
            queue_mean,
            sessions: self.sessions_opened,
            connections: Connections {
                opened: self.gateway.opened,
                closed_max_connection: self.gateway.reconnects - self.gateway.idle_closes,
                closed_idle: self.gateway.idle_closes,
                ..self.connections
            },
            output: self.output,
            stopped_early: self.stopped_early,
            late: self.sessions.late,
        })
    }

    fn dispatch(&mut self, ev: Event) -> Result<(), SimError> {
        match ev {
            Event::Datapoint => self.datapoint(),
            Event::TaskReady => self.task_ready(),
            Event::Orchestrate(m) => self.orchestrate(m),
            Event::CpuDone(m) => self.cpu_done(m),
            Event::BurstDone(m) => {
                if let Some(b) = &mut self.burst {
                    b.release(self.now);
                }
                self.after_orchestration(m, self.now);
            }
            Event::MemoryRead(m) => self.memory_read(m, self.now),
            Event::LlmStart(m) => self.llm_start(m),
            Event::LlmEnd(m) => self.llm_end(m),
            Event::Done(m) => self.done(m, self.now),
            Event::MemoryWrite(m) => self.memory_write(m, self.now),
            Event::GiveUp(m) => self.give_up(m),
        }
        Ok(())
    }

    #[inline]
    fn at(&mut self, t: Nanos, ev: Event) {
        self.events.push(t, ev);
    }

    /// End of the hlog interval and timeline minute being recorded, whichever comes
    /// first. Anything that happens to a message before then and touches no contended
    /// resource can be done now, without an event: the outputs cannot tell the difference.
    #[inline]
    fn interval_end(&self) -> Nanos {
        self.recording_until
    }

    fn step(&mut self, m: u32, step: Step, t: Nanos) {
        if self.msgs[m].measured {
            self.steps.add(step, t);
        }
    }

    /// Message `m` fails at `t` (its user gets the error then, unless answered already):
    /// an error the user retries, or nothing to a user who gave up already.
    fn fail(&mut self, m: u32, class: ErrorClass, t: Nanos) {
        if !self.abandons(m, t) {
            self.counters.error(class);
            self.retry_later(m, t);
        }
        self.release_session(m, t);
        self.msgs.remove(m);
    }

    /// Whether the user of `m` has given up on it by `t`: counted once, when first seen
    /// (by [`give_up`](Self::give_up), or by an answer or a failure recorded ahead of the
    /// clock, before that event).
    fn abandons(&mut self, m: u32, t: Nanos) -> bool {
        let msg = &mut self.msgs[m];
        if msg.abandoned {
            return true;
        }
        let late = self
            .abandon_after
            .is_some_and(|a| t.saturating_sub(msg.t0) > a);
        if late {
            msg.abandoned = true;
            self.counters.abandoned += 1;
        }
        late
    }

    /// The patience of the user of `m` ends now: unless the answer or an error reached
    /// them, they give up and their session is free. The slot may hold a later message by
    /// now; its time tells (a later message's patience ends later).
    fn give_up(&mut self, m: u32) {
        let Some(a) = self.abandon_after else {
            return;
        };
        let msg = &self.msgs[m];
        if msg.session == NO_SESSION || msg.abandoned || msg.t0 + a > self.now {
            return;
        }
        self.msgs[m].abandoned = true;
        self.counters.abandoned += 1;
        self.release_session(m, self.now);
    }

    /// The user of `m`, which failed at `t`, sends it again later (once, if users retry;
    /// not after the traffic ends).
    fn retry_later(&mut self, m: u32, t: Nanos) {
        let msg = &self.msgs[m];
        let Some(after) = self.retry_after.as_ref().filter(|_| !msg.retry) else {
            return;
        };
        let t0 = t + draw::latency(after, &mut self.rng.retry);
        if t0 < self.end {
            self.retries.push(Reverse(Retry {
                t0,
                session: msg.session,
                store: msg.store,
                intent: msg.intent,
                stage: msg.stage,
            }));
        }
    }

    /// The earliest time a message not yet arrived can be due (scheduled or a retry).
    fn horizon(&self) -> Nanos {
        let scheduled = self.arrivals.peek().unwrap_or(Nanos::MAX);
        self.retries
            .peek()
            .map_or(scheduled, |r| r.0.t0.min(scheduled))
    }

    // ---- the orchestrator's own events ---------------------------------------------

    fn task_ready(&mut self) {
        let ecs = self.ecs.as_mut().expect("orchestrator enabled");
        let mut ready = std::mem::take(&mut self.ready);
        ready.extend(ecs.service.task_ready(self.now));
        for &m in &ready {
            self.serve(m);
        }
        ready.clear();
        self.ready = ready;
    }

    fn datapoint(&mut self) {
        let now = self.now;
        let ecs = self
            .ecs
            .as_mut()
            .expect("scheduled only with an orchestrator");
        for _ in 0..ecs.scaling.evaluate(now, &mut ecs.service) {
            let start = turn::task_start(self.sys, &mut self.rng);
            self.events.push(now + start, Event::TaskReady);
        }
        if !self.stopped {
            let period = ecs.scaling.period();
            self.at(now + period, Event::Datapoint);
        }
    }

    // ---- once per simulated second -------------------------------------------------

    /// Once a simulated second. Without a gateway, a table or an early stop, a second inside
    /// a flat piece of the schedule, before the next minute, interval, warm-up or end,
    /// changes nothing but the connection-seconds it adds: such a second is quiet, and its
    /// tick is skipped. An M/M/1 run simulates as many seconds as customers, so running
    /// those ticks cost as much as a third of its loop turns (14 % of its time). The
    /// quiet seconds' connection-seconds are added at once (whole numbers, so the sum is
    /// the same to the bit) and each still counts as an event, so runs are the same as
    /// with every tick run: a tick orders by its time alone, after every event due at
    /// the same nanosecond, so a skipped one has no place in the order to keep. Answers
    /// recorded ahead of the clock free their sessions at the next tick run instead,
    /// which no arrival can tell (see [`Sessions::forget_landed`]).
    fn tick(&mut self) -> Result<(), SimError> {
        let now = self.now;
        if now >= self.levels_until {
            let t = Duration::from_nanos(now);
            self.wanted = self.schedule.sessions_at(t);
            if self.idle_binds {
                self.rate = self.schedule.rate_at(t);
            }
            self.levels_until = self.schedule.flat_until(t).map_or(0, nanos);
        }
        let before = self.gateway.connected();
        self.count_connected(before, 1);
        // Each connected session's messages, the only frames that reset its idle clock.
        let heard = self.idle_binds.then(|| {
            if self.wanted >= 1.0 {
                self.rate / self.wanted
            } else {
                0.0
            }
        });
        self.gateway.tick(now, self.wanted.round() as u64, heard);
        self.sessions_opened += self.gateway.connected().saturating_sub(before);
        let c = &mut self.connections;
        c.peak_backlog = c.peak_backlog.max(self.gateway.connect_backlog);
        c.backlog_session_seconds += self.gateway.connect_backlog;
        if let Some(table) = &mut self.table {
            table.tick(now);
        }
        self.sessions.forget_landed(self.horizon());
        if self.warm_integrals.is_none() && now >= self.warmup {
            self.warm_integrals = self.ecs.as_mut().map(|e| e.service.integrals(now));
        }
        if let Some(why) = self
            .early_stop
            .as_ref()
            .and_then(|s| s.violated(self.counters.errors_total()))
        {
            self.stopped_early = Some(why);
        }
        let over = self.stopped_early.is_some()
            || (now >= self.end && (self.msgs.in_use() == 0 || now >= self.end + DRAIN));
        let minute_ends = boundary(&mut self.next_minute, now, MINUTE);
        let interval_ends = boundary(&mut self.next_interval, now, self.hlog_interval);
        if now > 0 && (minute_ends || over) {
            self.sample_minute(now)?;
        }
        if now > 0 && (interval_ends || over) {
            if let Some(out) = &mut self.output {
                self.lat.settle()?;
                out.close_interval(&mut self.lat.recorder, now)?;
            }
        }
        self.recording_until = self.next_interval.min(self.next_minute);
        self.progress.update(now, self.processed);
        if over {
            self.stopped = true;
        } else {
            self.next_tick = Some(self.skip_quiet_seconds(now));
        }
        Ok(())
    }

    /// The time of the next tick to run after the one at `now`: the next second, or the
    /// first second after `now`'s quiet ones ([`Sim::tick`]), which are counted here.
    fn skip_quiet_seconds(&mut self, now: Nanos) -> Nanos {
        let quiet_until = self.quiet_until(now);
        if quiet_until <= now + TICK {
            return now + TICK;
        }
        let ahead = (quiet_until - now).div_ceil(TICK);
        let quiet = ahead - 1;
        self.count_connected(self.gateway.connected(), quiet);
        self.processed += quiet;
        now + ahead * TICK
    }

    /// Adds `ticks` ticks of `connected` sessions to the connection-seconds (whole numbers,
    /// so adding many ticks at once gives the sum of adding them one by one, to the bit).
    fn count_connected(&mut self, connected: u64, ticks: u64) {
        self.consumption.connection_seconds +=
            connected as f64 * (TICK as f64 / SECOND as f64) * ticks as f64;
    }

    /// Until when the seconds after `now` change nothing but connection-seconds (0: the
    /// next one may).
    fn quiet_until(&self, now: Nanos) -> Nanos {
        if self.gateway.enabled() || self.table.is_some() || self.early_stop.is_some() {
            return 0;
        }
        let mut until = self.levels_until.min(self.recording_until).min(self.end);
        if now < self.warmup {
            until = until.min(self.warmup);
        }
        until
    }

    fn sample_minute(&mut self, now: Nanos) -> Result<(), SimError> {
        let ecs = self.ecs.as_mut().map(|e| {
            let integrals = e.service.integrals(now);
            (&mut e.service, integrals)
        });
        let layers = Layers {
            connected: self.gateway.connected(),
            backlog: self.gateway.connect_backlog,
            opened: self.gateway.opened,
            closed_by_gateway: self.gateway.reconnects,
            in_flight: self.msgs.in_use(),
            ecs,
            burst: self.burst.as_mut(),
            table: self.table.as_mut(),
            bedrock: self.bedrock.as_mut(),
        };
        let row = self.sampler.sample(now, &self.counters, layers);
        let closes = self.gateway.reconnects - self.closes_before_minute;
        self.closes_before_minute = self.gateway.reconnects;
        let c = &mut self.connections;
        if closes > c.peak_closes_per_minute {
            (c.peak_closes_per_minute, c.peak_closes_at_s) = (closes, now / SECOND);
        }
        if let Some(out) = &mut self.output {
            out.timeline_row(&row)?;
        }
        Ok(())
    }
}

/// Whether `now` is a multiple of `period`, given `next`, the first multiple after the
/// previous call's `now` (0 before the first call), which it moves past `now`: one
/// comparison a call instead of two divisions.
#[inline]
fn boundary(next: &mut Nanos, now: Nanos, period: Nanos) -> bool {
    if now < *next {
        return false;
    }
    *next = (now / period + 1) * period;
    now % period == 0
}

fn sys_workers_per_task(sys: &SystemModel) -> u32 {
    sys.orchestrator.workers_per_task.max(1)
}
