//! Live Prometheus metrics (`--metrics-addr`) and the final push (`--pushgateway`).
//!
//! Latencies are exported as Prometheus histograms in seconds, built from the run's HDR
//! totals at scrape time (so they aggregate across shards and cost nothing per message);
//! counters end in `_total`; everything starts with `surge_`; the only label is the error
//! class. A tiny HTTP responder serves `/metrics`: a load generator needs no web framework.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use prometheus::proto::{
    Bucket, Histogram as PromHistogram, Metric as PromMetric, MetricFamily, MetricType,
};
use prometheus::{Encoder, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};
use surge_record::{Histogram, Metric, new_histogram};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::errors::ErrorClass;

/// Upper bounds of the exported latency buckets, seconds.
const BUCKETS_S: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// The metrics of one run.
pub struct Exporter {
    registry: Registry,
    pub sessions_open: IntGauge,
    pub sent: IntCounter,
    pub completed: IntCounter,
    pub late: IntCounter,
    pub unsolicited: IntCounter,
    pub reconnects: IntCounter,
    pub abandoned: IntCounter,
    pub retries: IntCounter,
    pub errors: IntCounterVec,
    latency: Mutex<BTreeMap<Metric, Histogram<u64>>>,
}

impl Exporter {
    pub fn new() -> Self {
        let registry = Registry::new();
        let reg = |c: Box<dyn prometheus::core::Collector>| {
            registry.register(c).expect("metric names are unique")
        };
        let sessions_open =
            IntGauge::new("surge_sessions_open", "WebSocket sessions open now").expect("valid");
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("valid");
        let sent = counter("surge_messages_sent_total", "Messages sent");
        let completed = counter(
            "surge_messages_completed_total",
            "Answers received completely",
        );
        let late = counter(
            "surge_messages_late_total",
            "Messages due while the previous answer was still streaming",
        );
        let unsolicited = counter(
            "surge_frames_unsolicited_total",
            "Frames that answered no message (greetings, typing, pushes, pongs)",
        );
        let reconnects = counter(
            "surge_reconnects_total",
            "Connections a session opened after its first in the same window",
        );
        let abandoned = counter(
            "surge_messages_abandoned_total",
            "Messages whose user gave up waiting (traffic.abandon_after); not errors",
        );
        let retries = counter(
            "surge_messages_retried_total",
            "Messages sent again after an error or a throttle (traffic.retry_after_error)",
        );
        let errors = IntCounterVec::new(
            Opts::new("surge_errors_total", "Failures by class"),
            &["class"],
        )
        .expect("valid");
        for c in ErrorClass::ALL {
            errors.with_label_values(&[c.name()]);
        }
        reg(Box::new(sessions_open.clone()));
        reg(Box::new(sent.clone()));
        reg(Box::new(completed.clone()));
        reg(Box::new(late.clone()));
        reg(Box::new(unsolicited.clone()));
        reg(Box::new(reconnects.clone()));
        reg(Box::new(abandoned.clone()));
        reg(Box::new(retries.clone()));
        reg(Box::new(errors.clone()));
        Self {
            registry,
            sessions_open,
            sent,
            completed,
            late,
            unsolicited,
            reconnects,
            abandoned,
            retries,
            errors,
            latency: Mutex::new(BTreeMap::new()),
        }
    }

    /// Adds an interval's histogram of an (untagged) metric.
    pub fn observe(&self, metric: Metric, h: &Histogram<u64>) {
        if metric.is_count() {
            // Token counts are not seconds; their figures are in summary.json.
            return;
        }
        let mut all = self.latency.lock().expect("exporter lock");
        let total = all.entry(metric).or_insert_with(new_histogram);
        let _ = total.add(h);
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut families = self.registry.gather();
        for (metric, h) in self.latency.lock().expect("exporter lock").iter() {
            families.push(histogram_family(*metric, h));
        }
        families.sort_by(|a, b| a.name().cmp(b.name()));
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&families, &mut out)
            .expect("text encoding cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }

    /// Serves `/metrics` on `addr` until the returned task is aborted.
    pub async fn serve(
        self: Arc<Self>,
        addr: SocketAddr,
    ) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        let listener = TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let me = self.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut n = 0;
                    while n < buf.len() {
                        match conn.read(&mut buf[n..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(m) => n += m,
                        }
                        if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                    let head = String::from_utf8_lossy(&buf[..n]);
                    let path = head.split_whitespace().nth(1).unwrap_or("");
                    let (status, body) = if path == "/metrics" || path.starts_with("/metrics?") {
                        ("200 OK", me.render())
                    } else {
                        ("404 Not Found", "try /metrics\n".to_string())
                    };
                    let resp = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        prometheus::TEXT_FORMAT,
                        body.len()
                    );
                    let _ = conn.write_all(resp.as_bytes()).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        Ok((bound, task))
    }

    /// Pushes the final figures to a Pushgateway (`URL/metrics/job/surge/profile/NAME`).
    pub async fn push(&self, gateway: &str, profile: &str) -> Result<(), String> {
        let url = format!(
            "{}/metrics/job/surge/profile/{profile}",
            gateway.trim_end_matches('/')
        );
        let resp = reqwest::Client::new()
            .put(&url)
            .header("content-type", prometheus::TEXT_FORMAT)
            .body(self.render())
            .send()
            .await
            .map_err(|e| format!("pushing to {}: {e}", surge_record::redact_url(&url)))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!(
                "the Pushgateway at {} answered {}",
                surge_record::redact_url(&url),
                resp.status()
            ))
        }
    }
}

impl Default for Exporter {
    fn default() -> Self {
        Self::new()
    }
}

fn histogram_family(metric: Metric, h: &Histogram<u64>) -> MetricFamily {
    let buckets = BUCKETS_S
        .iter()
        .map(|&le| {
            let mut b = Bucket::default();
            b.set_upper_bound(le);
            b.set_cumulative_count(h.count_between(0, (le * 1e6) as u64));
            b
        })
        .collect();
    let mut ph = PromHistogram::default();
    ph.set_sample_count(h.len());
    ph.set_sample_sum(h.mean() * h.len() as f64 / 1e6);
    ph.set_bucket(buckets);
    let mut m = PromMetric::default();
    m.set_histogram(ph);
    let mut f = MetricFamily::default();
    f.set_name(format!("surge_{}_seconds", metric.name()));
    f.set_help(help(metric).to_string());
    f.set_field_type(MetricType::HISTOGRAM);
    f.set_metric(vec![m]);
    f
}

fn help(metric: Metric) -> &'static str {
    match metric {
        Metric::E2e => "Intended send to done frame (coordinated-omission corrected)",
        Metric::Ttft => "Intended send to first token frame",
        Metric::Itl => "Gap between token frames",
        Metric::Service => "Actual send to done frame (not corrected)",
        Metric::Connect => "TCP, TLS and WebSocket upgrade",
        Metric::Lag => "Load generator scheduling lag",
        Metric::Tpot => "Time per output token after the first",
        Metric::Tokens | Metric::InputTokens => "Tokens per answer",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_histograms_in_seconds_and_total_counters() {
        let e = Exporter::new();
        e.sent.inc_by(3);
        e.errors.with_label_values(&["throttled"]).inc();
        let mut h = new_histogram();
        h.record(2_000).unwrap(); // 2 ms
        h.record(700_000).unwrap(); // 0.7 s
        e.observe(Metric::Ttft, &h);
        let text = e.render();
        assert!(text.contains("surge_messages_sent_total 3"), "{text}");
        assert!(
            text.contains("surge_errors_total{class=\"throttled\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE surge_ttft_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains("surge_ttft_seconds_bucket{le=\"0.0025\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("surge_ttft_seconds_bucket{le=\"+Inf\"} 2"),
            "{text}"
        );
        assert!(text.contains("surge_ttft_seconds_count 2"), "{text}");
    }
}
