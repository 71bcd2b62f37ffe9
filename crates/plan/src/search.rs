//! The search: coordinate descent over monotone ranges ([`crate::descent`]), enumeration
//! over choices, each candidate judged by replications ([`crate::verdict`]), the
//! simulations spread over the threads by [`crate::pool`].
//!
//! A failing candidate stops simulating as soon as an SLO can no longer hold
//! ([`SimOptions::stop_when_failed`]), and its remaining replications are not run once
//! its failure is certain, so failures are cheap and the search spends its time on
//! settings that pass. Ranges are lowered in the order given: put the costliest first.
//!
//! [`SimOptions::stop_when_failed`]: surge_sim::SimOptions::stop_when_failed

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use surge_profile::Profile;
use surge_profile::metric::{MetricError, MetricRef, Threshold};
use surge_sim::SimError;

use crate::knob::{self, Domain, Knob, KnobError, Setting};
use crate::pool::{self, Context};

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
    /// Replications the figures cover: fewer than asked when the failure was certain
    /// before the others ran (see `settled_early`, `stopped_early`).
    pub replications: u32,
    /// Set when the replications run already failed the candidate whatever the others
    /// would give, so they were not run: why.
    pub settled_early: Option<String>,
}

impl Candidate {
    pub fn label(&self) -> String {
        label(&self.settings)
    }
}

/// Settings as `key=value key=value`.
pub(crate) fn label(settings: &[Setting]) -> String {
    settings
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A setting on the descent's path that was not simulated: a simulated candidate's
/// verdict implies its own on monotone ranges (passes on credit, module `credit`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pruned {
    pub settings: Vec<Setting>,
    pub passed: bool,
    /// The label of the simulated candidate that proves it: a pass with at most as much
    /// of every range, or a failure with at least as much.
    pub by: String,
}

impl Pruned {
    pub fn label(&self) -> String {
        label(&self.settings)
    }
}

/// What the search explored and what it chose.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Every candidate simulated, in the order tried (grouped by combination of choices).
    pub candidates: Vec<Candidate>,
    /// Settings the descent judged without simulating them, by the candidate that proves
    /// each verdict.
    pub pruned: Vec<Pruned>,
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
/// Combinations of choices are searched side by side on `opts.threads` threads (see
/// module `pool`); the candidates judged and the winner do not depend on the threads.
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
    let cx = Context {
        profile,
        ranges: &ranges,
        slos,
        replications: opts.replications.max(1) as usize,
        base_seed: opts.seed.unwrap_or(profile.seed),
    };
    let by_combo = pool::run(&cx, combos, opts.threads, progress)?;
    let mut candidates = Vec::new();
    let mut pruned = Vec::new();
    for s in by_combo {
        candidates.extend(s.candidates);
        pruned.extend(s.pruned);
    }
    let winner = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.passed)
        .min_by(|a, b| a.1.cost.total_cmp(&b.1.cost))
        .map(|(i, _)| i);
    Ok(Plan {
        candidates,
        pruned,
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
}
