//! The search: coordinate descent over monotone ranges, enumeration over choices, each
//! candidate judged by replications.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use surge_profile::Profile;
use surge_profile::metric::{Comparison, MetricError, MetricRef, Threshold};
use surge_sim::{Estimate, SimError, SimOptions, simulate};

use crate::knob::{self, Domain, Knob, KnobError, Setting, Value};

/// A service-level objective: `ttft.p99<=1s`, `errors.rate<=0.1%`.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo(pub Threshold);

impl FromStr for Slo {
    type Err = MetricError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let at = s
            .find(['<', '>'])
            .ok_or_else(|| MetricError::BadComparison(s.to_string()))?;
        let metric: MetricRef = s[..at].trim().parse()?;
        Threshold::parse(metric, &s[at..]).map(Slo)
    }
}

impl fmt::Display for Slo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How one SLO fared over a candidate's replications.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SloResult {
    pub slo: String,
    /// Mean over replications (ms for latencies, a fraction for ratios).
    pub mean: f64,
    /// The 95 % confidence bound on the side the limit guards (the mean with one run).
    pub bound: f64,
    pub limit: f64,
    pub passed: bool,
    /// How far the bound is inside the limit (negative when it fails).
    pub margin: f64,
}

/// One setting the planner simulated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub settings: Vec<Setting>,
    /// Mean cost of the simulated profile, US dollars.
    pub cost: f64,
    pub slos: Vec<SloResult>,
    pub passed: bool,
}

impl Candidate {
    pub fn label(&self) -> String {
        self.settings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What the search explored and what it chose.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Every candidate simulated, in the order tried.
    pub candidates: Vec<Candidate>,
    /// Index of the cheapest candidate that met every SLO.
    pub winner: Option<usize>,
}

impl Plan {
    pub fn winner(&self) -> Option<&Candidate> {
        self.winner.map(|i| &self.candidates[i])
    }

    /// Candidates sorted by cost: the cost/latency frontier explored.
    pub fn by_cost(&self) -> Vec<&Candidate> {
        let mut v: Vec<&Candidate> = self.candidates.iter().collect();
        v.sort_by(|a, b| a.cost.total_cmp(&b.cost));
        v
    }
}

/// How to search.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// Replications per candidate (seeds seed, seed + 1, …).
    pub replications: u32,
    pub threads: usize,
    pub seed: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Knob(#[from] KnobError),
    #[error("simulating {settings}: {source}")]
    Sim { settings: String, source: SimError },
    #[error("no knobs to vary: give at least one --vary")]
    NoKnobs,
    #[error("no SLOs to meet: give at least one --slo")]
    NoSlos,
}

/// Searches `knobs` for the cheapest setting of `profile` that meets every SLO.
pub fn plan(
    profile: &Profile,
    knobs: &[Knob],
    slos: &[Slo],
    opts: &PlanOptions,
    mut progress: impl FnMut(&Candidate),
) -> Result<Plan, PlanError> {
    if knobs.is_empty() {
        return Err(PlanError::NoKnobs);
    }
    if slos.is_empty() {
        return Err(PlanError::NoSlos);
    }
    knob::check(&profile.system, knobs)?;
    let mut search = Search {
        profile,
        slos,
        opts,
        seen: BTreeMap::new(),
        candidates: Vec::new(),
    };
    let ranges: Vec<(&Knob, i64, i64)> = knobs
        .iter()
        .filter_map(|k| match k.domain {
            Domain::Range { lo, hi } => Some((k, lo, hi)),
            Domain::Choices(_) => None,
        })
        .collect();
    for combo in choice_combinations(knobs) {
        let mut current: Vec<i64> = ranges.iter().map(|(_, _, hi)| *hi).collect();
        let settings = |values: &[i64]| -> Vec<Setting> {
            let mut s = combo.clone();
            s.extend(ranges.iter().zip(values).map(|((k, _, _), v)| Setting {
                path: k.path.clone(),
                value: Value::Int(*v),
            }));
            s
        };
        if !search.passes(settings(&current), &mut progress)? {
            continue; // even the most capacity does not meet the SLOs with these choices
        }
        // Coordinate descent: lower each range to the least value that still passes.
        for _pass in 0..3 {
            let mut changed = false;
            for i in 0..ranges.len() {
                let (mut lo, mut hi) = (ranges[i].1, current[i]);
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    let mut trial = current.clone();
                    trial[i] = mid;
                    if search.passes(settings(&trial), &mut progress)? {
                        hi = mid;
                    } else {
                        lo = mid + 1;
                    }
                }
                if hi != current[i] {
                    current[i] = hi;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
    }
    let winner = search
        .candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.passed)
        .min_by(|a, b| a.1.cost.total_cmp(&b.1.cost))
        .map(|(i, _)| i);
    Ok(Plan {
        candidates: search.candidates,
        winner,
    })
}

/// Every combination of the choice knobs' values (one empty combination when none).
fn choice_combinations(knobs: &[Knob]) -> Vec<Vec<Setting>> {
    let mut combos = vec![Vec::new()];
    for knob in knobs {
        if let Domain::Choices(values) = &knob.domain {
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    values.iter().map(move |v| {
                        let mut c = c.clone();
                        c.push(Setting {
                            path: knob.path.clone(),
                            value: v.clone(),
                        });
                        c
                    })
                })
                .collect();
        }
    }
    combos
}

struct Search<'a> {
    profile: &'a Profile,
    slos: &'a [Slo],
    opts: &'a PlanOptions,
    /// Settings label → index in `candidates`, so no setting is simulated twice.
    seen: BTreeMap<String, usize>,
    candidates: Vec<Candidate>,
}

impl Search<'_> {
    fn passes(
        &mut self,
        settings: Vec<Setting>,
        progress: &mut impl FnMut(&Candidate),
    ) -> Result<bool, PlanError> {
        let label = settings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(&i) = self.seen.get(&label) {
            return Ok(self.candidates[i].passed);
        }
        let candidate = self.evaluate(settings, &label)?;
        progress(&candidate);
        let passed = candidate.passed;
        self.seen.insert(label, self.candidates.len());
        self.candidates.push(candidate);
        Ok(passed)
    }

    fn evaluate(&self, settings: Vec<Setting>, label: &str) -> Result<Candidate, PlanError> {
        let mut profile = self.profile.clone();
        profile.system = knob::apply(&self.profile.system, &settings)?;
        let base_seed = self.opts.seed.unwrap_or(profile.seed);
        let n = self.opts.replications.max(1) as u64;
        let runs: Vec<Result<surge_sim::SimOutcome, SimError>> = std::thread::scope(|scope| {
            let threads = self.opts.threads.clamp(1, n as usize);
            let handles: Vec<_> = (0..threads as u64)
                .map(|t| {
                    let profile = &profile;
                    scope.spawn(move || {
                        (t..n)
                            .step_by(threads)
                            .map(|i| {
                                let opts = SimOptions {
                                    seed: Some(base_seed.wrapping_add(i)),
                                    ..SimOptions::default()
                                };
                                (i, simulate(profile, &opts))
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            let mut all: Vec<_> = handles
                .into_iter()
                .flat_map(|h| h.join().expect("simulation threads do not panic"))
                .collect();
            all.sort_by_key(|(i, _)| *i);
            all.into_iter().map(|(_, r)| r).collect()
        });
        let runs = runs
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| PlanError::Sim {
                settings: label.to_string(),
                source,
            })?;
        let cost = runs.iter().map(|r| r.report.cost.run_total).sum::<f64>() / runs.len() as f64;
        let slos: Vec<SloResult> = self
            .slos
            .iter()
            .map(|slo| {
                let values: Vec<f64> = runs
                    .iter()
                    .map(|r| r.summary.measure(&slo.0.metric).unwrap_or(f64::INFINITY))
                    .collect();
                judge(slo, &Estimate::from_values(slo.to_string(), values))
            })
            .collect();
        Ok(Candidate {
            passed: slos.iter().all(|s| s.passed),
            settings,
            cost,
            slos,
        })
    }
}

/// Passes when the confidence bound on the guarded side meets the limit.
fn judge(slo: &Slo, estimate: &Estimate) -> SloResult {
    let t = &slo.0;
    let hw = if estimate.half_width.is_finite() {
        estimate.half_width
    } else {
        0.0
    };
    let upper_is_guarded = matches!(t.comparison, Comparison::Less | Comparison::LessOrEqual);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slos_parse_without_spaces() {
        let s: Slo = "ttft.p99<=1s".parse().unwrap();
        assert_eq!(s.to_string(), "ttft.p99 <= 1s");
        let s: Slo = "errors.rate <= 0.1%".parse().unwrap();
        assert!((s.0.limit.value() - 0.001).abs() < 1e-12);
        assert!("latency.p99<=1s".parse::<Slo>().is_err());
        assert!("ttft.p99 1s".parse::<Slo>().is_err());
    }

    #[test]
    fn judging_uses_the_confidence_bound() {
        let slo: Slo = "e2e.mean<=1.3s".parse().unwrap();
        let pass = judge(
            &slo,
            &Estimate::from_values("x", vec![1_190.0, 1_200.0, 1_210.0]),
        );
        assert!(pass.passed, "{pass:?}");
        // Mean inside the limit, but the upper bound is not: not good enough.
        let wide = judge(&slo, &Estimate::from_values("x", vec![1_000.0, 1_560.0]));
        assert!(wide.mean < 1_300.0 && !wide.passed, "{wide:?}");
    }
}
