//! `[goodput]`: what a *good* answer is, per answer, the way LLM serving benchmarks count.
//!
//! Percentiles say how slow the slow answers were; goodput says how much of the traffic was
//! served well: the share of messages whose answer met every SLO (time to first token,
//! end to end, time per output token) and the good answers per second. The load generator
//! and the simulator judge each answer with [`Slos::good`], so a prediction and a
//! measurement count the same answers as good.

use serde::{Deserialize, Serialize};

use crate::units::Duration;

/// Per-answer SLOs; an absent one is not judged. All absent: no goodput is reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slos {
    /// Intended send → first token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft: Option<Duration>,
    /// Intended send → done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2e: Option<Duration>,
    /// Time per output token after the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpot: Option<Duration>,
}

/// One answer's figures, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnswerTimes {
    /// Intended send → first token; `None` when the answer carried no token before done
    /// (then the first token is taken to be the done frame).
    pub ttft_us: Option<u64>,
    pub e2e_us: u64,
    /// `None` for an answer of fewer than two tokens (nothing to judge).
    pub tpot_us: Option<u64>,
}

impl Slos {
    /// True when the profile asks for goodput.
    pub fn any(&self) -> bool {
        self.ttft.is_some() || self.e2e.is_some() || self.tpot.is_some()
    }

    /// Whether an answer met every SLO (each is inclusive: an answer exactly at the SLO is
    /// good).
    pub fn good(&self, a: &AnswerTimes) -> bool {
        let within = |slo: Option<Duration>, us: u64| slo.is_none_or(|d| us <= d.as_micros());
        within(self.ttft, a.ttft_us.unwrap_or(a.e2e_us))
            && within(self.e2e, a.e2e_us)
            && a.tpot_us.is_none_or(|t| within(self.tpot, t))
    }

    /// The SLOs back from [`Slos::in_ms`]'s names and milliseconds (as summary.json keeps
    /// them); unknown names are ignored.
    pub fn from_ms<'a>(slo_ms: impl IntoIterator<Item = (&'a String, &'a f64)>) -> Slos {
        let mut s = Slos::default();
        for (name, ms) in slo_ms {
            let d = Some(Duration::from_secs_f64(ms.max(0.0) / 1e3));
            match name.as_str() {
                "ttft" => s.ttft = d,
                "e2e" => s.e2e = d,
                "tpot" => s.tpot = d,
                _ => {}
            }
        }
        s
    }

    /// The SLOs in milliseconds by name, for reports.
    pub fn in_ms(&self) -> Vec<(&'static str, f64)> {
        [("ttft", self.ttft), ("e2e", self.e2e), ("tpot", self.tpot)]
            .into_iter()
            .filter_map(|(name, d)| Some((name, d?.as_secs_f64() * 1e3)))
            .collect()
    }
}

/// Time per output token after the first, from the first and last token times and the
/// number of output tokens; `None` below two tokens.
pub fn tpot_us(first_to_last_us: u64, tokens: u64) -> Option<u64> {
    (tokens >= 2).then(|| first_to_last_us / (tokens - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Option<Duration> {
        Some(Duration::from_millis(n))
    }

    #[test]
    fn an_answer_is_good_when_it_meets_every_slo() {
        let slos = Slos {
            ttft: ms(1000),
            e2e: ms(5000),
            tpot: ms(50),
        };
        let a = |ttft: Option<u64>, e2e: u64, tpot: Option<u64>| AnswerTimes {
            ttft_us: ttft.map(|m| m * 1000),
            e2e_us: e2e * 1000,
            tpot_us: tpot.map(|m| m * 1000),
        };
        assert!(
            slos.good(&a(Some(1000), 5000, Some(50))),
            "exactly at the SLOs"
        );
        assert!(
            !slos.good(&a(Some(1001), 2000, Some(10))),
            "slow first token"
        );
        assert!(!slos.good(&a(Some(100), 5001, Some(10))), "slow end");
        assert!(!slos.good(&a(Some(100), 2000, Some(51))), "slow tokens");
        assert!(
            slos.good(&a(Some(100), 2000, None)),
            "one token: no TPOT to judge"
        );
        assert!(
            !slos.good(&a(None, 1500, None)),
            "no token frame: ttft is the done frame"
        );
        assert!(Slos::default().good(&a(None, 1_000_000, None)));
        assert!(!Slos::default().any() && slos.any());
        assert_eq!(
            slos.in_ms(),
            vec![("ttft", 1000.0), ("e2e", 5000.0), ("tpot", 50.0)]
        );
    }

    #[test]
    fn tpot_spreads_the_stream_over_the_tokens_after_the_first() {
        assert_eq!(tpot_us(990_000, 100), Some(10_000));
        assert_eq!(tpot_us(0, 1), None);
        assert_eq!(tpot_us(5, 0), None);
    }
}
