//! Streaming statistics of a run: latency histograms, counters and time per step.
//!
//! Nothing here grows with the number of messages: latencies go into fixed-size HDR
//! histograms (the run directory's per-interval ones, plus per-stage and queue-wait
//! histograms for the report), everything else is a counter. Values are counted per
//! histogram bucket as they come ([`Tally`], an index and an add) and handed to their
//! histograms once per interval by [`Latencies::settle`], which leaves the histograms as
//! recording each value would.

use hdrhistogram::Histogram;
use surge_profile::goodput::{AnswerTimes, Slos};
use surge_record::{IntervalRecorder, Metric, Tag, TagId, Tally, new_histogram};

use crate::plan::Plan;
use surge_model::time::{Nanos, as_f64, micros};

macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub const fn name(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

named_enum! {
    /// A step of the pipeline, for "where the time went".
    Step {
        Auth => "auth",
        Queue => "orchestrator_queue",
        Orchestrator => "orchestrator_cpu",
        Burst => "lambda_burst",
        Precomputed => "precomputed",
        Classifier => "classifier",
        Memory => "memory",
        FanOut => "fan_out",
        SemanticCache => "semantic_cache",
        Llm => "llm",
        Guardrails => "guardrails",
        Format => "format",
        Network => "network",
    }
}

named_enum! {
    /// Why a message failed (the `errors_<class>` columns and `errors` of summary.json).
    ErrorClass {
        GatewayUser => "gateway_user_limit",
        GatewayAccount => "gateway_account_limit",
        DynamodbRead => "dynamodb_read",
        DynamodbWrite => "dynamodb_write",
        Bedrock => "bedrock_throttled",
        Timeout => "timeout",
        Unfinished => "unfinished",
    }
}

/// Total time spent in each step and how many messages went through it.
#[derive(Debug, Clone, Default)]
pub struct StepTimes {
    pub nanos: [u64; Step::ALL.len()],
    /// Messages for which the step took any time.
    pub count: [u64; Step::ALL.len()],
    /// Messages measured (admitted after the warm-up).
    pub measured: u64,
}

impl StepTimes {
    #[inline]
    pub fn add(&mut self, step: Step, t: Nanos) {
        if t > 0 {
            self.nanos[step as usize] += t;
            self.count[step as usize] += 1;
        }
    }
}

/// Counts since the start; the timeline writes differences of two snapshots.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    pub sent: u64,
    pub completed: u64,
    pub errors: [u64; ErrorClass::ALL.len()],
    pub cache_lookups: u64,
    pub cache_hits: u64,
    pub semantic_lookups: u64,
    pub semantic_hits: u64,
    pub precomputed: u64,
    pub llm_calls: u64,
    pub burst_invocations: u64,
    pub memory_retries: u64,
    /// Answers meeting every `[goodput]` SLO.
    pub good: u64,
    /// Output tokens of the answers.
    pub tokens: u64,
    /// Messages whose user gave up waiting (`traffic.abandon_after`): not errors.
    pub abandoned: u64,
    /// Messages sent again after a failure (`traffic.retry_after_error`), also in `sent`.
    pub retries: u64,
}

impl Counters {
    pub fn error(&mut self, class: ErrorClass) {
        self.errors[class as usize] += 1;
    }

    pub fn errors_total(&self) -> u64 {
        self.errors.iter().sum()
    }
}

/// e2e and ttft values counted ahead of their histograms.
///
/// Most answers are not streamed, and their first token is the whole answer: ttft equals
/// e2e. Such a value is counted once, in `same`, which goes to both series when settled.
#[derive(Default)]
struct Counted {
    e2e: Tally,
    ttft: Tally,
    same: Tally,
}

impl Counted {
    #[inline]
    fn record(&mut self, e2e: u64, ttft: u64) {
        if e2e == ttft {
            self.same.record(e2e);
        } else {
            self.e2e.record(e2e);
            self.ttft.record(ttft);
        }
    }
}

/// The e2e and ttft series of one qualifier (a store, a model or none).
struct Pair {
    e2e: TagId,
    ttft: TagId,
    counted: Counted,
}

impl Pair {
    #[inline]
    fn record(&mut self, e2e: u64, ttft: u64) {
        self.counted.record(e2e, ttft);
    }

    fn settle(&mut self, rec: &mut IntervalRecorder) {
        let c = &mut self.counted;
        rec.drain_tally(&mut c.e2e, &[self.e2e]);
        rec.drain_tally(&mut c.ttft, &[self.ttft]);
        rec.drain_tally(&mut c.same, &[self.e2e, self.ttft]);
    }
}

/// e2e and ttft of one traffic stage, for the report (complete once settled).
pub struct StageLatencies {
    pub e2e: Histogram<u64>,
    pub ttft: Histogram<u64>,
    counted: Counted,
}

impl StageLatencies {
    fn new() -> Self {
        Self {
            e2e: new_histogram(),
            ttft: new_histogram(),
            counted: Counted::default(),
        }
    }

    fn settle(&mut self) {
        let c = &mut self.counted;
        c.e2e.drain_into(&mut self.e2e);
        c.ttft.drain_into(&mut self.ttft);
        c.same.drain(|value, count| {
            surge_record::record_n(&mut self.e2e, value, count);
            surge_record::record_n(&mut self.ttft, value, count);
        });
    }
}

/// One answered message, as [`Latencies::judge`] needs it.
pub struct Judged {
    pub e2e: Nanos,
    pub ttft: Nanos,
    /// Time per output token after the first (none below two tokens).
    pub tpot: Option<Nanos>,
    /// Output tokens (0: none were generated).
    pub tokens: u32,
    pub store: usize,
    pub model: Option<usize>,
    /// Within the reply timeout (a late answer is a timeout, never good).
    pub in_time: bool,
    /// Sent after the warm-up: its tokens and TPOT go into the histograms.
    pub measured: bool,
}

/// Latencies of the run, in µs.
pub struct Latencies {
    pub recorder: IntervalRecorder,
    all: Pair,
    /// Whether every store has its own series, so that `all` is their sum, added once per
    /// interval by [`settle`](Self::settle) rather than recorded once per answer.
    all_from_stores: bool,
    itl: TagId,
    tpot: TagId,
    tokens: TagId,
    itl_counted: Tally,
    tpot_counted: Tally,
    tokens_counted: Tally,
    slos: Slos,
    /// (good answers, answers) per store and per model, when goodput is judged.
    good_by_store: Vec<(u64, u64)>,
    good_by_model: Vec<(u64, u64)>,
    stores: Vec<Option<Pair>>,
    models: Vec<Option<Pair>>,
    /// e2e and ttft per traffic stage (for the report; complete after [`settle`](Self::settle)).
    /// Empty when the profile has one stage: its figures are the overall ones.
    pub stages: Vec<StageLatencies>,
    /// Orchestrator queue waits, µs, of every message a worker served (complete once
    /// settled).
    pub queue_wait: Histogram<u64>,
    queue_wait_counted: Tally,
    /// Exact sum of the waits, ns.
    pub queue_wait_sum: f64,
    /// Served messages that waited at all.
    pub waited: u64,
    /// Exact sums of e2e and ttft, ns, and how many answers they cover.
    pub e2e_sum: f64,
    pub ttft_sum: f64,
    pub answers: u64,
}

fn pair(rec: &mut IntervalRecorder, q: Option<&str>) -> Pair {
    let mut tag = |m: Metric| match q {
        None => rec.register(&Tag::metric_only(m)),
        Some(q) => rec.register(&Tag::qualified(m, q).expect("validated names")),
    };
    Pair {
        e2e: tag(Metric::E2e),
        ttft: tag(Metric::Ttft),
        counted: Counted::default(),
    }
}

/// Store and model names become hlog tags; the profile crate allows characters tags do
/// not, so such a name gets no per-store or per-model series rather than a broken log.
fn qualifier(name: &str) -> Option<&str> {
    Tag::qualified(Metric::E2e, name).ok().map(|_| name)
}

impl Latencies {
    pub fn new(plan: &Plan) -> Self {
        let mut rec = IntervalRecorder::new(std::time::Duration::ZERO);
        let all = pair(&mut rec, None);
        let itl = rec.register(&Tag::metric_only(Metric::Itl));
        let tpot = rec.register(&Tag::metric_only(Metric::Tpot));
        let tokens = rec.register(&Tag::metric_only(Metric::Tokens));
        let mut named = |name: &str| qualifier(name).map(|q| pair(&mut rec, Some(q)));
        let stores: Vec<_> = plan.stores.iter().map(|s| named(&s.name)).collect();
        let models = plan.models.iter().map(|m| named(&m.name)).collect();
        Self {
            recorder: rec,
            all,
            all_from_stores: !stores.is_empty() && stores.iter().all(Option::is_some),
            itl,
            tpot,
            tokens,
            itl_counted: Tally::new(),
            tpot_counted: Tally::new(),
            tokens_counted: Tally::new(),
            slos: plan.goodput,
            good_by_store: vec![(0, 0); plan.stores.len()],
            good_by_model: vec![(0, 0); plan.models.len()],
            stores,
            models,
            stages: if plan.stages.len() > 1 {
                plan.stages.iter().map(|_| StageLatencies::new()).collect()
            } else {
                Vec::new()
            },
            queue_wait: new_histogram(),
            queue_wait_counted: Tally::new(),
            queue_wait_sum: 0.0,
            waited: 0,
            e2e_sum: 0.0,
            ttft_sum: 0.0,
            answers: 0,
        }
    }

    /// One answered message: e2e and ttft overall, per store, per model (if generated)
    /// and per stage.
    pub fn answered(
        &mut self,
        e2e: Nanos,
        ttft: Nanos,
        store: usize,
        model: Option<usize>,
        stage: usize,
    ) {
        self.e2e_sum += as_f64(e2e);
        self.ttft_sum += as_f64(ttft);
        self.answers += 1;
        let (e2e, ttft) = (micros(e2e), micros(ttft));
        if !self.all_from_stores {
            self.all.record(e2e, ttft);
        }
        if let Some(p) = &mut self.stores[store] {
            p.record(e2e, ttft);
        }
        if let Some(p) = model.and_then(|m| self.models[m].as_mut()) {
            p.record(e2e, ttft);
        }
        if let Some(s) = self.stages.get_mut(stage) {
            s.counted.record(e2e, ttft);
        }
    }

    /// Completes the open interval's series (and the stages'); call before closing or
    /// taking an interval.
    pub fn settle(&mut self) -> Result<(), surge_record::Error> {
        let rec = &mut self.recorder;
        for p in self.stores.iter_mut().chain(&mut self.models).flatten() {
            p.settle(rec);
        }
        self.all.settle(rec);
        rec.drain_tally(&mut self.itl_counted, &[self.itl]);
        rec.drain_tally(&mut self.tpot_counted, &[self.tpot]);
        rec.drain_tally(&mut self.tokens_counted, &[self.tokens]);
        if self.all_from_stores {
            for p in self.stores.iter().flatten() {
                rec.add_current(p.e2e, self.all.e2e)?;
                rec.add_current(p.ttft, self.all.ttft)?;
            }
        }
        self.stages.iter_mut().for_each(StageLatencies::settle);
        self.queue_wait_counted.drain_into(&mut self.queue_wait);
        Ok(())
    }

    /// Records the tokens and TPOT of one answered message and says whether it was a good
    /// answer by the `[goodput]` SLOs (always false without them).
    pub fn judge(&mut self, a: &Judged) -> bool {
        let tpot = a.tpot.map(micros);
        if a.measured && a.tokens > 0 {
            self.tokens_counted.record(u64::from(a.tokens));
        }
        if let Some(t) = tpot.filter(|_| a.measured) {
            self.tpot_counted.record(t);
        }
        if !self.slos.any() {
            return false;
        }
        let good = a.in_time
            && self.slos.good(&AnswerTimes {
                ttft_us: Some(micros(a.ttft)),
                e2e_us: micros(a.e2e),
                tpot_us: tpot,
            });
        let tally = |t: &mut (u64, u64)| {
            t.0 += u64::from(good);
            t.1 += 1;
        };
        tally(&mut self.good_by_store[a.store]);
        if let Some(m) = a.model {
            tally(&mut self.good_by_model[m]);
        }
        good
    }

    /// (good answers, answers) per `store:NAME` and `model:NAME` that answered anything.
    pub fn good_by_scope(&self, plan: &Plan) -> Vec<(String, (u64, u64))> {
        let stores = plan
            .stores
            .iter()
            .zip(&self.good_by_store)
            .map(|(s, t)| (format!("store:{}", s.name), *t));
        let models = plan
            .models
            .iter()
            .zip(&self.good_by_model)
            .map(|(m, t)| (format!("model:{}", m.name), *t));
        stores.chain(models).filter(|(_, t)| t.1 > 0).collect()
    }

    /// `count` inter-token gaps of `gap`.
    pub fn itl(&mut self, gap: Nanos, count: u64) {
        if count > 0 {
            self.itl_counted.record_n(micros(gap), count);
        }
    }

    pub fn queue_wait(&mut self, wait: Nanos) {
        self.queue_wait_counted.record(micros(wait));
        if wait > 0 {
            self.queue_wait_sum += as_f64(wait);
            self.waited += 1;
        }
    }
}
