//! Metric names and hlog tags (`e2e`, `ttft:manga_jp`).
//!
//! Why it exists: the tag string is how the simulator, the load generator and the analyzer
//! agree on what a histogram measures. A closed [`Metric`] enum plus a validated qualifier means
//! a typo is a compile error or a construction error, never a silently separate series, and a
//! tag can never break the comma-separated hlog line it is written into.
//!
//! Values recorded under a latency tag are **microseconds**; under a token tag (`tokens`,
//! `input_tokens`: [`Metric::is_count`]) they are counts.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// The base metrics are the profile crate's vocabulary, so a threshold, a tag and a report
/// column can never disagree on a name. Latencies are in microseconds, token counts are counts.
pub use surge_profile::metric::LatencyMetric as Metric;

/// A metric plus an optional qualifier: printed and parsed as `metric` or `metric:qualifier`.
///
/// The qualifier names a store, model, stage, … (`ttft:manga_jp`, `e2e:haiku`). It must be
/// non-empty and may not contain `,`, whitespace (space, CR, LF, tab…) or control characters,
/// because it is written verbatim into `Tag=<tag>,` of an hlog line and used as a JSON key.
/// Ordering is by metric, then untagged before qualified, then qualifier.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag {
    metric: Metric,
    qualifier: Option<Box<str>>,
}

impl Tag {
    /// The plain tag for a metric (`e2e`).
    pub const fn metric_only(metric: Metric) -> Tag {
        Tag {
            metric,
            qualifier: None,
        }
    }

    /// A qualified tag (`ttft:manga_jp`); fails on an empty qualifier or a forbidden character.
    pub fn qualified(metric: Metric, qualifier: &str) -> Result<Tag> {
        validate_qualifier(qualifier).map_err(|reason| Error::InvalidTag {
            input: format!("{}:{qualifier}", metric.name()),
            reason,
        })?;
        Ok(Tag {
            metric,
            qualifier: Some(qualifier.into()),
        })
    }

    /// The base metric.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// The qualifier, if any.
    pub fn qualifier(&self) -> Option<&str> {
        self.qualifier.as_deref()
    }
}

fn validate_qualifier(q: &str) -> std::result::Result<(), String> {
    if q.is_empty() {
        return Err("the qualifier after `:` is empty".to_string());
    }
    if let Some(c) = q
        .chars()
        .find(|&c| c == ',' || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "qualifier contains {c:?}; tags may not contain ',', whitespace (space, CR, LF) \
             or control characters"
        ));
    }
    Ok(())
}

impl From<Metric> for Tag {
    fn from(metric: Metric) -> Tag {
        Tag::metric_only(metric)
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.metric.name())?;
        if let Some(q) = &self.qualifier {
            f.write_str(":")?;
            f.write_str(q)?;
        }
        Ok(())
    }
}

impl FromStr for Tag {
    type Err = Error;

    fn from_str(s: &str) -> Result<Tag> {
        let (metric, qualifier) = match s.split_once(':') {
            Some((m, q)) => (m, Some(q)),
            None => (s, None),
        };
        let metric: Metric = metric.parse().map_err(|e| Error::InvalidTag {
            input: s.to_string(),
            reason: format!("{e}"),
        })?;
        match qualifier {
            None => Ok(Tag::metric_only(metric)),
            Some(q) => validate_qualifier(q)
                .map(|()| Tag {
                    metric,
                    qualifier: Some(q.into()),
                })
                .map_err(|reason| Error::InvalidTag {
                    input: s.to_string(),
                    reason,
                }),
        }
    }
}

impl Serialize for Tag {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Tag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Tag, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print_round_trip() {
        for s in [
            "e2e",
            "ttft",
            "itl",
            "service",
            "connect",
            "lag",
            "ttft:manga_jp",
            "e2e:haiku",
        ] {
            let t: Tag = s.parse().unwrap();
            assert_eq!(t.to_string(), s);
        }
        let t: Tag = "ttft:manga_jp".parse().unwrap();
        assert_eq!(t.metric(), Metric::Ttft);
        assert_eq!(t.qualifier(), Some("manga_jp"));
        assert_eq!(Tag::from(Metric::E2e).qualifier(), None);
    }

    #[test]
    fn rejects_forbidden_characters_with_clear_error() {
        for bad in [
            "e2e:a,b", "e2e:a b", "e2e:a\rb", "e2e:a\nb", "e2e:a\tb", "e2e:",
        ] {
            let err = bad.parse::<Tag>().unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("invalid tag"), "{msg}");
            assert!(msg.contains(&format!("{bad:?}")), "{msg}");
        }
        let err = Tag::qualified(Metric::Ttft, "manga jp")
            .unwrap_err()
            .to_string();
        assert!(err.contains("whitespace"), "{err}");
        let err = Tag::qualified(Metric::Ttft, "a,b").unwrap_err().to_string();
        assert!(err.contains("','"), "{err}");
    }

    #[test]
    fn rejects_unknown_metric() {
        let err = "latency:x".parse::<Tag>().unwrap_err().to_string();
        assert!(err.contains("unknown metric \"latency\""), "{err}");
        assert!(
            err.contains("e2e, ttft, itl, service, connect, lag"),
            "{err}"
        );
        assert!("".parse::<Tag>().is_err());
        assert!("E2E".parse::<Tag>().is_err());
    }

    #[test]
    fn serde_as_string_and_map_key() {
        let t: Tag = "e2e:haiku".parse().unwrap();
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"e2e:haiku\"");
        let mut m = std::collections::BTreeMap::new();
        m.insert(t.clone(), 1u32);
        m.insert(Tag::from(Metric::E2e), 2u32);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"e2e":2,"e2e:haiku":1}"#);
        let back: std::collections::BTreeMap<Tag, u32> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        assert!(serde_json::from_str::<Tag>("\"e2e:a b\"").is_err());
    }
}
