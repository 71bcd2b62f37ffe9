//! Coordinate descent over the monotone ranges of one combination of choices, as a state
//! machine: it names the next grid point to judge and is told the verdict, so a scheduler
//! can run the simulations on whichever thread is free without changing which points are
//! judged.
//!
//! The search starts from every range at its top (the most capacity); if that fails, no
//! setting of the ranges can pass. Then each range in turn is lowered to the least value
//! that still passes, others held: its bottom is tried first (a knob that is not needed
//! costs one run), then the grid is bisected. One pass is enough: a value that failed
//! with more capacity elsewhere fails with less, so a second pass could not lower
//! anything.
//!
//! No point it asks for is implied by an earlier verdict on a monotone knob: a trial on
//! range `i` lies strictly between a passing and a failing value of `i` with the ranges
//! after `i` at their top, so it has less of range `i` than every earlier pass and more of
//! some range than every earlier failure. Dominance pruning would never fire here.

/// Where the descent is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Every range at its top.
    Top,
    /// Range `knob` at its bottom.
    Bottom {
        knob: usize,
    },
    /// Range `knob` between a passing and a failing grid index.
    Bisect {
        knob: usize,
        passing: usize,
        failing: usize,
    },
    Done,
}

/// The descent over ranges with `sizes[i]` grid points each.
#[derive(Debug, Clone)]
pub(crate) struct Descent {
    /// Grid index of each range's value: its top, then the least found to pass.
    current: Vec<usize>,
    step: Step,
}

impl Descent {
    /// Starts at the top of every range (each size at least 1).
    pub fn new(sizes: &[usize]) -> Self {
        Self {
            current: sizes.iter().map(|n| n.saturating_sub(1)).collect(),
            step: Step::Top,
        }
    }

    /// The grid point to judge next; `None` when the descent is over.
    pub fn trial(&self) -> Option<Vec<usize>> {
        let mut at = self.current.clone();
        match self.step {
            Step::Top => {}
            Step::Bottom { knob } => at[knob] = 0,
            Step::Bisect {
                knob,
                passing,
                failing,
            } => at[knob] = failing + (passing - failing) / 2,
            Step::Done => return None,
        }
        Some(at)
    }

    /// The range being lowered (the top counts as the first range's); `None` when over.
    pub fn stage(&self) -> Option<usize> {
        match self.step {
            Step::Top => Some(0),
            Step::Bottom { knob } | Step::Bisect { knob, .. } => Some(knob),
            Step::Done => None,
        }
    }

    /// The verdict on [`Self::trial`].
    pub fn record(&mut self, passed: bool) {
        let Some(at) = self.trial() else { return };
        match self.step {
            Step::Top if passed => self.lower(0),
            Step::Top | Step::Done => self.step = Step::Done,
            Step::Bottom { knob } if passed => {
                self.current[knob] = 0;
                self.lower(knob + 1);
            }
            Step::Bottom { knob } => self.narrow(knob, self.current[knob], 0),
            Step::Bisect {
                knob,
                passing,
                failing,
            } => {
                if passed {
                    self.narrow(knob, at[knob], failing);
                } else {
                    self.narrow(knob, passing, at[knob]);
                }
            }
        }
    }

    /// Starts lowering range `knob` (or finishes when there is none left).
    fn lower(&mut self, knob: usize) {
        self.step = match self.current.get(knob) {
            None => Step::Done,
            Some(0) => return self.lower(knob + 1),
            Some(_) => Step::Bottom { knob },
        };
    }

    fn narrow(&mut self, knob: usize, passing: usize, failing: usize) {
        if passing - failing > 1 {
            self.step = Step::Bisect {
                knob,
                passing,
                failing,
            };
        } else {
            self.current[knob] = passing;
            self.lower(knob + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the descent against a pass rule and returns the points it judged.
    fn run(sizes: &[usize], passes: impl Fn(&[usize]) -> bool) -> Vec<Vec<usize>> {
        let mut d = Descent::new(sizes);
        let mut judged = Vec::new();
        for _ in 0..1_000 {
            let Some(at) = d.trial() else { break };
            d.record(passes(&at));
            judged.push(at);
        }
        judged
    }

    #[test]
    fn finds_the_least_passing_value_of_each_range() {
        // Passes when 3·a + b ≥ 40 on grids of 21 and 11 points.
        let judged = run(&[21, 11], |at| 3 * at[0] + at[1] >= 40);
        let passing: Vec<_> = judged.iter().filter(|at| 3 * at[0] + at[1] >= 40).collect();
        // a lowered with b at its top: 3a ≥ 30 → a = 10; then b: 30 + b ≥ 40 → b = 10.
        assert_eq!(passing.last().unwrap(), &&vec![10, 10]);
        assert_eq!(judged[0], [20, 10], "the top first");
        assert_eq!(judged[1], [0, 10], "then the bottom of the first range");
    }

    #[test]
    fn a_failing_top_ends_the_search() {
        assert_eq!(run(&[5, 5], |_| false), [vec![4, 4]]);
    }

    #[test]
    fn an_unneeded_range_costs_one_run() {
        let judged = run(&[9], |_| true);
        assert_eq!(judged, [vec![8], vec![0]]);
    }

    #[test]
    fn no_trial_is_implied_by_an_earlier_verdict() {
        // The module's claim, on a few monotone pass rules: no trial dominates an earlier
        // pass or is dominated by an earlier failure.
        let rules: [fn(&[usize]) -> bool; 3] = [
            |at| 3 * at[0] + at[1] >= 40,
            |at| at[0] >= 7 && at[1] >= 2 && at[2] >= 1,
            |at| at[0] * at[1] + at[2] >= 12,
        ];
        for (sizes, rule) in [[21, 11, 1], [10, 4, 3], [5, 5, 6]].iter().zip(rules) {
            let judged = run(sizes, |at| rule(&[at[0], at[1], *at.get(2).unwrap_or(&0)]));
            for (k, t) in judged.iter().enumerate() {
                for e in &judged[..k] {
                    let ge = t.iter().zip(e).all(|(a, b)| a >= b);
                    let le = t.iter().zip(e).all(|(a, b)| a <= b);
                    let passed = rule(&[e[0], e[1], *e.get(2).unwrap_or(&0)]);
                    let implied = if passed { ge } else { le };
                    assert!(!implied, "{t:?} after {e:?}");
                }
            }
        }
    }
}
