//! Which grid point to simulate next: the descent replayed on the verdicts known, with
//! passes taken on credit.
//!
//! A passing candidate costs every replication run to the end; a failing one usually
//! stops within minutes of the spike. The plain descent meets its passes first (it starts
//! at the top and bisects down), so most of its time goes to settings above the answer
//! whose pass the answer's own pass implies on monotone ranges. Here the descent is
//! replayed from the start on what is known: a point simulated has its verdict; a point
//! with at least as much of every range as a simulated pass passes, one with at most as
//! much as a simulated failure fails (dominance); any other point of the range being
//! lowered is taken to pass, on credit. When the range's lowering ends, its least point on
//! credit is simulated: if it passes, it proves every credit above it; if it fails, that
//! is a new verdict and the replay takes another path. The descent's path, and so its
//! answer, is the one the plain descent takes when the verdicts are monotone, as it
//! already assumes; only which points are simulated changes.
//!
//! Credit makes the lowering of a range a scan up from its bottom, one cheap failure a
//! step: a range gives credit until `⌈log₂ n⌉ + 1` of its points (n: its grid points) have
//! failed in simulation, then bisects as before, so a long range costs a few failures
//! more than plain bisection at worst.

use std::collections::BTreeMap;

use crate::descent::Descent;

/// What the replay asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Next {
    /// Simulate this grid point (never one with a verdict already).
    Simulate(Vec<usize>),
    /// The descent is over: its path, each point with its verdict.
    Done(Vec<(Vec<usize>, bool)>),
}

/// Grid point → verdict of a simulation.
pub(crate) type Facts = BTreeMap<Vec<usize>, bool>;

/// The next point to simulate for ranges of `sizes` grid points, given `facts`.
pub(crate) fn next(sizes: &[usize], facts: &Facts) -> Next {
    let mut d = Descent::new(sizes);
    let mut path = Vec::new();
    let mut stage = 0;
    let mut credit: Option<Vec<usize>> = None;
    // A descent judges at most ~2 log₂ n + 2 points per range; the bound only guards.
    for _ in 0..10_000 {
        let now = d.stage();
        if now != Some(stage) {
            if let Some(p) = credit.take() {
                if implied(facts, &p) != Some(true) {
                    return Next::Simulate(p);
                }
            }
            let Some(s) = now else {
                return Next::Done(path);
            };
            stage = s;
        }
        let t = d.trial().expect("a descent under way has a trial");
        let verdict = match (facts.get(&t), implied(facts, &t)) {
            (Some(&v), _) | (None, Some(v)) => v,
            (None, None)
                if failures_on_line(facts, &t, stage) < budget(sizes, stage)
                    && !conflicting(facts, &t) =>
            {
                credit = Some(t.clone());
                true
            }
            (None, None) => return Next::Simulate(t),
        };
        path.push((t, verdict));
        d.record(verdict);
    }
    unreachable!("a descent ends within its bounded number of steps")
}

/// Simulated failures a range may meet before it stops giving credit: ⌈log₂ n⌉ + 1.
fn budget(sizes: &[usize], stage: usize) -> usize {
    sizes.get(stage).map_or(1, |&n| {
        (usize::BITS - n.saturating_sub(1).leading_zeros()) as usize + 1
    })
}

/// Simulated failures that differ from `at` in range `stage` alone: what lowering that
/// range has cost in failures so far.
fn failures_on_line(facts: &Facts, at: &[usize], stage: usize) -> usize {
    facts
        .iter()
        .filter(|&(p, &v)| {
            !v && p
                .iter()
                .zip(at)
                .enumerate()
                .all(|(j, (a, b))| j == stage || a == b)
        })
        .count()
}

/// `a` has at most as much of every range as `b`.
fn below(a: &[usize], b: &[usize]) -> bool {
    a.iter().zip(b).all(|(x, y)| x <= y)
}

/// A simulated pass with at most as much of every range: pass; a simulated failure with
/// at least as much: fail; both (the verdicts are not monotone there) or neither: `None`.
pub(crate) fn implied(facts: &Facts, at: &[usize]) -> Option<bool> {
    match (proof(facts, at, true), proof(facts, at, false)) {
        (Some(_), None) => Some(true),
        (None, Some(_)) => Some(false),
        _ => None,
    }
}

/// The simulated point whose verdict `passed` implies `at`'s.
pub(crate) fn proof<'a>(facts: &'a Facts, at: &[usize], passed: bool) -> Option<&'a [usize]> {
    facts
        .iter()
        .find(|&(p, &v)| v == passed && if passed { below(p, at) } else { below(at, p) })
        .map(|(p, _)| p.as_slice())
}

/// Simulated verdicts contradict each other at `at`: it is simulated, not credited.
fn conflicting(facts: &Facts, at: &[usize]) -> bool {
    proof(facts, at, true).is_some() && proof(facts, at, false).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    type Path = Vec<(Vec<usize>, bool)>;
    type Rule = fn(&[usize]) -> bool;

    /// Runs the replay against a pass rule: (points simulated in order, final path).
    fn search(sizes: &[usize], passes: impl Fn(&[usize]) -> bool) -> (Vec<Vec<usize>>, Path) {
        let mut facts = Facts::new();
        let mut simulated = Vec::new();
        for _ in 0..1_000 {
            match next(sizes, &facts) {
                Next::Simulate(at) => {
                    assert!(!facts.contains_key(&at), "{at:?} twice");
                    facts.insert(at.clone(), passes(&at));
                    simulated.push(at);
                }
                Next::Done(path) => return (simulated, path),
            }
        }
        panic!("no end")
    }

    /// The plain descent's path.
    fn plain(sizes: &[usize], passes: impl Fn(&[usize]) -> bool) -> Path {
        let mut d = Descent::new(sizes);
        let mut path = Vec::new();
        while let Some(t) = d.trial() {
            let v = passes(&t);
            d.record(v);
            path.push((t, v));
        }
        path
    }

    #[test]
    fn monotone_verdicts_give_the_plain_descents_path() {
        let rules: [(&[usize], Rule); 6] = [
            (&[21, 11], |a| 3 * a[0] + a[1] >= 25),
            (&[21, 11], |a| a[0] >= 5 && a[1] >= 10),
            (&[21, 11], |_| false),
            (&[21, 11], |_| true),
            (&[9, 5, 3], |a| a[0] * a[1] + a[2] >= 9),
            (&[1000], |a| a[0] >= 700),
        ];
        for (sizes, rule) in rules {
            let (simulated, path) = search(sizes, rule);
            assert_eq!(path, plain(sizes, rule), "{sizes:?}");
            // Every verdict on the path not simulated is proven by one that was.
            let facts: Facts = simulated.iter().map(|p| (p.clone(), rule(p))).collect();
            for (t, v) in &path {
                assert!(
                    facts.contains_key(t) || proof(&facts, t, *v).is_some(),
                    "{t:?}"
                );
            }
        }
    }

    #[test]
    fn credit_spares_the_passes_above_the_answer() {
        // The planner's spike: Sonnet 0..40:2 (21 points), Haiku 0..10, answer (5, 10).
        let rule = |a: &[usize]| a[0] >= 5 && a[1] >= 10;
        let (simulated, _) = search(&[21, 11], rule);
        let passes: Vec<_> = simulated.iter().filter(|p| rule(p)).collect();
        assert_eq!(
            passes,
            [&vec![5, 10]],
            "only the answer's pass is simulated"
        );
        let plain_passes = plain(&[21, 11], rule).iter().filter(|(_, v)| *v).count();
        assert_eq!(plain_passes, 3);
    }

    #[test]
    fn a_long_range_stops_giving_credit() {
        // The answer near the top of 1,000 points: a scan would take 700 runs.
        let (simulated, _) = search(&[1000], |a| a[0] >= 700);
        assert!(simulated.len() <= 2 * 11 + 2, "{}", simulated.len());
    }

    #[test]
    fn contradicting_verdicts_are_simulated_not_implied() {
        let mut facts = Facts::new();
        facts.insert(vec![2, 2], true);
        facts.insert(vec![5, 5], false);
        assert_eq!(implied(&facts, &[3, 3]), None);
        assert!(conflicting(&facts, &[3, 3]));
        assert_eq!(implied(&facts, &[6, 6]), Some(true));
        assert_eq!(implied(&facts, &[1, 1]), Some(false));
        assert_eq!(implied(&facts, &[1, 6]), None);
    }
}
