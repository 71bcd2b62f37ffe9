//! Judging a candidate on its replications, and knowing before the last one whether it
//! can still pass.
//!
//! A candidate passes when the 95 % confidence bound of every SLO does: the mean plus the
//! Student-t half-width for an upper limit. Two facts let the planner stop simulating a
//! candidate early without changing any verdict:
//!
//! - with n ≤ 4 replications the bound is never below the largest value (Samuelson: the
//!   largest of n values is at most s·(n − 1)/√n above their mean, and t₀.₉₇₅ with n − 1
//!   degrees of freedom is at least n − 1 up to n = 4), so one replication beyond the limit
//!   fails the candidate whatever the others give;
//! - with every replication but one known, the bound as a function of the last value is
//!   convex, so the last one passes only inside an interval: beyond its top the candidate
//!   fails, and the last replication can stop as soon as its figure is sure to exceed that
//!   top (a tighter early-stop limit than the SLO's own).

use surge_profile::metric::{Comparison, Threshold};
use surge_sim::Estimate;

use crate::search::{Slo, SloResult};

/// How far above the exact limit an early stop's limit is put, relative: percentiles are
/// read from histograms with three significant digits, so a value sure to exceed the
/// stop's limit is read as above the exact one.
const HISTOGRAM_SLACK: f64 = 0.002;

/// Whether `slo` limits its figure from above (`<`, `<=`).
pub(crate) fn upper(slo: &Slo) -> bool {
    matches!(slo.0.comparison, Comparison::Less | Comparison::LessOrEqual)
}

/// Passes when the confidence bound on the guarded side meets the limit.
pub(crate) fn judge(slo: &Slo, estimate: &Estimate) -> SloResult {
    let t = &slo.0;
    let hw = if estimate.half_width.is_finite() {
        estimate.half_width
    } else {
        0.0
    };
    let upper_is_guarded = upper(slo);
    let bound = if upper_is_guarded {
        estimate.mean + hw
    } else {
        estimate.mean - hw
    };
    let limit = t.limit.value();
    let passed = bound.is_finite() && t.comparison.holds(bound, limit);
    SloResult {
        slo: slo.to_string(),
        mean: estimate.mean,
        bound,
        limit,
        passed,
        margin: if upper_is_guarded {
            limit - bound
        } else {
            bound - limit
        },
    }
}

/// Whether the SLO passes with these replication values.
fn passes(slo: &Slo, values: Vec<f64>) -> bool {
    judge(slo, &Estimate::from_values(String::new(), values)).passed
}

/// Why `slo` fails whatever the `n − known.len()` replications still to come give, if it
/// does; `known` are the figures of the replications run to the end.
pub(crate) fn settled_failure(slo: &Slo, known: &[f64], n: usize) -> Option<String> {
    if let Some(v) = known.iter().find(|v| !v.is_finite()) {
        return Some(format!("{slo}: a replication has no figure ({v})"));
    }
    let limit = slo.0.limit.value();
    if known.len() + 1 == n {
        return (upper(slo) && last_range(slo, known).is_none()).then(|| {
            format!(
                "{slo}: with the replications run ({}), no last one can bring the 95% bound within {}",
                list(known),
                fmt_limit(slo, limit)
            )
        });
    }
    let beyond = known.iter().find(|&&v| !slo.0.comparison.holds(v, limit))?;
    (upper(slo) && !known.is_empty() && known.len() < n && bound_covers_max(n)).then(|| {
        format!(
            "{slo}: a replication gave {}; with {n} replications the 95% bound is at least the largest value",
            fmt_limit(slo, *beyond)
        )
    })
}

/// Whether the 95 % bound of n values is never inside their largest: t(n − 1) ≥ n − 1.
fn bound_covers_max(n: usize) -> bool {
    n >= 2 && surge_sim::replicate::student_t_975(n - 1) >= (n - 1) as f64
}

/// The largest last value with which `slo` still passes, the others being `known`;
/// `None` when none passes. Only for upper limits.
fn last_range(slo: &Slo, known: &[f64]) -> Option<f64> {
    let with = |b: f64| {
        let mut v = known.to_vec();
        v.push(b);
        v
    };
    let limit = slo.0.limit.value();
    // The bound is convex in the last value: find where it is least, then the top of the
    // interval where it passes. Figures are never negative.
    let (mut lo, mut hi) = (
        0.0_f64,
        limit.max(known.iter().copied().fold(0.0, f64::max)),
    );
    let bound = |b: f64| judge(slo, &Estimate::from_values(String::new(), with(b))).bound;
    for _ in 0..200 {
        let (a, b) = (lo + (hi - lo) / 3.0, hi - (hi - lo) / 3.0);
        if bound(a) <= bound(b) {
            hi = b;
        } else {
            lo = a;
        }
    }
    let best = (lo + hi) / 2.0;
    if !passes(slo, with(best)) {
        return None;
    }
    // The top of the passing interval, at most the limit itself.
    let (mut ok, mut fail) = (best, limit.max(best));
    if passes(slo, with(fail)) {
        return Some(fail);
    }
    for _ in 0..100 {
        let mid = (ok + fail) / 2.0;
        if passes(slo, with(mid)) {
            ok = mid;
        } else {
            fail = mid;
        }
    }
    Some(ok)
}

/// The early-stop thresholds for the last replication to run, the others being `known`
/// (one list of figures per SLO, in order): each upper limit lowered to the top of what
/// the last value may be for the candidate to pass, with slack for histogram rounding.
pub(crate) fn last_run_limits(slos: &[Slo], known: &[Vec<f64>]) -> Vec<Threshold> {
    slos.iter()
        .zip(known)
        .map(|(slo, values)| {
            let mut t = slo.0.clone();
            if !upper(slo) || values.is_empty() {
                return t;
            }
            if let Some(top) = last_range(slo, values) {
                let top = top * (1.0 + HISTOGRAM_SLACK);
                if top < t.limit.value() {
                    t.limit = limit_like(&t, top);
                    t.comparison = Comparison::LessOrEqual;
                }
            }
            t
        })
        .collect()
}

/// A limit of `t`'s kind with the value `v` (ms for durations, a fraction for ratios).
fn limit_like(t: &Threshold, v: f64) -> surge_profile::metric::Limit {
    use surge_profile::metric::Limit;
    match t.limit {
        Limit::Duration(_) => {
            Limit::Duration(surge_profile::Duration::from_nanos((v * 1e6).ceil() as u64))
        }
        Limit::Percent(_) => Limit::Percent(surge_profile::Percent::from_fraction(v.min(1.0))),
        Limit::Count(_) => Limit::Count(v),
    }
}

fn fmt_limit(slo: &Slo, v: f64) -> String {
    match slo.0.limit {
        surge_profile::metric::Limit::Percent(_) => format!("{:.3}%", v * 100.0),
        surge_profile::metric::Limit::Duration(_) => format!("{v:.1} ms"),
        surge_profile::metric::Limit::Count(_) => format!("{v}"),
    }
}

fn list(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:.1}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slo(s: &str) -> Slo {
        s.parse().unwrap()
    }

    #[test]
    fn judging_uses_the_confidence_bound() {
        let slo = slo("e2e.mean<=1.3s");
        let pass = judge(
            &slo,
            &Estimate::from_values("x", vec![1_190.0, 1_200.0, 1_210.0]),
        );
        assert!(pass.passed, "{pass:?}");
        // Mean inside the limit, but the upper bound is not: not good enough.
        let wide = judge(&slo, &Estimate::from_values("x", vec![1_000.0, 1_560.0]));
        assert!(wide.mean < 1_300.0 && !wide.passed, "{wide:?}");
    }

    #[test]
    fn one_value_beyond_the_limit_settles_up_to_four_replications() {
        let s = slo("e2e.p99<=5s");
        for n in 2..=4 {
            assert!(settled_failure(&s, &[5_001.0], n).is_some(), "{n}");
            assert!(settled_failure(&s, &[4_000.0], n).is_none(), "{n}");
            // And indeed no values to come can pass: try a spread of them.
            for b in [0.0, 1_000.0, 4_000.0, 4_999.0] {
                let mut v = vec![5_001.0];
                v.resize(n, b);
                assert!(!passes(&s, v), "{n} {b}");
            }
        }
        // With five, one value beyond can be outweighed: not settled before the last.
        assert!(settled_failure(&s, &[5_001.0], 5).is_none());
        let v = vec![5_001.0, 4_000.0, 4_000.0, 4_000.0, 4_000.0];
        assert!(passes(&s, v));
        // Lower limits are never settled early.
        assert!(settled_failure(&slo("e2e.p50>=5s"), &[1.0], 3).is_none());
    }

    #[test]
    fn the_last_replication_passes_only_inside_an_interval() {
        let s = slo("e2e.p99<=5s");
        let known = [4_000.0];
        let top = last_range(&s, &known).unwrap();
        assert!(top > 4_000.0 && top < 5_000.0, "{top}");
        assert!(passes(&s, vec![4_000.0, top]));
        assert!(!passes(&s, vec![4_000.0, top + 1.0]));
        // Two runs far apart: no third can pass.
        assert!(last_range(&s, &[1_000.0, 4_900.0]).is_none());
        assert!(settled_failure(&s, &[1_000.0, 4_900.0], 3).is_some());
        assert!(settled_failure(&s, &[4_000.0], 2).is_none());
    }

    #[test]
    fn last_run_limits_tighten_upper_limits_only() {
        let slos = [
            slo("e2e.p99<=5s"),
            slo("errors.rate<=0.1%"),
            slo("e2e.p50>=1ms"),
        ];
        let known = [vec![4_000.0], vec![0.0002], vec![3.0]];
        let t = last_run_limits(&slos, &known);
        let top = last_range(&slos[0], &known[0]).unwrap();
        assert!(
            (t[0].limit.value() - top * 1.002).abs() < 1e-3,
            "{:?}",
            t[0]
        );
        assert!(t[1].limit.value() < 0.001 && t[1].limit.value() > 0.0002);
        assert_eq!(t[2], slos[2].0);
        // A value above the tightened limit fails the candidate, slack included.
        for (s, (lim, k)) in slos.iter().zip(t.iter().zip(&known)).take(2) {
            let over = lim.limit.value() * (1.0 - HISTOGRAM_SLACK / 2.0);
            assert!(!passes(s, vec![k[0], over]), "{s}");
        }
    }
}
