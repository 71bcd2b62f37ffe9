//! The fit: replay every measured run on a candidate model, compare figure by figure, and
//! move the keys until the replays agree with the measurements.
//!
//! 1. **Identify.** Before fitting, each parameter is nudged once from the start and the
//!    replays say what it moves. A parameter that moves no figure is not fitted (the runs
//!    say nothing about it); parameters that move the figures the same way (latencies that
//!    add on the same path) are merged into one, whose sum the runs do identify. A pool
//!    size is only identified where messages waited for a worker, which takes a load level
//!    high enough to queue: two levels tell the pool's size from its service time.
//! 2. **Fit.** Nelder–Mead over the continuous parameters (sizes and spreads), inside a
//!    hill-climb over whole-number counts. Every evaluation replays each run with the same
//!    seeds (common random numbers), so the objective is a deterministic function of the
//!    keys and small steps are not drowned by sampling noise.

use std::sync::atomic::{AtomicUsize, Ordering};

use indicatif::ProgressBar;
use surge_plan::batch::{Job, simulate_all};
use surge_profile::{Profile, SystemModel};
use surge_sim::SimOutcome;

use crate::CalibrateError;
use crate::figures::{self, Figure};
use crate::keys::{self, Holding, Key, MAX_LOG_FACTOR, Param, Point};
use crate::runs::MeasuredRun;

/// A parameter whose effect is smaller than this (relative change of any figure per unit
/// of log factor) is taken to move nothing.
const MIN_ELASTICITY: f64 = 0.02;
/// Parameters whose effects point the same way within this cosine are merged.
const SAME_DIRECTION: f64 = 0.95;
/// The nudge used to see what a parameter moves: a factor of 2, large enough that its
/// effect stands above the reordering noise of the replays.
const NUDGE: f64 = std::f64::consts::LN_2;

/// The replays of one candidate.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub objective: f64,
    /// Per figure, its simulated value (`None`: the replays had no answer under its tag).
    pub simulated: Vec<Option<f64>>,
}

/// What the fit is asked and what it needs to answer.
pub struct Problem<'a> {
    pub runs: &'a [MeasuredRun],
    pub start: &'a SystemModel,
    pub keys: Vec<Key>,
    pub figures: Vec<Figure>,
    /// Seeds per run.
    pub seeds: Vec<Vec<u64>>,
    pub threads: usize,
    pub progress: Option<ProgressBar>,
    evaluations: AtomicUsize,
}

/// A key the runs say nothing about, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Unidentified {
    pub key: String,
    pub reason: String,
}

/// What identification decided.
#[derive(Debug, Clone)]
pub struct Identified {
    pub params: Vec<Param>,
    /// Count keys to search, with their starting values.
    pub counts: Vec<(usize, i64)>,
    /// Count keys read off the server's telemetry: `(key, value, what was read)`.
    pub observed: Vec<(usize, i64, String)>,
    pub unidentified: Vec<Unidentified>,
    /// Merged keys, as groups of key indexes.
    pub merged: Vec<Vec<usize>>,
    /// Per key, the figures (indexes) it moves.
    pub moves: Vec<Vec<usize>>,
}

/// The outcome of a fit.
#[derive(Debug, Clone)]
pub struct Fitted {
    pub point: Point,
    pub system: SystemModel,
    pub start: Evaluation,
    pub best: Evaluation,
}

impl<'a> Problem<'a> {
    pub fn new(
        runs: &'a [MeasuredRun],
        start: &'a SystemModel,
        keys: Vec<Key>,
        seeds: Vec<Vec<u64>>,
        threads: usize,
    ) -> Self {
        let figures = runs
            .iter()
            .enumerate()
            .flat_map(|(i, r)| figures::of_run(i, r))
            .collect();
        Self {
            runs,
            start,
            keys,
            figures,
            seeds,
            threads,
            progress: None,
            evaluations: AtomicUsize::new(0),
        }
    }

    /// Replays run so far.
    pub fn evaluations(&self) -> usize {
        self.evaluations.load(Ordering::Relaxed)
    }

    /// Replays every run on `system` and scores it.
    pub fn evaluate_system(&self, system: &SystemModel) -> Result<Evaluation, CalibrateError> {
        let profiles = self
            .runs
            .iter()
            .map(|r| {
                Profile::replay(&r.resolved, system.clone()).map_err(|reason| {
                    CalibrateError::BadRun {
                        dir: r.dir.clone(),
                        reason: format!("its traffic cannot run on the model: {reason}"),
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let jobs: Vec<Job<'_>> = profiles
            .iter()
            .zip(&self.seeds)
            .flat_map(|(profile, seeds)| seeds.iter().map(move |&seed| Job { profile, seed }))
            .collect();
        let outcomes = simulate_all(&jobs, self.threads)
            .into_iter()
            .collect::<Result<Vec<SimOutcome>, _>>()
            .map_err(|e| CalibrateError::Simulation(e.to_string()))?;
        let mut by_run: Vec<Vec<&SimOutcome>> = vec![Vec::new(); self.runs.len()];
        let mut next = outcomes.iter();
        for (run, seeds) in self.seeds.iter().enumerate() {
            by_run[run].extend(next.by_ref().take(seeds.len()));
        }
        let simulated: Vec<Option<f64>> = self
            .figures
            .iter()
            .map(|f| figures::simulated(&f.quantity, &by_run[f.run]))
            .collect();
        let (mut total, mut weights) = (0.0, 0.0);
        for (f, s) in self.figures.iter().zip(&simulated) {
            total += f.weight * figures::miss(f, *s).powi(2);
            weights += f.weight;
        }
        self.evaluations.fetch_add(1, Ordering::Relaxed);
        if let Some(bar) = &self.progress {
            bar.inc(1);
        }
        Ok(Evaluation {
            objective: if weights > 0.0 { total / weights } else { 0.0 },
            simulated,
        })
    }

    /// Replays the runs with the keys at `point`; a point the model rejects (a count
    /// beyond its bounds) scores infinitely badly.
    pub fn evaluate(&self, params: &[Param], point: &Point) -> Result<Evaluation, CalibrateError> {
        match keys::apply(self.start, &self.keys, params, point) {
            Ok(system) => self.evaluate_system(&system),
            Err(CalibrateError::BadKey(_)) => Ok(Evaluation {
                objective: f64::INFINITY,
                simulated: vec![None; self.figures.len()],
            }),
            Err(e) => Err(e),
        }
    }

    /// How each figure moved between two evaluations, per unit of log factor.
    fn effect(&self, base: &Evaluation, moved: &Evaluation, by: f64) -> Vec<f64> {
        self.figures
            .iter()
            .zip(base.simulated.iter().zip(&moved.simulated))
            .map(|(f, (b, m))| match (b, m) {
                (Some(b), Some(m)) => {
                    let d = match f.quantity {
                        figures::Quantity::ErrorRatio => 10.0 * (m - b),
                        _ if *b > 0.0 && *m > 0.0 => (m / b).ln(),
                        _ => 0.0,
                    };
                    d * f.weight.sqrt() / by
                }
                _ => 0.0,
            })
            .collect()
    }

    /// Nudges each parameter once and decides what the runs can tell (see the module
    /// documentation).
    pub fn identify(&self, base: &Evaluation) -> Result<Identified, CalibrateError> {
        let n = self.keys.len();
        let mut unidentified = Vec::new();
        let mut moves = vec![Vec::new(); n];
        let mut observed = Vec::new();
        let mut counts = Vec::new();
        let levels = distinct_levels(self.runs);

        // Size and spread of every continuous key, one at a time.
        let mut candidates: Vec<(Param, Vec<f64>)> = Vec::new();
        for (k, key) in self.keys.iter().enumerate() {
            if let Holding::Count(start) = key.start {
                if let Some((value, what)) = self.observed_count(&key.path) {
                    observed.push((k, value, what));
                    continue;
                }
                // Both ways: a pool larger than the start's shows nothing where the start
                // does not queue, while a smaller one makes the queue the runs may have seen.
                let up = ((start as f64) * NUDGE.exp())
                    .round()
                    .max(start as f64 + 1.0) as i64;
                let down = ((start as f64) / NUDGE.exp()).round().max(1.0) as i64;
                let mut effect = Vec::new();
                for nudged in [up, down] {
                    if nudged == start {
                        continue;
                    }
                    let point = Point {
                        x: Vec::new(),
                        counts: vec![(k, nudged)],
                    };
                    let moved = self.evaluate(&[], &point)?;
                    let by = ((nudged as f64) / (start as f64)).ln().abs();
                    let this = self.effect(base, &moved, by);
                    if max_abs(&this) > max_abs(&effect) {
                        effect = this;
                    }
                }
                if max_abs(&effect) < MIN_ELASTICITY {
                    let reason = if !is_pool_size(&key.path) {
                        self.why_nothing_moves(&key.path)
                    } else if levels < 2 {
                        format!(
                            "a worker-pool size needs two load levels; these runs all send \
                             about {:.1} messages/s, and at that load messages barely wait for \
                             a worker",
                            self.runs[0].load()
                        )
                    } else {
                        "messages barely waited for a worker in these runs, so the pool's \
                         size does not show; add a run at a load level where they queue"
                            .into()
                    };
                    unidentified.push(Unidentified {
                        key: key.path.clone(),
                        reason,
                    });
                } else {
                    moves[k] = moved_figures(&effect);
                    counts.push((k, start));
                }
                continue;
            }
            let size = Param::Size { members: vec![k] };
            let mut params = vec![size.clone()];
            if key.start.has_spread() {
                params.push(Param::Spread { key: k });
            }
            for p in params {
                let point = Point {
                    x: vec![NUDGE],
                    counts: Vec::new(),
                };
                let moved = self.evaluate(std::slice::from_ref(&p), &point)?;
                let effect = self.effect(base, &moved, NUDGE);
                if max_abs(&effect) < MIN_ELASTICITY {
                    if matches!(p, Param::Size { .. }) {
                        unidentified.push(Unidentified {
                            key: key.path.clone(),
                            reason: self.why_nothing_moves(&key.path),
                        });
                    }
                    continue;
                }
                if matches!(p, Param::Size { .. }) {
                    moves[k] = moved_figures(&effect);
                }
                candidates.push((p, effect));
            }
        }

        // Merge parameters that move the figures the same way.
        let mut params: Vec<(Param, Vec<f64>)> = Vec::new();
        let mut merged: Vec<Vec<usize>> = Vec::new();
        if std::env::var_os("SURGE_CALIBRATE_DEBUG").is_some() {
            for (i, (p, a)) in candidates.iter().enumerate() {
                for (q, b) in &candidates[..i] {
                    eprintln!(
                        "cos {:?} {:?} = {:.4}",
                        p.members(),
                        q.members(),
                        cosine(a, b)
                    );
                }
            }
        }
        // Where the runs show the queue (a pool size moves the figures, or two load levels),
        // a service time also sets how long messages wait, which grows with load: it is
        // never the same as a fixed latency, however alike their nudges look.
        let queue_seen = !counts.is_empty() || !observed.is_empty() || levels >= 2;
        let sets_queue = |p: &Param| queue_seen && self.sizes_a_service_time(p);
        for (p, effect) in candidates {
            let twin = params
                .iter()
                .position(|(q, e)| cosine(e, &effect).abs() >= SAME_DIRECTION && !sets_queue(q))
                .filter(|_| !sets_queue(&p));
            match (p, twin) {
                (Param::Size { members }, Some(i)) => {
                    if let Param::Size { members: into } = &mut params[i].0 {
                        into.extend(members);
                        let group = into.clone();
                        merged.retain(|g| !g.iter().any(|k| group.contains(k)));
                        merged.push(group);
                    }
                    // A spread that moves like a size is dropped below (its key's size is
                    // the better handle).
                    else {
                        params.push((Param::Size { members }, effect));
                    }
                }
                (Param::Spread { key }, Some(_)) => unidentified.push(Unidentified {
                    key: format!("{} (spread)", self.keys[key].path),
                    reason: "its spread moves the figures the way another key does, so the \
                             runs cannot tell it apart; its shape is kept as written"
                        .into(),
                }),
                (p, None) => params.push((p, effect)),
            }
        }
        Ok(Identified {
            params: params.into_iter().map(|(p, _)| p).collect(),
            counts,
            observed,
            unidentified,
            merged,
            moves,
        })
    }

    /// Whether `p` is the size of a worker's service time (which sets the queue too).
    fn sizes_a_service_time(&self, p: &Param) -> bool {
        matches!(p, Param::Size { members }
            if members.iter().any(|&k| is_service_time(&self.keys[k].path)))
    }

    /// A count key the server's telemetry reports directly, with what was read.
    fn observed_count(&self, path: &str) -> Option<(i64, String)> {
        if path != "orchestrator.initial_tasks" || self.start.orchestrator.autoscaling.enabled {
            return None;
        }
        let means: Vec<f64> = self
            .runs
            .iter()
            .map(|r| {
                r.telemetry
                    .tasks_running
                    .filter(|_| r.telemetry.tasks_constant)
            })
            .collect::<Option<_>>()?;
        let first = means.first()?.round();
        if first < 1.0 || means.iter().any(|m| m.round() != first) {
            return None;
        }
        Some((
            first as i64,
            format!("{first} tasks ran throughout every run (surge_mock_orchestrator_tasks)"),
        ))
    }

    fn why_nothing_moves(&self, path: &str) -> String {
        let quota = [
            "tokens_per_minute",
            "requests_per_minute",
            "_rate",
            "capacity",
            "_max_",
            "partition_",
            "concurrency",
        ]
        .iter()
        .any(|w| path.contains(w))
            && !path.ends_with("output_rate")
            && !path.ends_with("prefill_rate");
        let throttled = self.runs.iter().any(|r| {
            r.summary.errors.iter().any(|(c, n)| {
                *n > 0
                    && (c.contains("throttl") || c.contains("limit") || c.starts_with("dynamodb"))
            })
        });
        if let Some(model) = path
            .strip_prefix("bedrock.models.")
            .and_then(|rest| rest.split('.').next())
        {
            let called = self
                .runs
                .iter()
                .any(|r| figures::measured_count(&r.summary, &format!("e2e:{model}")) > 0);
            if !called {
                return format!(
                    "no run called the model {model}, so nothing measured depends on it"
                );
            }
        }
        if quota && !throttled {
            return "no layer throttled in these runs, so they say nothing about this limit (only \
                    that it was not reached)"
                .into();
        }
        "changing it moves none of the measured figures in these runs".into()
    }

    /// Fits the identified parameters, searching whole-number counts around their start.
    pub fn fit(&self, id: &Identified, budget: usize) -> Result<Fitted, CalibrateError> {
        let start_point = Point {
            x: Vec::new(),
            counts: Vec::new(),
        };
        let start = self.evaluate(&[], &start_point)?;
        let fixed: Vec<(usize, i64)> = id.observed.iter().map(|(k, v, _)| (*k, *v)).collect();
        let dims = id.params.len();
        let inner = |x0: &[f64], counts: &[(usize, i64)], evals: usize| {
            let mut all = fixed.clone();
            all.extend_from_slice(counts);
            let objective = |x: &[f64]| -> Result<f64, CalibrateError> {
                let x: Vec<f64> = x
                    .iter()
                    .map(|v| v.clamp(-MAX_LOG_FACTOR, MAX_LOG_FACTOR))
                    .collect();
                let point = Point {
                    x,
                    counts: all.clone(),
                };
                Ok(self.evaluate(&id.params, &point)?.objective)
            };
            crate::search::minimize_restarting(objective, x0, 0.2, evals, 1e-6)
        };
        let quick = (12 * dims + 12).min(budget);
        let full = budget.max(quick);
        let mut counts = id.counts.clone();
        let mut best = inner(
            &vec![0.0; dims],
            &counts,
            if counts.is_empty() { full } else { quick },
        )?;
        // A pool's size and its service time trade off along one capacity: a trial size
        // starts its fit with the service time scaled to keep the capacity, so a quick fit
        // compares the two shapes of queue rather than a pool suddenly too small or large.
        let service = id.params.iter().position(|p| self.sizes_a_service_time(p));
        // Hill-climb each count in turn: step while the fit improves.
        for c in 0..counts.len() {
            for direction in [1i64, -1] {
                for _ in 0..16 {
                    let mut trial = counts.clone();
                    trial[c].1 += direction;
                    if trial[c].1 < 1 {
                        break;
                    }
                    let mut x0 = best.x.clone();
                    if let Some(i) = service.filter(|_| is_pool_size(&self.keys[trial[c].0].path)) {
                        x0[i] += (trial[c].1 as f64 / counts[c].1 as f64).ln();
                    }
                    let m = inner(&x0, &trial, quick)?;
                    if m.value < best.value {
                        best = m;
                        counts = trial;
                    } else {
                        break;
                    }
                }
            }
        }
        if !counts.is_empty() {
            let polished = inner(&best.x, &counts, full)?;
            if polished.value <= best.value {
                best = polished;
            }
        }
        let mut all = fixed;
        all.extend(counts);
        let point = Point {
            x: best
                .x
                .iter()
                .map(|v| v.clamp(-MAX_LOG_FACTOR, MAX_LOG_FACTOR))
                .collect(),
            counts: all,
        };
        let system = keys::apply(self.start, &self.keys, &id.params, &point)?;
        let best = self.evaluate_system(&system)?;
        Ok(Fitted {
            point,
            system,
            start,
            best,
        })
    }
}

/// Whether a count key is the size of a pool that messages wait for (orchestrator tasks
/// and workers, a model's serving slots), which only queueing reveals.
fn is_pool_size(path: &str) -> bool {
    path.starts_with("orchestrator.")
        && (path.ends_with("_tasks") || path.ends_with("workers_per_task"))
        || path.ends_with("max_concurrency")
}

/// Whether a latency key is the time a pooled worker is held (so it sets the queue too).
fn is_service_time(path: &str) -> bool {
    path == "orchestrator.cpu_per_message"
}

/// How many clearly different load levels the runs were measured at (15 % apart).
fn distinct_levels(runs: &[MeasuredRun]) -> usize {
    let mut loads: Vec<f64> = runs.iter().map(MeasuredRun::load).collect();
    loads.sort_by(f64::total_cmp);
    let mut levels = 0;
    let mut last = f64::NEG_INFINITY;
    for l in loads {
        if l > last * 1.15 {
            levels += 1;
            last = l;
        }
    }
    levels
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

fn moved_figures(effect: &[f64]) -> Vec<usize> {
    effect
        .iter()
        .enumerate()
        .filter(|(_, e)| e.abs() >= MIN_ELASTICITY)
        .map(|(i, _)| i)
        .collect()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}
