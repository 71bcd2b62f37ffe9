//! Knobs: a key of the system model and the values the planner may give it.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use surge_profile::SystemModel;

/// A value a knob can take.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Int(i64),
    /// A number with a fraction (`1.5`); calibration writes fitted factors as these.
    Float(f64),
    Bool(bool),
    Text(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(n) => write!(f, "{n}"),
            Self::Float(x) => write!(f, "{x}"),
            Self::Bool(true) => f.write_str("on"),
            Self::Bool(false) => f.write_str("off"),
            Self::Text(s) => f.write_str(s),
        }
    }
}

impl Value {
    fn parse(s: &str) -> Self {
        match s {
            "on" | "true" => Self::Bool(true),
            "off" | "false" => Self::Bool(false),
            _ => s.parse().map(Self::Int).unwrap_or_else(|_| {
                s.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .map_or_else(|| Self::Text(s.to_string()), Self::Float)
            }),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Int(n) => serde_json::Value::from(*n),
            Self::Float(x) => serde_json::Value::from(*x),
            Self::Bool(b) => serde_json::Value::from(*b),
            Self::Text(s) => serde_json::Value::from(s.as_str()),
        }
    }
}

/// The values a knob ranges over.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Domain {
    /// Whole numbers `lo, lo + step, …, hi`, assumed monotone (bisected).
    Range { lo: i64, hi: i64, step: i64 },
    /// A few values, tried one by one.
    Choices(Vec<Value>),
}

impl Domain {
    /// The values of a range, lowest first, ending at its top even off the step; empty
    /// for choices.
    pub fn grid(&self) -> Vec<i64> {
        match *self {
            Self::Range { lo, hi, step } => {
                let mut values: Vec<i64> = (0..)
                    .map(|k| lo + k * step)
                    .take_while(|v| *v < hi)
                    .collect();
                values.push(hi);
                values
            }
            Self::Choices(_) => Vec::new(),
        }
    }
}

/// `path=lo..hi`, `path=lo..hi:step` or `path=a|b|c`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Knob {
    pub path: String,
    pub domain: Domain,
}

/// A knob with one of its values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Setting {
    pub path: String,
    pub value: Value,
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.path, self.value)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KnobError {
    #[error(
        "expected a knob such as \"orchestrator.min_tasks=10..60\", \"orchestrator.max_tasks=100..400:50\" or \"cache.prewarm=on|off\", found \"{0}\""
    )]
    Syntax(String),
    #[error("knob {path}: the range {lo}..{hi} is empty")]
    EmptyRange { path: String, lo: i64, hi: i64 },
    #[error("knob {path}: the system model has no such key")]
    UnknownKey { path: String },
    #[error("knob {path}: {value} is not a valid value here: {reason}")]
    BadValue {
        path: String,
        value: String,
        reason: String,
    },
}

impl FromStr for Knob {
    type Err = KnobError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || KnobError::Syntax(s.to_string());
        let (path, values) = s.split_once('=').ok_or_else(syntax)?;
        let path = path.trim();
        if path.is_empty() || values.trim().is_empty() {
            return Err(syntax());
        }
        let values = values.trim();
        let domain = if let Some((lo, rest)) = values.split_once("..") {
            let (hi, step) = rest.split_once(':').unwrap_or((rest, "1"));
            let lo: i64 = lo.trim().parse().map_err(|_| syntax())?;
            let step: i64 = step.trim().parse().map_err(|_| syntax())?;
            if step < 1 {
                return Err(syntax());
            }
            let hi: i64 = hi
                .trim()
                .trim_start_matches('=')
                .parse()
                .map_err(|_| syntax())?;
            if lo > hi {
                return Err(KnobError::EmptyRange {
                    path: path.into(),
                    lo,
                    hi,
                });
            }
            Domain::Range { lo, hi, step }
        } else {
            Domain::Choices(values.split('|').map(|v| Value::parse(v.trim())).collect())
        };
        Ok(Self {
            path: path.to_string(),
            domain,
        })
    }
}

/// `system` with `settings` applied, checked as strictly as a profile's overrides.
pub fn apply(system: &SystemModel, settings: &[Setting]) -> Result<SystemModel, KnobError> {
    let mut tree = serde_json::to_value(system).expect("the system model serializes");
    for setting in settings {
        let pointer = format!("/{}", setting.path.replace('.', "/"));
        let slot = tree
            .pointer_mut(&pointer)
            .ok_or_else(|| KnobError::UnknownKey {
                path: setting.path.clone(),
            })?;
        if slot.is_object() || slot.is_array() {
            return Err(KnobError::UnknownKey {
                path: setting.path.clone(),
            });
        }
        *slot = setting.value.to_json();
    }
    let bad = |setting: Option<&Setting>, reason: String| KnobError::BadValue {
        path: setting.map_or_else(String::new, |s| s.path.clone()),
        value: setting.map_or_else(String::new, |s| s.value.to_string()),
        reason,
    };
    let mut model: SystemModel =
        serde_json::from_value(tree).map_err(|e| bad(settings.first(), e.to_string()))?;
    // Like ECS when a scalable target's bounds change: the running count moves into the
    // new [min, max], so varying min_tasks or max_tasks alone is meaningful. A count the
    // knobs set themselves is left as given (and checked below).
    let o = &mut model.orchestrator;
    let count_set = settings
        .iter()
        .any(|s| s.path == "orchestrator.initial_tasks");
    if !count_set && o.min_tasks <= o.max_tasks {
        o.initial_tasks = o.initial_tasks.clamp(o.min_tasks, o.max_tasks);
    }
    if let Some((key, msg)) = model.problems().into_iter().next() {
        let setting = settings.iter().find(|s| s.path == key).or(settings.first());
        return Err(bad(setting, format!("{key}: {msg}")));
    }
    Ok(model)
}

/// Checks that every knob names a settable key, by applying its first value.
pub fn check(system: &SystemModel, knobs: &[Knob]) -> Result<(), KnobError> {
    for knob in knobs {
        let value = match &knob.domain {
            Domain::Range { hi, .. } => Value::Int(*hi),
            Domain::Choices(v) => v[0].clone(),
        };
        apply(
            system,
            &[Setting {
                path: knob.path.clone(),
                value,
            }],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges_and_choices() {
        let k: Knob = "orchestrator.min_tasks=10..60".parse().unwrap();
        assert_eq!(
            k.domain,
            Domain::Range {
                lo: 10,
                hi: 60,
                step: 1
            }
        );
        let k: Knob = "orchestrator.max_tasks=100..400:50".parse().unwrap();
        assert_eq!(
            k.domain,
            Domain::Range {
                lo: 100,
                hi: 400,
                step: 50
            }
        );
        assert_eq!(k.domain.grid(), [100, 150, 200, 250, 300, 350, 400]);
        let k: Knob = "a=0..10:4".parse().unwrap();
        assert_eq!(
            k.domain.grid(),
            [0, 4, 8, 10],
            "the top of the range is kept"
        );
        assert!(matches!(
            "a=0..10:0".parse::<Knob>(),
            Err(KnobError::Syntax(_))
        ));
        let k: Knob = "cache.prewarm=on|off".parse().unwrap();
        assert_eq!(
            k.domain,
            Domain::Choices(vec![Value::Bool(true), Value::Bool(false)])
        );
        let k: Knob = "bedrock.on_throttle=retry|fallback".parse().unwrap();
        assert_eq!(
            k.domain,
            Domain::Choices(vec![
                Value::Text("retry".into()),
                Value::Text("fallback".into())
            ])
        );
        assert!(matches!(
            "nothing".parse::<Knob>(),
            Err(KnobError::Syntax(_))
        ));
        assert!(matches!(
            "a=5..1".parse::<Knob>(),
            Err(KnobError::EmptyRange { .. })
        ));
        assert!(matches!(
            "a=x..y".parse::<Knob>(),
            Err(KnobError::Syntax(_))
        ));
    }
}
