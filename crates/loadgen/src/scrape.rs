//! Server telemetry beside the measurements: Prometheus text endpoints (the mock's
//! `/metrics`, an exporter in front of CloudWatch) sampled once per interval into
//! `timeline.csv` columns, so a run records what the system did (tasks, queue depth,
//! throttles) next to what its users saw.
//!
//! The endpoints are read once before the run starts. Their counters, gauges and untyped
//! series become the columns (`scrape:<metric>:<label>-<value>…`, labels sorted; with several
//! endpoints `scrape<N>:…`, counted from 1). Histograms and summaries are left out: a
//! timeline holds one number per column. Series that appear later are not recorded. An
//! endpoint that fails once the run is under way leaves its cells empty for that interval.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_parse::{Scrape, Value};

use crate::RunError;

/// One series read into one column.
#[derive(Debug, Clone, PartialEq)]
struct Series {
    endpoint: usize,
    name: String,
    labels: Labels,
}

/// The endpoints, their columns and the latest value of each.
pub struct Scraper {
    urls: Vec<String>,
    series: Vec<Series>,
    columns: Vec<String>,
    latest: Mutex<Vec<f64>>,
    client: reqwest::Client,
}

/// How long one scrape may take before it counts as failed.
const TIMEOUT: Duration = Duration::from_secs(2);

/// A column name of letters, digits and `_ - . :` only (what `timeline.csv` allows).
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn numeric(value: &Value) -> Option<f64> {
    match value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(*v),
        Value::Histogram(_) | Value::Summary(_) => None,
    }
}

/// Label pairs of a series, sorted by name.
type Labels = Vec<(String, String)>;

/// One number of an exposition text.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: Labels,
    value: f64,
}

/// Every counter, gauge and untyped sample of an exposition text.
fn samples(text: &str) -> Result<Vec<Sample>, String> {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = Scrape::parse(lines).map_err(|e| format!("not Prometheus text: {e}"))?;
    // A histogram's or summary's `_sum` and `_count` come through as plain samples.
    let families: Vec<String> = scrape
        .samples
        .iter()
        .filter(|s| numeric(&s.value).is_none())
        .map(|s| s.metric.clone())
        .collect();
    let part_of_family = |name: &str| {
        ["_sum", "_count"].iter().any(|suffix| {
            name.strip_suffix(suffix)
                .is_some_and(|family| families.iter().any(|f| f == family))
        })
    };
    Ok(scrape
        .samples
        .into_iter()
        .filter(|s| !part_of_family(&s.metric))
        .filter_map(|s| {
            let value = numeric(&s.value)?;
            let mut labels: Labels = s
                .labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            labels.sort();
            Some(Sample {
                name: s.metric,
                labels,
                value,
            })
        })
        .collect())
}

impl Scraper {
    /// Reads every endpoint once and fixes the columns; an endpoint that does not answer
    /// with Prometheus text now is an error that names it.
    pub async fn discover(urls: &[String]) -> Result<Self, RunError> {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| RunError::CouldNotRun(format!("no HTTP client for --scrape: {e}")))?;
        let mut series = Vec::new();
        for (endpoint, url) in urls.iter().enumerate() {
            let shown = surge_record::redact_url(url);
            let text = fetch(&client, url).await.map_err(|e| {
                RunError::CouldNotRun(format!(
                    "--scrape {shown}: {e} (the endpoint must serve Prometheus text before the run starts)"
                ))
            })?;
            let found = samples(&text)
                .map_err(|e| RunError::CouldNotRun(format!("--scrape {shown}: {e}")))?;
            for Sample { name, labels, .. } in found {
                series.push(Series {
                    endpoint,
                    name,
                    labels,
                });
            }
        }
        let prefix = |endpoint: usize| {
            if urls.len() == 1 {
                "scrape".to_string()
            } else {
                format!("scrape{}", endpoint + 1)
            }
        };
        let columns = series
            .iter()
            .map(|s| {
                let mut c = format!("{}:{}", prefix(s.endpoint), clean(&s.name));
                for (k, v) in &s.labels {
                    c.push_str(&format!(":{}-{}", clean(k), clean(v)));
                }
                c
            })
            .collect();
        let latest = Mutex::new(vec![f64::NAN; series.len()]);
        Ok(Self {
            urls: urls.to_vec(),
            series,
            columns,
            latest,
            client,
        })
    }

    /// The timeline columns, in order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The latest value of every column (empty where the last scrape failed).
    pub fn latest(&self) -> Vec<f64> {
        self.latest.lock().expect("scrape lock").clone()
    }

    /// Scrapes every endpoint now and keeps what it read.
    pub async fn sample(&self) {
        for (endpoint, url) in self.urls.iter().enumerate() {
            let found = match fetch(&self.client, url).await {
                Ok(text) => samples(&text).unwrap_or_default(),
                Err(_) => Vec::new(),
            };
            let mut latest = self.latest.lock().expect("scrape lock");
            for (i, s) in self.series.iter().enumerate() {
                if s.endpoint != endpoint {
                    continue;
                }
                latest[i] = found
                    .iter()
                    .find(|f| f.name == s.name && f.labels == s.labels)
                    .map_or(f64::NAN, |f| f.value);
            }
        }
    }

    /// Samples once per `every` until the returned task is aborted.
    pub fn spawn(self: Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                self.sample().await;
            }
        })
    }
}

/// One GET of `url`; errors leave the URL (and any credentials in it) out.
async fn fetch(client: &reqwest::Client, url: &str) -> Result<String, String> {
    let words = |e: reqwest::Error| e.without_url().to_string();
    let response = client.get(url).send().await.map_err(words)?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    response.text().await.map_err(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP surge_mock_orchestrator_tasks Orchestrator tasks.
# TYPE surge_mock_orchestrator_tasks gauge
surge_mock_orchestrator_tasks{state="running"} 3
surge_mock_orchestrator_tasks{state="starting"} 1
# HELP surge_mock_throttles_total Throttles.
# TYPE surge_mock_throttles_total counter
surge_mock_throttles_total{api="bedrock"} 17
# HELP lat Latency.
# TYPE lat histogram
lat_bucket{le="0.1"} 4
lat_bucket{le="+Inf"} 5
lat_sum 0.7
lat_count 5
up 1
"#;

    #[test]
    fn counters_and_gauges_are_kept_histograms_left_out() {
        let s = samples(TEXT).unwrap();
        let names: Vec<String> = s
            .iter()
            .map(|s| format!("{}{:?}={}", s.name, s.labels, s.value))
            .collect();
        assert!(
            names.contains(&r#"surge_mock_orchestrator_tasks[("state", "running")]=3"#.to_string()),
            "{names:?}"
        );
        assert!(
            names.contains(&r#"surge_mock_throttles_total[("api", "bedrock")]=17"#.to_string()),
            "{names:?}"
        );
        assert!(names.contains(&"up[]=1".to_string()), "{names:?}");
        assert!(!names.iter().any(|n| n.starts_with("lat")), "{names:?}");
    }

    #[test]
    fn column_names_hold_only_what_a_timeline_allows() {
        assert_eq!(clean("a{b=\"c d\"}"), "a_b__c_d__");
    }
}
