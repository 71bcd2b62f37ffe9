//! Running the descents' simulations on the threads there are.
//!
//! Each combination of choices is one descent ([`crate::descent`], with passes on credit
//! by [`crate::credit`]) that simulates one candidate at a time. A candidate's replications run one after another while other
//! descents keep the other threads busy, so a replication that settles the verdict spares
//! the rest, and the last one runs with the tightened limits of [`crate::verdict`]. A
//! thread that would otherwise idle — the other descents are over — starts a further
//! replication of a pending candidate ahead of need, and cancels it if the verdict is
//! settled without it. Which candidates are judged, and their verdicts, do not depend on
//! the threads; the figures of a failing candidate can, since they cover the replications
//! that had run when its failure was settled.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use surge_profile::Profile;
use surge_sim::{Estimate, SimOptions, SimOutcome, simulate};

use crate::credit::{self, Facts, Next};
use crate::knob::{self, Knob, Setting, Value};
use crate::search::{Candidate, PlanError, Pruned, Slo};
use crate::verdict;

/// What every descent shares and nobody changes.
pub(crate) struct Context<'a> {
    pub profile: &'a Profile,
    pub ranges: &'a [(&'a Knob, Vec<i64>)],
    pub slos: &'a [Slo],
    pub replications: usize,
    pub base_seed: u64,
}

/// One simulation to run.
struct Job {
    track: usize,
    /// Which candidate of the track it is for (a later one may be pending on delivery).
    serial: u64,
    rep: usize,
    profile: Arc<Profile>,
    opts: SimOptions,
}

/// A candidate being judged.
struct Pending {
    serial: u64,
    /// Its grid point.
    at: Vec<usize>,
    settings: Vec<Setting>,
    label: String,
    profile: Arc<Profile>,
    /// Replications run, by index.
    done: Vec<Option<SimOutcome>>,
    /// Cancel flags of replications running, by index.
    running: Vec<Option<Arc<AtomicBool>>>,
    /// Replications given early-stop limits tightened by the others' figures.
    tightened: Vec<bool>,
}

/// One combination of choices and its descent.
struct Track {
    combo: Vec<Setting>,
    /// Verdicts of the grid points simulated ([`crate::credit`]).
    facts: Facts,
    pending: Option<Pending>,
    candidates: Vec<Candidate>,
    /// Set when the descent is over: the points of its path that were not simulated.
    pruned: Option<Vec<Pruned>>,
}

/// What one combination's search found.
pub(crate) struct Searched {
    pub candidates: Vec<Candidate>,
    pub pruned: Vec<Pruned>,
}

struct State {
    tracks: Vec<Track>,
    error: Option<PlanError>,
    running: usize,
    serials: u64,
}

/// Runs the descent of every combination on `threads` threads and returns what each
/// one found (candidates in the order judged), by combination.
pub(crate) fn run(
    cx: &Context<'_>,
    combos: Vec<Vec<Setting>>,
    threads: usize,
    progress: impl FnMut(&Candidate) + Send,
) -> Result<Vec<Searched>, PlanError> {
    let mut state = State {
        tracks: combos
            .into_iter()
            .map(|combo| Track {
                combo,
                facts: BTreeMap::new(),
                pending: None,
                candidates: Vec::new(),
                pruned: None,
            })
            .collect(),
        error: None,
        running: 0,
        serials: 0,
    };
    for t in 0..state.tracks.len() {
        advance(cx, &mut state, t);
    }
    let shared = (Mutex::new(state), Condvar::new(), Mutex::new(progress));
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| work(cx, &shared));
        }
    });
    let state = shared.0.into_inner().unwrap_or_else(|p| p.into_inner());
    if let Some(e) = state.error {
        return Err(e);
    }
    Ok(state
        .tracks
        .into_iter()
        .map(|t| Searched {
            candidates: t.candidates,
            pruned: t.pruned.unwrap_or_default(),
        })
        .collect())
}

type Shared<P> = (Mutex<State>, Condvar, Mutex<P>);

fn work<P: FnMut(&Candidate) + Send>(cx: &Context<'_>, (state, wake, progress): &Shared<P>) {
    let lock = || state.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let job = {
            let mut st = lock();
            loop {
                if st.error.is_some() {
                    return;
                }
                if let Some(job) = pick(cx, &mut st) {
                    st.running += 1;
                    break job;
                }
                if st.running == 0 {
                    return; // every descent is over
                }
                st = wake.wait(st).unwrap_or_else(|p| p.into_inner());
            }
        };
        let outcome = simulate(&job.profile, &job.opts);
        let mut st = lock();
        st.running -= 1;
        let mut report = |c: &Candidate| (progress.lock().unwrap_or_else(|p| p.into_inner()))(c);
        deliver(cx, &mut st, job, outcome, &mut report);
        wake.notify_all();
    }
}

/// The next simulation to start: first a replication of a candidate none of whose runs
/// is under way, then one ahead of need.
fn pick(cx: &Context<'_>, st: &mut State) -> Option<Job> {
    for ahead in [false, true] {
        for t in 0..st.tracks.len() {
            let Some(p) = &st.tracks[t].pending else {
                continue;
            };
            if !ahead && p.running.iter().any(Option::is_some) {
                continue;
            }
            let Some(rep) =
                (0..cx.replications).find(|&i| p.done[i].is_none() && p.running[i].is_none())
            else {
                continue;
            };
            return Some(start(cx, &mut st.tracks[t], t, rep));
        }
    }
    None
}

fn start(cx: &Context<'_>, track: &mut Track, t: usize, rep: usize) -> Job {
    let p = track.pending.as_mut().expect("a pending candidate");
    let plain: Vec<_> = cx.slos.iter().map(|s| s.0.clone()).collect();
    let others_done = (0..cx.replications).all(|i| i == rep || p.done[i].is_some());
    let limits = if others_done && cx.replications > 1 {
        verdict::last_run_limits(cx.slos, &known(cx, p))
    } else {
        plain.clone()
    };
    p.tightened[rep] = limits != plain;
    let cancel = Arc::new(AtomicBool::new(false));
    p.running[rep] = Some(cancel.clone());
    Job {
        track: t,
        serial: p.serial,
        rep,
        profile: p.profile.clone(),
        opts: SimOptions {
            seed: Some(cx.base_seed.wrapping_add(rep as u64)),
            stop_when_failed: limits,
            cancel: Some(cancel),
            ..SimOptions::default()
        },
    }
}

/// Per SLO, the figures of the replications run to the end.
fn known(cx: &Context<'_>, p: &Pending) -> Vec<Vec<f64>> {
    cx.slos
        .iter()
        .map(|slo| {
            p.done
                .iter()
                .flatten()
                .filter(|o| o.report.stopped_early.is_none())
                .map(|o| figure(o, slo))
                .collect()
        })
        .collect()
}

fn figure(o: &SimOutcome, slo: &Slo) -> f64 {
    o.summary.measure(&slo.0.metric).unwrap_or(f64::INFINITY)
}

fn deliver(
    cx: &Context<'_>,
    st: &mut State,
    job: Job,
    outcome: Result<SimOutcome, surge_sim::SimError>,
    progress: &mut impl FnMut(&Candidate),
) {
    let track = &mut st.tracks[job.track];
    let Some(p) = track.pending.as_mut().filter(|p| p.serial == job.serial) else {
        return; // its candidate was settled without it
    };
    let cancelled = p.running[job.rep]
        .take()
        .is_some_and(|c| c.load(Ordering::Relaxed));
    if cancelled {
        return;
    }
    match outcome {
        Err(source) => {
            st.error = Some(PlanError::Sim {
                settings: p.label.clone(),
                source,
            });
            for t in &st.tracks {
                if let Some(p) = &t.pending {
                    p.running
                        .iter()
                        .flatten()
                        .for_each(|c| c.store(true, Ordering::Relaxed));
                }
            }
        }
        Ok(o) => {
            p.done[job.rep] = Some(o);
            let stopped = p
                .done
                .iter()
                .flatten()
                .any(|o| o.report.stopped_early.is_some());
            let known = known(cx, p);
            let settled = cx
                .slos
                .iter()
                .zip(&known)
                .find_map(|(slo, k)| verdict::settled_failure(slo, k, cx.replications));
            let all = p.done.iter().all(Option::is_some);
            if stopped || settled.is_some() || all {
                let p = track.pending.take().expect("pending");
                p.running
                    .iter()
                    .flatten()
                    .for_each(|c| c.store(true, Ordering::Relaxed));
                let at = p.at.clone();
                let candidate = judge(cx, p, settled);
                progress(&candidate);
                track.facts.insert(at, candidate.passed);
                track.candidates.push(candidate);
                advance(cx, st, job.track);
            }
        }
    }
}

/// The candidate's verdict on the replications it ran.
fn judge(cx: &Context<'_>, p: Pending, settled: Option<String>) -> Candidate {
    let runs: Vec<(usize, &SimOutcome)> = p
        .done
        .iter()
        .enumerate()
        .filter_map(|(i, o)| o.as_ref().map(|o| (i, o)))
        .collect();
    let cost = runs
        .iter()
        .map(|(_, r)| r.report.cost.run_total)
        .sum::<f64>()
        / runs.len() as f64;
    let slos: Vec<_> = cx
        .slos
        .iter()
        .map(|slo| {
            let values = runs.iter().map(|(_, r)| figure(r, slo)).collect();
            verdict::judge(slo, &Estimate::from_values(slo.to_string(), values))
        })
        .collect();
    let stopped_early = runs.iter().find_map(|(i, r)| {
        let why = r.report.stopped_early.as_ref()?;
        Some(if p.tightened[*i] {
            format!(
                "replication {} (its limits lowered to what the others' figures leave for the 95% bound): {why}",
                i + 1
            )
        } else {
            why.clone()
        })
    });
    let complete = runs.len() == cx.replications;
    Candidate {
        passed: complete && stopped_early.is_none() && slos.iter().all(|s| s.passed),
        settings: p.settings,
        cost,
        slos,
        replications: runs.len() as u32,
        settled_early: if complete || stopped_early.is_some() {
            None
        } else {
            settled
        },
        stopped_early,
    }
}

/// Names the track's next candidate, or lists what its finished descent did not simulate.
fn advance(cx: &Context<'_>, st: &mut State, t: usize) {
    let track = &mut st.tracks[t];
    if track.pending.is_some() || track.pruned.is_some() {
        return;
    }
    let settings = |at: &[usize]| {
        let mut s = track.combo.clone();
        s.extend(cx.ranges.iter().zip(at).map(|((k, grid), &i)| Setting {
            path: k.path.clone(),
            value: Value::Int(grid[i]),
        }));
        s
    };
    let sizes: Vec<usize> = cx.ranges.iter().map(|(_, g)| g.len()).collect();
    let at = match credit::next(&sizes, &track.facts) {
        Next::Simulate(at) => at,
        Next::Done(path) => {
            let pruned = path
                .iter()
                .filter(|(at, _)| !track.facts.contains_key(at))
                .map(|(at, passed)| {
                    let by = credit::proof(&track.facts, at, *passed)
                        .expect("a finished descent proves every verdict it did not simulate");
                    Pruned {
                        settings: settings(at),
                        passed: *passed,
                        by: crate::search::label(&settings(by)),
                    }
                })
                .collect();
            track.pruned = Some(pruned);
            return;
        }
    };
    let settings = settings(&at);
    let label = crate::search::label(&settings);
    let mut profile = cx.profile.clone();
    profile.system = match knob::apply(&cx.profile.system, &settings) {
        Ok(s) => s,
        Err(e) => {
            st.error = Some(e.into());
            return;
        }
    };
    st.serials += 1;
    track.pending = Some(Pending {
        serial: st.serials,
        at,
        settings,
        label,
        profile: Arc::new(profile),
        done: (0..cx.replications).map(|_| None).collect(),
        running: vec![None; cx.replications],
        tightened: vec![false; cx.replications],
    });
}
