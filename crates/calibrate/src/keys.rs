//! The keys a calibration fits: what each holds (a latency distribution, a rate, a count,
//! a number), the free parameters that follow from that, and how a point in parameter
//! space becomes a system model.
//!
//! Parameters are log factors on the starting value, so every parameter is on the same
//! scale (0 is the start, ±0.1 is about ±10 %) and no value can cross zero. A latency
//! distribution is fitted as a distribution: its size (every quantile scales together)
//! and, for forms that have one, its spread about the median (a log-normal's p99/p50, a
//! uniform's width). Counts (tasks, workers) are whole numbers, searched apart from the
//! continuous parameters. Keys whose effects the runs cannot tell apart share one size
//! parameter ([`Param::members`]).

use std::str::FromStr;

use surge_plan::{Setting, Value};
use surge_profile::units::Rate;
use surge_profile::{Dist, Duration, SystemModel};

use crate::CalibrateError;

/// What a key holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Holding {
    Latency(Dist<Duration>),
    Rate(Rate),
    Count(i64),
    Number(f64),
}

impl Holding {
    /// Whether a spread parameter exists for this key.
    pub fn has_spread(&self) -> bool {
        match self {
            Self::Latency(d) => d.spread_scaled(1.0).is_some() && !d.is_constant(),
            _ => false,
        }
    }

    /// The value with its size multiplied by `size` and its spread by `spread`, as the
    /// profile would write it. Factors are rounded to four significant digits so what is
    /// written out is exactly what was simulated.
    pub fn value(&self, size: f64, spread: f64) -> Value {
        let size = round4(size);
        match self {
            Self::Latency(d) => {
                let mut d = d.scaled(size);
                if let Some(wider) = d.spread_scaled(round4(spread)) {
                    d = wider;
                }
                Value::Text(d.to_string())
            }
            Self::Rate(r) => Value::Text(Rate::new(round4(r.count() * size), r.unit()).to_string()),
            Self::Count(n) => Value::Int(((*n as f64) * size).round().max(1.0) as i64),
            Self::Number(x) => Value::Float(round4(x * size)),
        }
    }
}

/// `x` to four significant digits.
pub fn round4(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let magnitude = 10f64.powi(3 - x.abs().log10().floor() as i32);
    (x * magnitude).round() / magnitude
}

/// One key of the system model to fit, with its starting value.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub path: String,
    pub start: Holding,
}

/// A continuous parameter of the fit.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// One log factor on the size of every member key (indexes into the key list).
    Size { members: Vec<usize> },
    /// One log factor on the spread of one key.
    Spread { key: usize },
}

impl Param {
    /// The keys this parameter moves.
    pub fn members(&self) -> &[usize] {
        match self {
            Self::Size { members } => members,
            Self::Spread { key } => std::slice::from_ref(key),
        }
    }
}

/// Where the fit stands: a log factor per parameter and a value per count key.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub x: Vec<f64>,
    /// `(key index, value)` for each count key.
    pub counts: Vec<(usize, i64)>,
}

/// The largest factor a fit may move a key by, either way (`e^2.3` ≈ 10).
pub const MAX_LOG_FACTOR: f64 = 2.3;

/// The settings that put `keys` at `point`.
pub fn settings(keys: &[Key], params: &[Param], point: &Point) -> Vec<Setting> {
    let mut size = vec![1.0; keys.len()];
    let mut spread = vec![1.0; keys.len()];
    for (p, x) in params.iter().zip(&point.x) {
        let f = x.clamp(-MAX_LOG_FACTOR, MAX_LOG_FACTOR).exp();
        match p {
            Param::Size { members } => members.iter().for_each(|&k| size[k] = f),
            Param::Spread { key } => spread[*key] = f,
        }
    }
    let mut out = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let value = match (&key.start, point.counts.iter().find(|(k, _)| *k == i)) {
            (Holding::Count(_), Some((_, n))) => Value::Int(*n),
            (Holding::Count(_), None) => continue,
            (holding, _) if size[i] == 1.0 && spread[i] == 1.0 => {
                // Untouched keys are left as written.
                let _ = holding;
                continue;
            }
            (holding, _) => holding.value(size[i], spread[i]),
        };
        out.push(Setting {
            path: key.path.clone(),
            value,
        });
    }
    out
}

/// `system` with `keys` at `point`.
pub fn apply(
    system: &SystemModel,
    keys: &[Key],
    params: &[Param],
    point: &Point,
) -> Result<SystemModel, CalibrateError> {
    surge_plan::apply(system, &settings(keys, params, point))
        .map_err(|e| CalibrateError::BadKey(e.to_string()))
}

/// The keys to fit when none are named: every latency, rate and count of an enabled layer
/// that these layers' answers depend on. Identification decides which of them the runs
/// actually speak about.
pub fn default_patterns(system: &SystemModel) -> Vec<String> {
    let mut out = Vec::new();
    if system.orchestrator.enabled {
        out.push("orchestrator.cpu_per_message".to_string());
        out.push("orchestrator.initial_tasks".to_string());
    }
    if system.classifier.enabled {
        out.push("classifier.latency".into());
    }
    if system.memory.enabled {
        out.push("memory.read_latency".into());
    }
    if system.bedrock.enabled {
        out.push("bedrock.models.*.ttft".into());
        out.push("bedrock.models.*.output_rate".into());
    }
    out
}

/// The keys `patterns` name (a `*` stands for any one name: `bedrock.models.*.ttft`),
/// each with its starting value in `system`.
pub fn resolve(system: &SystemModel, patterns: &[String]) -> Result<Vec<Key>, CalibrateError> {
    let tree = serde_json::to_value(system).expect("the system model serializes");
    let mut keys: Vec<Key> = Vec::new();
    for pattern in patterns {
        let segments: Vec<&str> = pattern.split('.').collect();
        if segments.iter().any(|s| s.is_empty()) {
            return Err(CalibrateError::BadKey(format!(
                "\"{pattern}\" is not a key; write keys as the system model nests them, such as \
                 bedrock.models.sonnet.ttft"
            )));
        }
        let mut found = Vec::new();
        expand(&tree, &segments, String::new(), &mut found);
        if found.is_empty() {
            return Err(CalibrateError::BadKey(format!(
                "{pattern}: the system model has no such key (see `surge check PROFILE` for its \
                 keys; a * stands for one name, as in bedrock.models.*.ttft)"
            )));
        }
        for (path, value) in found {
            let start = holding(&path, value)?;
            if !keys.iter().any(|k| k.path == path) {
                keys.push(Key { path, start });
            }
        }
    }
    Ok(keys)
}

fn expand<'a>(
    node: &'a serde_json::Value,
    segments: &[&str],
    at: String,
    out: &mut Vec<(String, &'a serde_json::Value)>,
) {
    let Some((first, rest)) = segments.split_first() else {
        out.push((at, node));
        return;
    };
    let Some(map) = node.as_object() else { return };
    let join = |name: &str| {
        if at.is_empty() {
            name.to_string()
        } else {
            format!("{at}.{name}")
        }
    };
    if *first == "*" {
        for (name, child) in map {
            expand(child, rest, join(name), out);
        }
    } else if let Some(child) = map.get(*first) {
        expand(child, rest, join(first), out);
    }
}

fn holding(path: &str, value: &serde_json::Value) -> Result<Holding, CalibrateError> {
    let unfit = |what: &str| {
        CalibrateError::BadKey(format!(
            "{path} holds {what}; calibration fits latencies (\"20ms\", \
             \"lognormal(p50=1s, p99=3s)\"), rates (\"250/s\") and numbers"
        ))
    };
    match value {
        serde_json::Value::Number(n) => Ok(match n.as_i64() {
            Some(i) if i >= 1 => Holding::Count(i),
            Some(_) => return Err(unfit("a count below one, which no factor can move")),
            None => match n.as_f64() {
                Some(x) if x > 0.0 => Holding::Number(x),
                _ => return Err(unfit("zero, which no factor can move")),
            },
        }),
        serde_json::Value::String(s) => {
            if let Ok(d) = Dist::<Duration>::from_str(s) {
                if d.mean() == 0.0 {
                    return Err(unfit("a latency of zero, which no factor can move"));
                }
                Ok(Holding::Latency(d))
            } else if let Ok(r) = Rate::from_str(s) {
                if r.per_second() <= 0.0 {
                    return Err(unfit("a rate of zero, which no factor can move"));
                }
                Ok(Holding::Rate(r))
            } else {
                Err(unfit(&format!("\"{s}\"")))
            }
        }
        serde_json::Value::Bool(_) => Err(unfit("a switch")),
        serde_json::Value::Null => Err(unfit("nothing")),
        serde_json::Value::Object(_) | serde_json::Value::Array(_) => Err(unfit(
            "a whole section; name one of its keys, such as bedrock.models.sonnet.ttft",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_to_four_significant_digits() {
        assert_eq!(round4(1.234_56), 1.235);
        assert_eq!(round4(0.000_123_456), 0.000_123_5);
        assert_eq!(round4(98_765.4), 98_770.0);
        assert_eq!(round4(0.0), 0.0);
    }

    #[test]
    fn a_latency_scales_in_size_and_spread() {
        let h = Holding::Latency("lognormal(p50=100ms, p99=400ms)".parse().unwrap());
        assert!(h.has_spread());
        assert_eq!(
            h.value(2.0, 0.5),
            Value::Text("lognormal(p50=200ms, p99=400ms)".into()),
            "p99/p50 = 4 with half the log spread is 2"
        );
        let c = Holding::Latency("20ms".parse().unwrap());
        assert!(!c.has_spread());
        assert_eq!(c.value(1.5, 1.0), Value::Text("30ms".into()));
        let r = Holding::Rate("250/s".parse().unwrap());
        assert_eq!(r.value(0.8, 1.0), Value::Text("200/s".into()));
        assert_eq!(Holding::Count(10).value(1.26, 1.0), Value::Int(13));
    }
}
