//! The vocabulary of measured figures: `ttft.p99`, `e2e:haiku.p50`, `errors.rate`.
//!
//! Thresholds in profiles, SLOs in `surge plan` and regression limits in `surge compare`
//! all name figures the same way, so they share this parser: a name that is not a known
//! figure is an error everywhere, never a silent pass.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::units::{Duration, Percent};

/// A per-answer figure recorded into the run directory as an HDR histogram: latencies in
/// microseconds, token counts as counts ([`LatencyMetric::is_count`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LatencyMetric {
    /// Intended send → done frame.
    E2e,
    /// Intended send → first token frame.
    Ttft,
    /// Gap between consecutive token frames.
    Itl,
    /// Actual send → done frame (not corrected for coordinated omission).
    Service,
    /// TCP + TLS + WebSocket upgrade.
    Connect,
    /// Load generator scheduling lag (actual − intended wake-up).
    Lag,
    /// Time per output token after the first: (last token − first token) / (tokens − 1).
    Tpot,
    /// Output tokens per answer (a count): the usage the chatbot reports, else the tokens
    /// its frames carried.
    Tokens,
    /// Input tokens per answer (a count), where the chatbot's frames report usage.
    InputTokens,
}

impl LatencyMetric {
    pub const ALL: [LatencyMetric; 9] = [
        Self::E2e,
        Self::Ttft,
        Self::Itl,
        Self::Service,
        Self::Connect,
        Self::Lag,
        Self::Tpot,
        Self::Tokens,
        Self::InputTokens,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Self::E2e => "e2e",
            Self::Ttft => "ttft",
            Self::Itl => "itl",
            Self::Service => "service",
            Self::Connect => "connect",
            Self::Lag => "lag",
            Self::Tpot => "tpot",
            Self::Tokens => "tokens",
            Self::InputTokens => "input_tokens",
        }
    }

    /// True for token counts, recorded as counts rather than microseconds.
    pub const fn is_count(self) -> bool {
        matches!(self, Self::Tokens | Self::InputTokens)
    }
}

impl fmt::Display for LatencyMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for LatencyMetric {
    type Err = MetricError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| MetricError::UnknownMetric(s.to_string()))
    }
}

/// A statistic of a latency distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stat {
    P50,
    P90,
    P99,
    P999,
    Max,
    Mean,
}

impl Stat {
    pub const ALL: [Stat; 6] = [
        Self::P50,
        Self::P90,
        Self::P99,
        Self::P999,
        Self::Max,
        Self::Mean,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::P50 => "p50",
            Self::P90 => "p90",
            Self::P99 => "p99",
            Self::P999 => "p999",
            Self::Max => "max",
            Self::Mean => "mean",
        }
    }

    /// The quantile this statistic stands for, if it is one.
    pub fn quantile(self) -> Option<f64> {
        match self {
            Self::P50 => Some(0.50),
            Self::P90 => Some(0.90),
            Self::P99 => Some(0.99),
            Self::P999 => Some(0.999),
            Self::Max => Some(1.0),
            Self::Mean => None,
        }
    }
}

/// A share of all messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RatioMetric {
    /// Failed messages / sent messages (`errors.rate`).
    Errors,
    /// Messages sent after their intended time / sent messages (`late.rate`).
    Late,
    /// Answers meeting every `[goodput]` SLO / sent messages (`goodput.ratio`): higher is
    /// better, unlike the others.
    Goodput,
}

impl RatioMetric {
    pub const ALL: [RatioMetric; 3] = [Self::Errors, Self::Late, Self::Goodput];

    pub fn name(self) -> &'static str {
        match self {
            Self::Errors => "errors",
            Self::Late => "late",
            Self::Goodput => "goodput",
        }
    }

    /// What follows the name: `rate` for the shares of trouble, `ratio` for goodput.
    pub fn suffix(self) -> &'static str {
        match self {
            Self::Errors | Self::Late => "rate",
            Self::Goodput => "ratio",
        }
    }

    /// True when a larger value is better (goodput).
    pub fn higher_is_better(self) -> bool {
        matches!(self, Self::Goodput)
    }
}

/// A figure of a run that a threshold, SLO or regression limit can name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetricRef {
    /// `ttft.p99`, or `ttft:manga_jp.p99` for one store or model.
    Latency {
        metric: LatencyMetric,
        qualifier: Option<String>,
        stat: Stat,
    },
    /// `errors.rate`, `late.rate`.
    Ratio(RatioMetric),
}

impl MetricRef {
    /// The kind of limit this figure is compared with.
    pub fn unit(&self) -> LimitUnit {
        match self {
            Self::Latency { metric, .. } if metric.is_count() => LimitUnit::Count,
            Self::Latency { .. } => LimitUnit::Duration,
            Self::Ratio(_) => LimitUnit::Percent,
        }
    }

    /// The tag under which the run directory records this figure (`ttft:manga_jp`).
    pub fn tag(&self) -> Option<String> {
        match self {
            Self::Latency {
                metric, qualifier, ..
            } => Some(match qualifier {
                Some(q) => format!("{metric}:{q}"),
                None => metric.to_string(),
            }),
            Self::Ratio(_) => None,
        }
    }
}

impl fmt::Display for MetricRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Latency { stat, .. } => {
                write!(f, "{}.{}", self.tag().unwrap_or_default(), stat.name())
            }
            Self::Ratio(r) => write!(f, "{}.{}", r.name(), r.suffix()),
        }
    }
}

/// Why a figure name or a limit did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricError {
    #[error(
        "unknown metric \"{0}\": expected one of e2e, ttft, itl, service, connect, lag, tpot, tokens, input_tokens (with .p50, .p90, .p99, .p999, .max or .mean), errors.rate, late.rate or goodput.ratio"
    )]
    UnknownMetric(String),
    #[error("unknown statistic \"{0}\": expected p50, p90, p99, p999, max or mean")]
    UnknownStat(String),
    #[error("expected a comparison such as \"< 800ms\" or \"<= 0.1%\", found \"{0}\"")]
    BadComparison(String),
    #[error("{metric} is a {expected}, so its limit must be one too, found \"{found}\"")]
    WrongUnit {
        metric: String,
        expected: &'static str,
        found: String,
    },
}

impl FromStr for MetricRef {
    type Err = MetricError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (head, stat) = s
            .rsplit_once('.')
            .ok_or_else(|| MetricError::UnknownMetric(s.to_string()))?;
        if let Some(r) = RatioMetric::ALL
            .into_iter()
            .find(|r| r.name() == head && r.suffix() == stat)
        {
            return Ok(Self::Ratio(r));
        }
        let (name, qualifier) = match head.split_once(':') {
            Some((n, q)) if !q.is_empty() && !q.contains([',', ' ']) => (n, Some(q.to_string())),
            Some(_) => return Err(MetricError::UnknownMetric(s.to_string())),
            None => (head, None),
        };
        let metric = name
            .parse::<LatencyMetric>()
            .map_err(|_| MetricError::UnknownMetric(s.to_string()))?;
        let stat = Stat::ALL
            .into_iter()
            .find(|st| st.name() == stat)
            .ok_or_else(|| MetricError::UnknownStat(stat.to_string()))?;
        Ok(Self::Latency {
            metric,
            qualifier,
            stat,
        })
    }
}

/// What kind of value a limit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitUnit {
    Duration,
    Percent,
    /// A plain number (token counts).
    Count,
}

/// A comparison operator of a threshold, serialized as its symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    #[serde(rename = "<")]
    Less,
    #[serde(rename = "<=")]
    LessOrEqual,
    #[serde(rename = ">")]
    Greater,
    #[serde(rename = ">=")]
    GreaterOrEqual,
}

impl Comparison {
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Less => "<",
            Self::LessOrEqual => "<=",
            Self::Greater => ">",
            Self::GreaterOrEqual => ">=",
        }
    }

    pub fn holds(self, measured: f64, limit: f64) -> bool {
        match self {
            Self::Less => measured < limit,
            Self::LessOrEqual => measured <= limit,
            Self::Greater => measured > limit,
            Self::GreaterOrEqual => measured >= limit,
        }
    }
}

/// A limit value: a duration for latencies, a percentage for ratios, a number for counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    Duration(Duration),
    Percent(Percent),
    Count(f64),
}

impl Limit {
    /// The limit in the unit summaries use: milliseconds for durations, a fraction for
    /// ratios, the number itself for counts.
    pub fn value(&self) -> f64 {
        match self {
            Self::Duration(d) => d.as_secs_f64() * 1e3,
            Self::Percent(p) => p.fraction(),
            Self::Count(n) => *n,
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Duration(d) => write!(f, "{d}"),
            Self::Percent(p) => write!(f, "{p}"),
            Self::Count(n) => write!(f, "{n}"),
        }
    }
}

/// `ttft.p99 < 800ms`: a figure, a comparison and a limit, judged on the whole run; with an
/// [`Abort`] rule also judged live, over a sliding window, to stop a run that breaks it.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub metric: MetricRef,
    pub comparison: Comparison,
    pub limit: Limit,
    pub abort: Option<Abort>,
}

/// When a threshold stops the run: judged each interval over the last `window` of run time,
/// from `after` on (a ramp's first seconds say little), on the figures of all shards merged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Abort {
    pub window: Duration,
    pub after: Duration,
}

impl Abort {
    /// The window when a profile gives none: ten one-second intervals.
    pub const DEFAULT_WINDOW: Duration = Duration::from_millis(10_000);
}

impl Threshold {
    /// Parses the right-hand side of a profile threshold (`"< 800ms"`) for `metric`.
    pub fn parse(metric: MetricRef, condition: &str) -> Result<Self, MetricError> {
        let c = condition.trim();
        let (comparison, rest) = [
            ("<=", Comparison::LessOrEqual),
            (">=", Comparison::GreaterOrEqual),
            ("<", Comparison::Less),
            (">", Comparison::Greater),
        ]
        .into_iter()
        .find_map(|(sym, cmp)| c.strip_prefix(sym).map(|rest| (cmp, rest.trim())))
        .ok_or_else(|| MetricError::BadComparison(c.to_string()))?;
        let wrong_unit = |expected| MetricError::WrongUnit {
            metric: metric.to_string(),
            expected,
            found: rest.to_string(),
        };
        let limit = match metric.unit() {
            LimitUnit::Duration => {
                Limit::Duration(rest.parse().map_err(|_| wrong_unit("duration"))?)
            }
            LimitUnit::Percent => {
                Limit::Percent(rest.parse().map_err(|_| wrong_unit("percentage"))?)
            }
            LimitUnit::Count => Limit::Count(
                rest.parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite() && *n >= 0.0)
                    .ok_or_else(|| wrong_unit("number"))?,
            ),
        };
        Ok(Self {
            metric,
            comparison,
            limit,
            abort: None,
        })
    }

    /// Whether a measured value (ms for latencies, a fraction for ratios) passes.
    pub fn passes(&self, measured: f64) -> bool {
        self.comparison.holds(measured, self.limit.value())
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.metric,
            self.comparison.symbol(),
            self.limit
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_metric_names() {
        for name in [
            "ttft.p99",
            "e2e.p50",
            "e2e:haiku.p999",
            "ttft:manga_jp.max",
            "itl.mean",
            "errors.rate",
            "late.rate",
            "goodput.ratio",
            "tpot.p99",
            "tokens.p50",
            "input_tokens:sonnet.mean",
        ] {
            let m: MetricRef = name.parse().unwrap();
            assert_eq!(m.to_string(), name);
        }
    }

    #[test]
    fn rejects_unknown_metrics_and_stats() {
        assert!(matches!(
            "latency.p99".parse::<MetricRef>(),
            Err(MetricError::UnknownMetric(_))
        ));
        assert!(matches!(
            "ttft.p98".parse::<MetricRef>(),
            Err(MetricError::UnknownStat(_))
        ));
        assert!(matches!(
            "errors.count".parse::<MetricRef>(),
            Err(MetricError::UnknownMetric(_))
        ));
        assert!("ttft".parse::<MetricRef>().is_err());
        assert!("goodput.rate".parse::<MetricRef>().is_err());
        assert!("errors.ratio".parse::<MetricRef>().is_err());
    }

    #[test]
    fn thresholds_check_units_and_verdicts() {
        let t = Threshold::parse("ttft.p99".parse().unwrap(), "< 800ms").unwrap();
        assert!(t.passes(799.9));
        assert!(!t.passes(800.0));
        assert_eq!(t.to_string(), "ttft.p99 < 800ms");
        let e = Threshold::parse("errors.rate".parse().unwrap(), "<= 0.1%").unwrap();
        assert!(e.passes(0.001));
        assert!(!e.passes(0.0011));
        assert!(matches!(
            Threshold::parse("ttft.p99".parse().unwrap(), "< 5%"),
            Err(MetricError::WrongUnit { .. })
        ));
        assert!(matches!(
            Threshold::parse("ttft.p99".parse().unwrap(), "about 1s"),
            Err(MetricError::BadComparison(_))
        ));
        let g = Threshold::parse("goodput.ratio".parse().unwrap(), "> 99%").unwrap();
        assert!(g.passes(0.995) && !g.passes(0.99));
        let n = Threshold::parse("tokens.p50".parse().unwrap(), ">= 100").unwrap();
        assert!(n.passes(100.0) && !n.passes(99.0));
        assert_eq!(n.to_string(), "tokens.p50 >= 100");
        assert!(matches!(
            Threshold::parse("tokens.p50".parse().unwrap(), "> 1s"),
            Err(MetricError::WrongUnit { .. })
        ));
    }
}
