//! Prometheus metrics of the mock, served on `/metrics`.
//!
//! Histograms (aggregatable across workers), base units, `_total` counters, and labels of
//! low cardinality only: `api` is `chat`, `bedrock` or `dynamodb`; `operation` is a fixed
//! operation name (never a table, a model id or a session); `reason` is one of a fixed set
//! ([`ChatClose`], [`UpgradeRefused`]).

use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use prometheus::{
    Counter, Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::dynamodb::Operation;

/// The APIs the mock serves, as metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    Chat,
    Bedrock,
    Dynamodb,
}

impl Api {
    fn index(self) -> usize {
        self as usize
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Bedrock => "bedrock",
            Self::Dynamodb => "dynamodb",
        }
    }
}

/// Why a chat WebSocket ended, as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChatClose {
    /// The gateway's maximum connection duration (1001).
    MaxConnection,
    /// The gateway's idle timeout: no message from the client (1001).
    IdleTimeout,
    /// A message or frame above the gateway's limits (1009).
    TooBig,
    /// The client closed the connection.
    Client,
    /// A `--fault-drop-rate` drop.
    Dropped,
    /// The socket failed.
    Error,
}

impl ChatClose {
    pub const ALL: [Self; 6] = [
        Self::MaxConnection,
        Self::IdleTimeout,
        Self::TooBig,
        Self::Client,
        Self::Dropped,
        Self::Error,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::MaxConnection => "max_connection",
            Self::IdleTimeout => "idle_timeout",
            Self::TooBig => "message_too_big",
            Self::Client => "client",
            Self::Dropped => "dropped",
            Self::Error => "error",
        }
    }
}

/// Why a chat WebSocket upgrade was refused, as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpgradeRefused {
    /// Beyond the gateway's `connect_rate` (429).
    ConnectRate,
    /// A `--fault-refuse` refusal.
    Fault,
    /// Credentials `--auth` did not accept (401, 403).
    Auth,
}

impl UpgradeRefused {
    pub const ALL: [Self; 3] = [Self::ConnectRate, Self::Fault, Self::Auth];

    pub fn label(self) -> &'static str {
        match self {
            Self::ConnectRate => "connect_rate",
            Self::Fault => "fault",
            Self::Auth => "auth",
        }
    }
}

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    errors: IntCounterVec,
    throttles: IntCounterVec,
    faults: IntCounterVec,
    chat_closes: IntCounterVec,
    upgrades_refused: IntCounterVec,
    streams: IntGaugeVec,
    latency: HistogramVec,
    cache_lookups: IntCounterVec,
    cache_prewarmed: IntGauge,
    prewarm_requests: IntCounter,
    orchestrator_tasks: IntGaugeVec,
    orchestrator_busy: IntGauge,
    orchestrator_busy_seconds: Counter,
    /// When the busy count last changed, and to what: the counter is its integral.
    busy_since: Mutex<(Instant, u32)>,
    orchestrator_queue: IntGauge,
    bedrock_reserved: GaugeVec,
    /// The DynamoDB request counters (one per operation, the last for an unknown one) and
    /// each API's latency histogram, looked up once each: a label lookup hashes and locks,
    /// and the DynamoDB API counts every one of tens of thousands of requests a second.
    /// Filled on first use, so `/metrics` shows the same series as without them.
    dynamodb_requests: [OnceLock<IntCounter>; Operation::ALL.len() + 1],
    latencies: [OnceLock<Histogram>; 3],
}

const BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let requests = counter(
            "surge_mock_requests_total",
            "Requests served (chat: messages), by API and operation.",
            &["api", "operation"],
        );
        let errors = counter(
            "surge_mock_errors_total",
            "Requests answered with an error other than a throttle, by API.",
            &["api"],
        );
        let throttles = counter(
            "surge_mock_throttles_total",
            "Requests throttled (429, ProvisionedThroughputExceeded, throttled frames), by API.",
            &["api"],
        );
        let faults = counter(
            "surge_mock_faults_total",
            "Faults injected, by kind (error, latency, stall, drop, refuse).",
            &["kind"],
        );
        let chat_closes = counter(
            "surge_mock_chat_closes_total",
            "Chat WebSockets ended, by reason: max_connection and idle_timeout (closed by \
             the gateway with 1001), message_too_big (1009), client, dropped (fault), error.",
            &["reason"],
        );
        for reason in ChatClose::ALL {
            chat_closes.with_label_values(&[reason.label()]);
        }
        let upgrades_refused = counter(
            "surge_mock_chat_upgrades_refused_total",
            "Chat WebSocket upgrades refused, by reason: connect_rate (429 beyond the \
             gateway's connect_rate), fault (--fault-refuse).",
            &["reason"],
        );
        for reason in UpgradeRefused::ALL {
            upgrades_refused.with_label_values(&[reason.label()]);
        }
        let streams = IntGaugeVec::new(
            Opts::new(
                "surge_mock_streams_open",
                "Streams open now: Bedrock response streams and chat WebSockets.",
            ),
            &["api"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(streams.clone()))
            .expect("unique metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "surge_mock_request_duration_seconds",
                "Time from request to the last byte of the answer (chat: message to done frame).",
            )
            .buckets(BUCKETS.to_vec()),
            &["api"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(latency.clone()))
            .expect("unique metric");
        let cache_lookups = counter(
            "surge_mock_cache_lookups_total",
            "Product/FAQ cache lookups of chat messages, by result (hit, miss).",
            &["result"],
        );
        for result in ["hit", "miss"] {
            cache_lookups.with_label_values(&[result]);
        }
        let cache_prewarmed = IntGauge::new(
            "surge_mock_cache_prewarmed",
            "1 while the product/FAQ cache serves the pre-warmed hit ratio, else 0.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(cache_prewarmed.clone()))
            .expect("unique metric");
        let prewarm_requests = IntCounter::new(
            "surge_mock_prewarm_requests_total",
            "Calls of POST /admin/prewarm (pre_warm_for_release).",
        )
        .expect("valid metric");
        registry
            .register(Box::new(prewarm_requests.clone()))
            .expect("unique metric");
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        let orchestrator_tasks = IntGaugeVec::new(
            Opts::new(
                "surge_mock_orchestrator_tasks",
                "Orchestrator tasks of this process, by state (running, starting).",
            ),
            &["state"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(orchestrator_tasks.clone()))
            .expect("unique metric");
        let orchestrator_busy = gauge(
            "surge_mock_orchestrator_busy_workers",
            "Orchestrator workers holding a message now.",
        );
        let orchestrator_busy_seconds = Counter::new(
            "surge_mock_orchestrator_busy_seconds_total",
            "Worker-seconds the orchestrator's workers spent holding a message: the \
             integral of surge_mock_orchestrator_busy_workers, so its rate is the mean busy \
             workers over any span (a gauge sampled once a scrape sees only instants).",
        )
        .expect("valid metric");
        registry
            .register(Box::new(orchestrator_busy_seconds.clone()))
            .expect("unique metric");
        let orchestrator_queue = gauge(
            "surge_mock_orchestrator_queue_depth",
            "Chat messages waiting for an orchestrator worker now.",
        );
        let bedrock_reserved = GaugeVec::new(
            Opts::new(
                "surge_mock_bedrock_tokens_reserved",
                "Quota tokens reserved by Bedrock calls in flight (input + max_tokens, output \
                 burned down), by model.",
            ),
            &["model"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(bedrock_reserved.clone()))
            .expect("unique metric");
        Self {
            registry,
            bedrock_reserved,
            orchestrator_tasks,
            orchestrator_busy,
            orchestrator_busy_seconds,
            busy_since: Mutex::new((Instant::now(), 0)),
            orchestrator_queue,
            dynamodb_requests: Default::default(),
            latencies: Default::default(),
            requests,
            errors,
            throttles,
            faults,
            chat_closes,
            upgrades_refused,
            streams,
            latency,
            cache_lookups,
            cache_prewarmed,
            prewarm_requests,
        }
    }

    /// Counts one product/FAQ cache lookup.
    pub fn cache_lookup(&self, hit: bool) {
        self.cache_lookups
            .with_label_values(&[if hit { "hit" } else { "miss" }])
            .inc();
    }

    /// Whether the cache serves the pre-warmed hit ratio now.
    pub fn set_prewarmed(&self, on: bool) {
        self.cache_prewarmed.set(i64::from(on));
    }

    /// The orchestrator's state as of `at`: tasks running and starting, workers busy, queue
    /// depth. `at` is the model's time of the change (a worker freed when its service was
    /// due, not when its task woke), so the busy seconds are the model's, not the host's.
    pub fn orchestrator(&self, at: Instant, running: u32, starting: u32, busy: u32, queue: usize) {
        let tasks = &self.orchestrator_tasks;
        tasks
            .with_label_values(&["running"])
            .set(i64::from(running));
        tasks
            .with_label_values(&["starting"])
            .set(i64::from(starting));
        self.orchestrator_busy.set(i64::from(busy));
        self.busy_until(at, Some(busy));
        self.orchestrator_queue
            .set(i64::try_from(queue).unwrap_or(i64::MAX));
    }

    /// Adds the worker-seconds from the last change of the busy count to `at` (none when
    /// `at` is earlier: changes reported out of order) to the counter, and records the new
    /// count (`None`: unchanged).
    fn busy_until(&self, at: Instant, busy: Option<u32>) {
        let mut since = self.busy_since.lock().expect("busy lock");
        let held = at.saturating_duration_since(since.0).as_secs_f64() * f64::from(since.1);
        if held > 0.0 {
            self.orchestrator_busy_seconds.inc_by(held);
        }
        *since = (at.max(since.0), busy.unwrap_or(since.1));
    }

    /// The gauge of tokens reserved by calls in flight to `model`.
    pub fn bedrock_reserved(&self, model: &str) -> prometheus::Gauge {
        self.bedrock_reserved.with_label_values(&[model])
    }

    /// Counts one pre-warm call.
    pub fn prewarm_request(&self) {
        self.prewarm_requests.inc();
    }

    pub fn request(&self, api: Api, operation: &str) {
        self.requests
            .with_label_values(&[api.label(), operation])
            .inc();
    }

    /// [`Self::request`] of the DynamoDB API: `None` is an unknown operation.
    pub fn dynamodb_request(&self, op: Option<Operation>) {
        let (i, name) = op.map_or((Operation::ALL.len(), "unknown"), |o| (o.index(), o.name()));
        self.dynamodb_requests[i]
            .get_or_init(|| {
                self.requests
                    .with_label_values(&[Api::Dynamodb.label(), name])
            })
            .inc();
    }

    pub fn error(&self, api: Api) {
        self.errors.with_label_values(&[api.label()]).inc();
    }

    pub fn throttle(&self, api: Api) {
        self.throttles.with_label_values(&[api.label()]).inc();
    }

    pub fn fault(&self, kind: &str) {
        self.faults.with_label_values(&[kind]).inc();
    }

    /// Counts one chat WebSocket that ended.
    pub fn chat_close(&self, why: ChatClose) {
        self.chat_closes.with_label_values(&[why.label()]).inc();
    }

    /// Counts one refused chat WebSocket upgrade.
    pub fn upgrade_refused(&self, why: UpgradeRefused) {
        self.upgrades_refused
            .with_label_values(&[why.label()])
            .inc();
    }

    pub fn observe(&self, api: Api, seconds: f64) {
        self.latencies[api.index()]
            .get_or_init(|| self.latency.with_label_values(&[api.label()]))
            .observe(seconds);
    }

    /// Counts a stream open until the guard drops.
    pub fn stream(&self, api: Api) -> StreamGuard {
        let g = self.streams.with_label_values(&[api.label()]);
        g.inc();
        StreamGuard(g)
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        self.busy_until(Instant::now(), None);
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding never fails");
        String::from_utf8(buf).expect("exposition is UTF-8")
    }
}

/// Decrements the open-streams gauge when dropped.
pub struct StreamGuard(prometheus::IntGauge);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy_seconds(text: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix("surge_mock_orchestrator_busy_seconds_total "))
            .expect("the counter is exposed")
            .parse()
            .unwrap()
    }

    #[test]
    fn busy_seconds_integrate_the_busy_workers_up_to_each_scrape() {
        let m = Metrics::new();
        assert_eq!(busy_seconds(&m.render()), 0.0);
        m.orchestrator(Instant::now(), 2, 0, 2, 0);
        std::thread::sleep(std::time::Duration::from_millis(30));
        m.orchestrator(Instant::now(), 2, 0, 0, 0);
        let after_two = busy_seconds(&m.render());
        // Two workers for at least 30 ms, then none: the scrape adds nothing more.
        assert!(after_two >= 0.06, "{after_two}");
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(busy_seconds(&m.render()), after_two);
        m.orchestrator(Instant::now(), 2, 0, 1, 0);
        std::thread::sleep(std::time::Duration::from_millis(20));
        // A long-held worker counts at the scrape, before the count changes again.
        assert!(busy_seconds(&m.render()) >= after_two + 0.02);
    }

    #[test]
    fn busy_seconds_count_to_the_model_time_of_each_change_not_its_report() {
        let m = Metrics::new();
        let t = Instant::now() + std::time::Duration::from_secs(1);
        let ms = std::time::Duration::from_millis;
        m.orchestrator(t, 1, 0, 1, 0);
        // The worker's service was due to end 10 ms later; its task woke after that.
        m.orchestrator(t + ms(10), 1, 0, 0, 0);
        // A change reported late, as of an instant before the last one, adds nothing.
        m.orchestrator(t + ms(5), 1, 0, 0, 0);
        m.orchestrator(t + ms(20), 1, 0, 1, 0);
        m.orchestrator(t + ms(50), 1, 0, 0, 0);
        let counted = busy_seconds(&m.render());
        assert!((counted - 0.040).abs() < 1e-9, "{counted}");
    }
}
