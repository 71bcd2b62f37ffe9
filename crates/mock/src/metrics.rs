//! Prometheus metrics of the mock, served on `/metrics`.
//!
//! Histograms (aggregatable across workers), base units, `_total` counters, and labels of
//! low cardinality only: `api` is `chat`, `bedrock` or `dynamodb`; `operation` is a fixed
//! operation name (never a table, a model id or a session).

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The APIs the mock serves, as metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    Chat,
    Bedrock,
    Dynamodb,
}

impl Api {
    pub fn label(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Bedrock => "bedrock",
            Self::Dynamodb => "dynamodb",
        }
    }
}

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    errors: IntCounterVec,
    throttles: IntCounterVec,
    faults: IntCounterVec,
    streams: IntGaugeVec,
    latency: HistogramVec,
    cache_lookups: IntCounterVec,
    cache_prewarmed: IntGauge,
    prewarm_requests: IntCounter,
    orchestrator_tasks: IntGaugeVec,
    orchestrator_busy: IntGauge,
    orchestrator_queue: IntGauge,
    bedrock_reserved: GaugeVec,
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
            orchestrator_queue,
            requests,
            errors,
            throttles,
            faults,
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

    /// The orchestrator's state now: tasks running and starting, workers busy, queue depth.
    pub fn orchestrator(&self, running: u32, starting: u32, busy: u32, queue: usize) {
        let tasks = &self.orchestrator_tasks;
        tasks
            .with_label_values(&["running"])
            .set(i64::from(running));
        tasks
            .with_label_values(&["starting"])
            .set(i64::from(starting));
        self.orchestrator_busy.set(i64::from(busy));
        self.orchestrator_queue
            .set(i64::try_from(queue).unwrap_or(i64::MAX));
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

    pub fn error(&self, api: Api) {
        self.errors.with_label_values(&[api.label()]).inc();
    }

    pub fn throttle(&self, api: Api) {
        self.throttles.with_label_values(&[api.label()]).inc();
    }

    pub fn fault(&self, kind: &str) {
        self.faults.with_label_values(&[kind]).inc();
    }

    pub fn observe(&self, api: Api, seconds: f64) {
        self.latency
            .with_label_values(&[api.label()])
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
