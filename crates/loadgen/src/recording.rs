//! What one generator process records: latencies into an [`IntervalRecorder`] (one tag per
//! metric, plus per store and per model), counters, tokens/s per answer, error samples.
//!
//! Sessions record a whole answer under one short lock (collected while it streamed), so
//! the hot path stays one lock per message. The interval clock ([`crate::shard`]) takes the
//! interval's histograms and the counter deltas once a second.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use surge_profile::goodput::{AnswerTimes, Slos};
use surge_record::{
    ErrorSample, Histogram, IntervalRecorder, IntervalSnapshot, Metric, Tag, TagId, new_histogram,
};
use tokio::sync::mpsc::UnboundedSender;

use crate::errors::{ErrorClass, Failure};

/// Error samples kept per class and process (the run directory keeps a few of each).
pub const SAMPLES_PER_CLASS: u64 = 5;

/// Counters of one process since it started.
#[derive(Debug, Default)]
pub struct Counters {
    pub sessions_open: AtomicU64,
    pub sessions_opened: AtomicU64,
    pub sent: AtomicU64,
    pub completed: AtomicU64,
    pub late: AtomicU64,
    /// Messages that fell due but were never sent: the session's window closed first.
    pub unsent: AtomicU64,
    /// Frames that answered no message, counted (`[protocol] unsolicited = "count"`).
    pub unsolicited: AtomicU64,
    /// Connections opened by a session that had connected before in the same window.
    pub reconnects: AtomicU64,
    /// Keepalive frames and pings sent.
    pub keepalives: AtomicU64,
    /// Answers that met every `[goodput]` SLO.
    pub good: AtomicU64,
    /// Output tokens of the completed answers.
    pub tokens: AtomicU64,
    /// Messages whose user gave up waiting (`traffic.abandon_after`): not errors.
    pub abandoned: AtomicU64,
    /// Messages sent again after an error or a throttle (`traffic.retry_after_error`).
    pub retries: AtomicU64,
    /// Messages the generator made late (its own scheduling lag) that were paced to the
    /// planned rate instead of sent in a burst (catchup.rs).
    pub paced: AtomicU64,
    pub errors: [AtomicU64; ErrorClass::COUNT],
    samples: [AtomicU64; ErrorClass::COUNT],
}

/// A copy of the counters at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CounterValues {
    pub sessions_opened: u64,
    pub sent: u64,
    pub completed: u64,
    pub late: u64,
    pub unsent: u64,
    #[serde(default)]
    pub unsolicited: u64,
    #[serde(default)]
    pub reconnects: u64,
    #[serde(default)]
    pub keepalives: u64,
    #[serde(default)]
    pub good: u64,
    #[serde(default)]
    pub tokens: u64,
    #[serde(default)]
    pub abandoned: u64,
    #[serde(default)]
    pub retries: u64,
    #[serde(default)]
    pub paced: u64,
    pub errors: [u64; ErrorClass::COUNT],
}

impl Counters {
    pub fn values(&self) -> CounterValues {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CounterValues {
            sessions_opened: get(&self.sessions_opened),
            sent: get(&self.sent),
            completed: get(&self.completed),
            late: get(&self.late),
            unsent: get(&self.unsent),
            unsolicited: get(&self.unsolicited),
            reconnects: get(&self.reconnects),
            keepalives: get(&self.keepalives),
            good: get(&self.good),
            tokens: get(&self.tokens),
            abandoned: get(&self.abandoned),
            retries: get(&self.retries),
            paced: get(&self.paced),
            errors: std::array::from_fn(|i| get(&self.errors[i])),
        }
    }
}

impl CounterValues {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &CounterValues) -> CounterValues {
        CounterValues {
            sessions_opened: self.sessions_opened - earlier.sessions_opened,
            sent: self.sent - earlier.sent,
            completed: self.completed - earlier.completed,
            late: self.late - earlier.late,
            unsent: self.unsent - earlier.unsent,
            unsolicited: self.unsolicited - earlier.unsolicited,
            reconnects: self.reconnects - earlier.reconnects,
            keepalives: self.keepalives - earlier.keepalives,
            good: self.good - earlier.good,
            tokens: self.tokens - earlier.tokens,
            abandoned: self.abandoned - earlier.abandoned,
            retries: self.retries - earlier.retries,
            paced: self.paced - earlier.paced,
            errors: std::array::from_fn(|i| self.errors[i] - earlier.errors[i]),
        }
    }

    /// `self` and `other` together.
    pub fn plus(&self, other: &CounterValues) -> CounterValues {
        CounterValues {
            sessions_opened: self.sessions_opened + other.sessions_opened,
            sent: self.sent + other.sent,
            completed: self.completed + other.completed,
            late: self.late + other.late,
            unsent: self.unsent + other.unsent,
            unsolicited: self.unsolicited + other.unsolicited,
            reconnects: self.reconnects + other.reconnects,
            keepalives: self.keepalives + other.keepalives,
            good: self.good + other.good,
            tokens: self.tokens + other.tokens,
            abandoned: self.abandoned + other.abandoned,
            retries: self.retries + other.retries,
            paced: self.paced + other.paced,
            errors: std::array::from_fn(|i| self.errors[i] + other.errors[i]),
        }
    }
}

/// One complete answer, as a session saw it (all µs).
#[derive(Debug, Default)]
pub struct Answer<'a> {
    pub store: usize,
    pub model: Option<&'a str>,
    /// Intended send → first token (none when no token frame came).
    pub ttft: Option<u64>,
    /// Intended send → done.
    pub e2e: u64,
    /// Actual send → done.
    pub service: u64,
    /// Gaps between token frames.
    pub itl: &'a [u64],
    /// Tokens per second from the first token to done.
    pub tokens_per_s: Option<f64>,
    /// Time per output token after the first (none below two tokens).
    pub tpot: Option<u64>,
    /// Output tokens: the usage the done frame reports, else the tokens the frames carried.
    pub tokens: Option<u64>,
    /// Input tokens, when the done frame reports them.
    pub input_tokens: Option<u64>,
}

struct Base {
    e2e: TagId,
    ttft: TagId,
    itl: TagId,
    service: TagId,
    connect: TagId,
    lag: TagId,
    tpot: TagId,
    tokens: TagId,
    input_tokens: TagId,
}

/// Per-qualifier tags (a store or a model).
#[derive(Clone, Copy)]
struct Qualified {
    e2e: TagId,
    ttft: TagId,
}

struct Inner {
    rec: IntervalRecorder,
    base: Base,
    stores: Vec<Qualified>,
    models: HashMap<String, Qualified>,
    slos: Slos,
    /// Store names, in plan order.
    store_names: Vec<String>,
    /// Per store (plan order) and per model: (good answers, answers).
    store_good: Vec<(u64, u64)>,
    model_good: HashMap<String, (u64, u64)>,
    tokens_per_s: Histogram<u64>,
    upgrade_status: HashMap<u16, u64>,
    closed_by_server: HashMap<u16, u64>,
}

/// Everything a process records.
pub struct Recording {
    inner: Mutex<Inner>,
    pub counters: Counters,
    samples: UnboundedSender<ErrorSample>,
    start: tokio::time::Instant,
}

fn qualified(rec: &mut IntervalRecorder, name: &str) -> Option<Qualified> {
    Some(Qualified {
        e2e: rec.register(&Tag::qualified(Metric::E2e, name).ok()?),
        ttft: rec.register(&Tag::qualified(Metric::Ttft, name).ok()?),
    })
}

impl Recording {
    /// A recording whose intervals are offsets from `start`; `stores` in plan order.
    pub fn new(
        stores: &[&str],
        slos: Slos,
        start: tokio::time::Instant,
        samples: UnboundedSender<ErrorSample>,
    ) -> Self {
        let mut rec = IntervalRecorder::new(Duration::ZERO);
        let mut reg = |m: Metric| rec.register(&m.into());
        let base = Base {
            e2e: reg(Metric::E2e),
            ttft: reg(Metric::Ttft),
            itl: reg(Metric::Itl),
            service: reg(Metric::Service),
            connect: reg(Metric::Connect),
            lag: reg(Metric::Lag),
            tpot: reg(Metric::Tpot),
            tokens: reg(Metric::Tokens),
            input_tokens: reg(Metric::InputTokens),
        };
        let store_names: Vec<String> = stores.iter().map(|s| s.to_string()).collect();
        let stores = stores
            .iter()
            .map(|s| qualified(&mut rec, s).expect("store names are valid tags"))
            .collect();
        Self {
            inner: Mutex::new(Inner {
                rec,
                base,
                stores,
                models: HashMap::new(),
                slos,
                store_good: vec![(0, 0); store_names.len()],
                store_names,
                model_good: HashMap::new(),
                tokens_per_s: new_histogram(),
                upgrade_status: HashMap::new(),
                closed_by_server: HashMap::new(),
            }),
            counters: Counters::default(),
            samples,
            start,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn answer(&self, a: &Answer<'_>) {
        let mut g = self.lock();
        let inner = &mut *g;
        let model = a.model.and_then(|m| match inner.models.get(m) {
            Some(q) => Some(*q),
            None => {
                let q = qualified(&mut inner.rec, m)?;
                inner.models.insert(m.to_string(), q);
                Some(q)
            }
        });
        let store = inner.stores.get(a.store).copied();
        let rec = &mut inner.rec;
        rec.record(inner.base.e2e, a.e2e);
        rec.record(inner.base.service, a.service);
        for q in [store, model].into_iter().flatten() {
            rec.record(q.e2e, a.e2e);
            if let Some(t) = a.ttft {
                rec.record(q.ttft, t);
            }
        }
        if let Some(t) = a.ttft {
            rec.record(inner.base.ttft, t);
        }
        for &gap in a.itl {
            rec.record(inner.base.itl, gap);
        }
        if let Some(tps) = a.tokens_per_s.filter(|t| t.is_finite() && *t >= 0.0) {
            let _ = inner.tokens_per_s.record(tps.round().max(1.0) as u64);
        }
        for (id, v) in [
            (inner.base.tpot, a.tpot),
            (inner.base.tokens, a.tokens),
            (inner.base.input_tokens, a.input_tokens),
        ] {
            if let Some(v) = v {
                rec.record(id, v);
            }
        }
        if inner.slos.any() {
            let good = inner.slos.good(&AnswerTimes {
                ttft_us: a.ttft,
                e2e_us: a.e2e,
                tpot_us: a.tpot,
            });
            let tally = |t: &mut (u64, u64)| {
                t.0 += u64::from(good);
                t.1 += 1;
            };
            if let Some(t) = inner.store_good.get_mut(a.store) {
                tally(t);
            }
            if let Some(m) = a.model {
                // Looked up before inserting: no allocation per answer on the hot path.
                match inner.model_good.get_mut(m) {
                    Some(t) => tally(t),
                    None => {
                        let mut t = (0, 0);
                        tally(&mut t);
                        inner.model_good.insert(m.to_string(), t);
                    }
                }
            }
            if good {
                self.counters.good.fetch_add(1, Ordering::Relaxed);
            }
        }
        drop(g);
        self.counters
            .tokens
            .fetch_add(a.tokens.unwrap_or(0), Ordering::Relaxed);
        self.counters.completed.fetch_add(1, Ordering::Relaxed);
    }

    /// Goodput per store and model: `store:NAME` / `model:NAME` → (good answers, answers).
    pub fn goodput_by_scope(&self) -> BTreeMap<String, (u64, u64)> {
        let g = self.lock();
        let stores = g
            .store_names
            .iter()
            .zip(&g.store_good)
            .filter(|(_, t)| t.1 > 0)
            .map(|(s, t)| (format!("store:{s}"), *t));
        let models = g.model_good.iter().map(|(m, t)| (format!("model:{m}"), *t));
        stores.chain(models).collect()
    }

    pub fn connected(&self, took: Duration) {
        let mut g = self.lock();
        let id = g.base.connect;
        g.rec.record(id, micros(took));
    }

    /// Scheduling lag: how late a timer fired.
    pub fn lag(&self, lag: Duration) {
        let mut g = self.lock();
        let id = g.base.lag;
        g.rec.record(id, micros(lag));
    }

    /// Counts a failure and keeps a sample of the first few of its class.
    pub fn error(&self, f: &Failure) {
        let i = f.class.index();
        self.counters.errors[i].fetch_add(1, Ordering::Relaxed);
        if let Some(status) = f.status {
            *self.lock().upgrade_status.entry(status).or_default() += 1;
        }
        if self.counters.samples[i].fetch_add(1, Ordering::Relaxed) < SAMPLES_PER_CLASS {
            let _ = self.samples.send(ErrorSample {
                t_s: self.start.elapsed().as_secs_f64(),
                class: f.class.name().to_string(),
                message: f.message.clone(),
                detail: f.status.map(|s| serde_json::json!({ "status": s })),
            });
        }
    }

    /// Closes the interval at `end` (offset from the start) and hands its histograms over
    /// (the coordinator keeps the totals).
    pub fn take_interval(&self, end: Duration) -> IntervalSnapshot {
        let mut g = self.lock();
        let end = end.max(g.rec.interval_start());
        g.rec
            .drain_interval(end)
            .expect("interval ends never go backwards")
    }

    pub fn tokens_per_s(&self) -> Histogram<u64> {
        self.lock().tokens_per_s.clone()
    }

    pub fn upgrade_status(&self) -> HashMap<u16, u64> {
        self.lock().upgrade_status.clone()
    }

    /// Counts a connection the server ended, by close code (1006: no close frame).
    pub fn closed_by_server(&self, code: u16) {
        *self.lock().closed_by_server.entry(code).or_default() += 1;
    }

    pub fn closes_by_code(&self) -> HashMap<u16, u64> {
        self.lock().closed_by_server.clone()
    }
}

pub fn micros(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}
