//! Guards that stop a rehearsal by itself when the system is clearly broken.
//!
//! A rehearsal runs against shared staging and a metered Bedrock account: once it is plain
//! that the system is failing, every further minute costs money and disturbs other people
//! without teaching anything. A threshold with `abort = true` is judged each interval over
//! a sliding window of run time (not the whole run, which would hide a collapse behind a
//! good first hour), from its `after` on; `--max-errors N` is a blunt cap on the errors of
//! the whole run. The coordinator feeds the guard the *merged* rows of all shards, so one
//! shard's bad luck does not stop a run the others show to be healthy, and a breach that is
//! only visible across shards is still seen.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use surge_profile::metric::{Abort, Limit, MetricRef, RatioMetric, Threshold};
use surge_record::{Breach, Histogram, Tag, new_histogram};

use crate::recording::CounterValues;

/// One merged interval of the run, as the guard sees it.
#[derive(Debug, Clone, Default)]
pub struct Slice {
    /// Run time at the interval's end.
    pub end: Duration,
    pub counts: CounterValues,
    /// The histograms of the tags the guard watches ([`Guard::watched`]), in µs.
    pub histograms: BTreeMap<Tag, Histogram<u64>>,
}

/// A threshold that aborts, with the tag its figure is recorded under.
#[derive(Debug, Clone)]
struct Rule {
    threshold: Threshold,
    abort: Abort,
    tag: Option<Tag>,
}

impl Rule {
    fn window(&self) -> Duration {
        self.abort.window.to_std()
    }
}

/// Judges each merged interval against the abort rules; says which one broke first.
#[derive(Debug, Default)]
pub struct Guard {
    rules: Vec<Rule>,
    max_errors: Option<u64>,
    errors: u64,
    recent: VecDeque<Slice>,
    longest: Duration,
}

impl Guard {
    /// The profile's aborting thresholds and the `--max-errors` cap.
    pub fn new(thresholds: &[Threshold], max_errors: Option<u64>) -> Self {
        let rules: Vec<Rule> = thresholds
            .iter()
            .filter_map(|t| {
                Some(Rule {
                    threshold: t.clone(),
                    abort: t.abort?,
                    tag: t.metric.tag().and_then(|tag| tag.parse().ok()),
                })
            })
            .collect();
        let longest = rules.iter().map(Rule::window).max().unwrap_or_default();
        Self {
            rules,
            max_errors,
            longest,
            ..Self::default()
        }
    }

    /// True when anything can stop the run.
    pub fn is_armed(&self) -> bool {
        !self.rules.is_empty() || self.max_errors.is_some()
    }

    /// The histogram tags a [`Slice`] must carry.
    pub fn watched(&self) -> impl Iterator<Item = &Tag> {
        self.rules.iter().filter_map(|r| r.tag.as_ref())
    }

    /// Takes the next merged interval (in order); returns the first guard it breaks.
    pub fn observe(&mut self, slice: Slice) -> Option<Breach> {
        let now = slice.end;
        self.errors += slice.counts.errors.iter().sum::<u64>();
        self.recent.push_back(slice);
        while self
            .recent
            .front()
            .is_some_and(|s| s.end + self.longest <= now)
        {
            self.recent.pop_front();
        }
        let at_s = now.as_secs_f64();
        if let Some(cap) = self.max_errors.filter(|cap| self.errors > *cap) {
            return Some(Breach {
                guard: format!("errors <= {cap} (--max-errors)"),
                measured: self.errors.to_string(),
                at_s,
            });
        }
        self.rules
            .iter()
            .filter(|r| now >= r.abort.after.to_std())
            .find_map(|r| self.judge(r, now))
    }

    /// The rule's figure over its window, when it breaks the limit.
    fn judge(&self, rule: &Rule, now: Duration) -> Option<Breach> {
        let window = self.recent.iter().filter(|s| s.end + rule.window() > now);
        let t = &rule.threshold;
        let measured = match &t.metric {
            MetricRef::Ratio(which) => {
                let (mut hits, mut sent, mut errors) = (0u64, 0u64, 0u64);
                for s in window {
                    sent += s.counts.sent;
                    errors += s.counts.errors.iter().sum::<u64>();
                    hits += match which {
                        RatioMetric::Errors => s.counts.errors.iter().sum::<u64>(),
                        RatioMetric::Late => s.counts.late,
                        RatioMetric::Goodput => s.counts.good,
                    };
                }
                match (hits, sent, which) {
                    (_, 0, _) if errors == 0 => return None,
                    // Nothing sent but errors (every upgrade refused): as bad as it gets.
                    (_, 0, RatioMetric::Goodput) => 0.0,
                    (_, 0, _) => 1.0,
                    _ => hits as f64 / sent as f64,
                }
            }
            MetricRef::Latency { stat, .. } => {
                let tag = rule.tag.as_ref()?;
                let mut merged = new_histogram();
                for h in window.filter_map(|s| s.histograms.get(tag)) {
                    let _ = merged.add(h);
                }
                if merged.is_empty() {
                    return None;
                }
                let us = match stat.quantile() {
                    Some(q) => merged.value_at_quantile(q) as f64,
                    None => merged.mean(),
                };
                us / 1e3
            }
        };
        if t.passes(measured) {
            return None;
        }
        Some(Breach {
            guard: format!("{t} over {}", rule.abort.window),
            measured: match t.limit {
                Limit::Duration(_) => format!("{measured:.0}ms"),
                Limit::Percent(_) => format!("{:.2}%", measured * 100.0),
                Limit::Count(_) => format!("{measured:.0}"),
            },
            at_s: now.as_secs_f64(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn threshold(metric: &str, condition: &str, window_s: u64, after_s: u64) -> Threshold {
        let mut t = Threshold::parse(metric.parse().unwrap(), condition).unwrap();
        t.abort = Some(Abort {
            window: surge_profile::Duration::from_millis(window_s * 1000),
            after: surge_profile::Duration::from_millis(after_s * 1000),
        });
        t
    }

    fn slice(second: u64, sent: u64, errors: u64) -> Slice {
        let mut counts = CounterValues {
            sent,
            ..CounterValues::default()
        };
        counts.errors[0] = errors;
        Slice {
            end: Duration::from_secs(second),
            counts,
            histograms: BTreeMap::new(),
        }
    }

    #[test]
    fn an_error_rate_breaks_over_its_window_not_the_whole_run() {
        let mut g = Guard::new(&[threshold("errors.rate", "< 2%", 5, 0)], None);
        assert!(g.is_armed());
        for s in 1..=20 {
            assert_eq!(g.observe(slice(s, 100, 0)), None, "second {s}");
        }
        // 3 % of each second fails from 21 s on: the 5-s window holds 0.6, 1.2, 1.8, then
        // 2.4 % (the whole run: 0.4 %).
        for s in 21..=23 {
            assert_eq!(g.observe(slice(s, 100, 3)), None, "second {s}");
        }
        let b = g.observe(slice(24, 100, 3)).expect("2.4 % over the window");
        assert_eq!((b.measured.as_str(), b.at_s), ("2.40%", 24.0));
    }

    #[test]
    fn the_first_interval_over_the_limit_is_named() {
        let mut g = Guard::new(&[threshold("errors.rate", "< 2%", 5, 0)], None);
        for s in 1..=20 {
            assert_eq!(g.observe(slice(s, 100, 0)), None);
        }
        // 10 errors in the last 500 sent: exactly 2 %, which breaks "< 2%".
        let b = g.observe(slice(21, 100, 10)).expect("2 % is not below 2 %");
        assert_eq!(b.guard, "errors.rate < 2% over 5s");
        assert_eq!(b.measured, "2.00%");
        assert_eq!(b.at_s, 21.0);
    }

    #[test]
    fn nothing_is_judged_before_after() {
        let mut g = Guard::new(&[threshold("errors.rate", "< 1%", 10, 30)], None);
        for s in 1..30 {
            assert_eq!(g.observe(slice(s, 10, 5)), None, "second {s}");
        }
        let b = g.observe(slice(30, 10, 5)).expect("judged from 30 s");
        assert_eq!(b.measured, "50.00%");
    }

    #[test]
    fn errors_with_nothing_sent_count_as_all() {
        let mut g = Guard::new(&[threshold("errors.rate", "< 50%", 3, 0)], None);
        assert_eq!(
            g.observe(slice(1, 0, 0)),
            None,
            "an idle second says nothing"
        );
        assert_eq!(g.observe(slice(2, 0, 3)).unwrap().measured, "100.00%");
    }

    #[test]
    fn old_intervals_leave_the_window() {
        let mut g = Guard::new(&[threshold("errors.rate", "< 5%", 3, 0)], None);
        // One bad second (4 % of the window's 300) ages out: later seconds judge clean ones.
        assert_eq!(g.observe(slice(1, 100, 4)), None);
        assert_eq!(g.observe(slice(2, 100, 0)), None);
        assert_eq!(g.observe(slice(3, 100, 0)), None);
        // Seconds 2..4: 12 errors of 300 = 4 %; with second 1 still in, it would be 5.3 %.
        assert_eq!(g.observe(slice(4, 100, 12)), None);
        assert!(g.observe(slice(5, 100, 4)).is_some(), "16 of 300");
    }

    #[test]
    fn a_latency_breaks_on_the_merged_window_quantile() {
        let t = threshold("ttft.p99", "< 800ms", 2, 0);
        let mut g = Guard::new(&[t], None);
        let tag: Tag = "ttft".parse().unwrap();
        assert_eq!(g.watched().collect::<Vec<_>>(), vec![&tag]);
        let ms = |values: &[u64]| {
            let mut h = new_histogram();
            for v in values {
                h.record(v * 1000).unwrap();
            }
            h
        };
        let with = |second, h| Slice {
            end: Duration::from_secs(second),
            histograms: BTreeMap::from([(tag.clone(), h)]),
            ..Slice::default()
        };
        // 99 fast answers then one second holding 2 slow ones: p99 of 101 is slow.
        assert_eq!(g.observe(with(1, ms(&[100; 99]))), None);
        let b = g
            .observe(with(2, ms(&[1500, 1500])))
            .expect("p99 over 800 ms");
        assert_eq!(b.guard, "ttft.p99 < 800ms over 2s");
        assert!(b.measured.starts_with("15"), "{}", b.measured);
        // No answers at all in a window: no judgment (a dead system shows in errors).
        let mut quiet = Guard::new(&[threshold("ttft.p99", "< 800ms", 2, 0)], None);
        assert_eq!(quiet.observe(slice(1, 10, 0)), None);
    }

    #[test]
    fn max_errors_counts_the_whole_run() {
        let mut g = Guard::new(&[], Some(10));
        assert!(g.is_armed());
        for s in 1..=5 {
            assert_eq!(g.observe(slice(s, 100, 2)), None, "{} errors", 2 * s);
        }
        let b = g.observe(slice(6, 100, 1)).expect("11 > 10");
        assert_eq!(b.guard, "errors <= 10 (--max-errors)");
        assert_eq!(b.measured, "11");
        assert!(!Guard::new(&[], None).is_armed());
    }

    #[test]
    fn thresholds_without_abort_are_not_guards() {
        let t = Threshold::parse("errors.rate".parse().unwrap(), "< 1%").unwrap();
        let mut g = Guard::new(&[t], None);
        assert!(!g.is_armed());
        assert_eq!(g.observe(slice(1, 10, 10)), None);
    }
}
