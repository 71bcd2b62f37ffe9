//! The search: coordinate descent over monotone ranges, enumeration over choices, each
//! candidate judged by replications.
//!
//! Per combination of choices, the search starts from every range at its top (the most
//! capacity); if that fails, no setting of the ranges can pass. Then each range in turn is
//! lowered to the least value that still passes, others held: its bottom is tried first
//! (a knob that is not needed costs one run), then the grid is bisected. One pass is
//! enough: a value that failed with more capacity elsewhere fails with less, so a second
//! pass could not lower anything. A failing candidate stops simulating as soon as an SLO
//! can no longer hold ([`SimOptions::stop_when_failed`]), so failures are cheap and the
//! search spends its time on settings that pass. Ranges are lowered in the order given:
//! put the costliest first.

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
    /// Set when a replication stopped as soon as an SLO could no longer hold: why. The
    /// figures then cover that run only up to there.
    pub stopped_early: Option<String>,
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

    /// Candidates sorted by cost: the cost/latency frontier explored. Candidates stopped
    /// early (whose cost covers only part of the profile) come last.
    pub fn by_cost(&self) -> Vec<&Candidate> {
        let mut v: Vec<&Candidate> = self.candidates.iter().collect();
        v.sort_by(|a, b| {
            (a.stopped_early.is_some(), a.cost)
                .partial_cmp(&(b.stopped_early.is_some(), b.cost))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
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
///
/// Combinations of choices are searched in parallel, one per thread, each running its
/// replications one after another and skipping the rest once one has failed for sure;
/// with fewer combinations than threads, a candidate's replications run in parallel.
pub fn plan(
    profile: &Profile,
    knobs: &[Knob],
    slos: &[Slo],
    opts: &PlanOptions,
    progress: impl FnMut(&Candidate) + Send,
) -> Result<Plan, PlanError> {
    if knobs.is_empty() {
        return Err(PlanError::NoKnobs);
    }
    if slos.is_empty() {
        return Err(PlanError::NoSlos);
    }
    knob::check(&profile.system, knobs)?;
    let ranges: Vec<(&Knob, Vec<i64>)> = knobs
        .iter()
        .filter(|k| matches!(k.domain, Domain::Range { .. }))
        .map(|k| (k, k.domain.grid()))
        .collect();
    let combos = choice_combinations(knobs);
    let threads = opts.threads.max(1);
    let combo_threads = threads.min(combos.len());
    let replication_threads = (threads / combo_threads).max(1);
    let progress = std::sync::Mutex::new(progress);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Result<Vec<CombosSearched>, PlanError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..combo_threads)
            .map(|_| {
                let (ranges, combos, next, progress) = (&ranges, &combos, &next, &progress);
                scope.spawn(move || {
                    let mut done = Vec::new();
                    loop {
                        let c = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(combo) = combos.get(c) else {
                            return Ok(done);
                        };
                        let mut search = Search {
                            profile,
                            slos,
                            opts,
                            replication_threads,
                            seen: BTreeMap::new(),
                            candidates: Vec::new(),
                        };
                        let mut report = |cand: &Candidate| {
                            (progress.lock().expect("progress is not poisoned"))(cand);
                        };
                        search.descend(combo, ranges, &mut report)?;
                        done.push((c, search.candidates));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("planner threads do not panic"))
            .collect()
    });
    let mut by_combo = Vec::new();
    for r in results {
        by_combo.extend(r?);
    }
    by_combo.sort_by_key(|(c, _)| *c);
    let candidates: Vec<Candidate> = by_combo.into_iter().flat_map(|(_, c)| c).collect();
    let winner = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.passed)
        .min_by(|a, b| a.1.cost.total_cmp(&b.1.cost))
        .map(|(i, _)| i);
    Ok(Plan { candidates, winner })
}

/// The candidates one combination of choices (by index) explored.
type CombosSearched = (usize, Vec<Candidate>);

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
    /// Threads for one candidate's replications (1: one after another, stopping at the
    /// first certain failure).
    replication_threads: usize,
    /// Settings label → index in `candidates`, so no setting is simulated twice.
    seen: BTreeMap<String, usize>,
    candidates: Vec<Candidate>,
}

impl Search<'_> {
    /// Coordinate descent over `ranges` with the choices of `combo` (see the module docs).
    fn descend(
        &mut self,
        combo: &[Setting],
        ranges: &[(&Knob, Vec<i64>)],
        progress: &mut impl FnMut(&Candidate),
    ) -> Result<(), PlanError> {
        // Grid index of each range's value; all at the top first.
        let mut current: Vec<usize> = ranges.iter().map(|(_, grid)| grid.len() - 1).collect();
        let settings = |at: &[usize]| -> Vec<Setting> {
            let mut s = combo.to_vec();
            s.extend(ranges.iter().zip(at).map(|((k, grid), &i)| Setting {
                path: k.path.clone(),
                value: Value::Int(grid[i]),
            }));
            s
        };
        if !self.passes(settings(&current), progress)? {
            return Ok(()); // even the most capacity does not meet the SLOs with these choices
        }
        for i in 0..ranges.len() {
            // Invariant: `passing` passes; everything at or below `failing` fails.
            let mut passing = current[i];
            let mut trial = current.clone();
            trial[i] = 0;
            if passing == 0 || self.passes(settings(&trial), progress)? {
                current[i] = 0;
                continue;
            }
            let mut failing = 0;
            while passing - failing > 1 {
                trial[i] = failing + (passing - failing) / 2;
                if self.passes(settings(&trial), progress)? {
                    passing = trial[i];
                } else {
                    failing = trial[i];
                }
            }
            current[i] = passing;
        }
        Ok(())
    }

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
        let slos: Vec<Threshold> = self.slos.iter().map(|s| s.0.clone()).collect();
        let slos = &slos;
        let n = self.opts.replications.max(1) as u64;
        // Once one replication has failed for sure, the candidate fails: start no more.
        let failed = std::sync::atomic::AtomicBool::new(false);
        let runs: Vec<Result<surge_sim::SimOutcome, SimError>> = std::thread::scope(|scope| {
            let threads = self.replication_threads.clamp(1, n as usize);
            let handles: Vec<_> = (0..threads as u64)
                .map(|t| {
                    let (profile, failed) = (&profile, &failed);
                    scope.spawn(move || {
                        let mut runs = Vec::new();
                        for i in (t..n).step_by(threads) {
                            if failed.load(std::sync::atomic::Ordering::Relaxed) {
                                break;
                            }
                            let opts = SimOptions {
                                seed: Some(base_seed.wrapping_add(i)),
                                stop_when_failed: slos.clone(),
                                ..SimOptions::default()
                            };
                            let run = simulate(profile, &opts);
                            if run.as_ref().is_ok_and(|r| r.report.stopped_early.is_some()) {
                                failed.store(true, std::sync::atomic::Ordering::Relaxed);
                            }
                            runs.push((i, run));
                        }
                        runs
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
        let stopped_early = runs.iter().find_map(|r| r.report.stopped_early.clone());
        Ok(Candidate {
            passed: stopped_early.is_none() && slos.iter().all(|s| s.passed),
            settings,
            cost,
            slos,
            stopped_early,
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
