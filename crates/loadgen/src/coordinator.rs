//! The coordinator: starts the shards, merges what they report into one run directory.
//!
//! Shards report intervals in order; the coordinator writes each shard's histograms to its
//! own `shard-NNN.hlog` as they arrive (a crash keeps every finished interval) and writes one
//! combined `timeline.csv` row once every live shard has reported that second. Totals for
//! `summary.json` are merged histograms, never averaged percentiles. A shard that dies is
//! reported and dropped from the rows to come; what it sent before is kept.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use surge_profile::Profile;
use surge_record::{
    Breach, ErrorSampleWriter, Histogram, HlogWriter, IntervalRecorder, IntervalSnapshot,
    LostShard, Metric, RunDir, RunInfo, RunKind, RunStatus, Summary, Tag, TimelineColumns,
    TimelineRow, TimelineWriter, new_histogram,
};

use crate::RunError;
use crate::errors::ErrorClass;
use crate::exporter::Exporter;
use crate::guard::{Guard, Slice};
use crate::health::Saturation;
use crate::progress::{Progress, Tick};
use crate::recording::{CounterValues, SAMPLES_PER_CLASS};
use crate::scrape::Scraper;
use crate::wire::{IntervalReport, ShardFinal, ShardMessage};
use crate::workers::ShardEvent;

/// Extra timeline columns after sessions, sent, completed and the error classes.
const EXTRA_COLUMNS: [&str; 10] = [
    "late",
    "abandoned",
    "retries",
    "good",
    "tokens",
    "unsent",
    "sessions_opened",
    "cpu_share_max",
    "shards_alive",
    "cpu_wait_max",
];

struct ShardState {
    index: u32,
    rec: IntervalRecorder,
    hlog: Option<HlogWriter>,
    samples: Option<ErrorSampleWriter>,
    last_index: u64,
    last_end: Duration,
    finished: Option<ShardFinal>,
    gone: Option<Gone>,
    sessions_open: u64,
    cpu_s: f64,
    wall_s: f64,
    /// The largest share of its core the shard used in one interval.
    busiest_cpu: f64,
    /// Seconds the shard waited for a CPU over the run.
    wait_s: f64,
}

/// Why the run goes on without a shard.
enum Gone {
    /// It died or never finished: the run failed.
    Dead(String),
    /// A rendezvous run lost it at run time `at` and went on: the run is degraded.
    Lost { why: String, at: Duration },
}

impl ShardState {
    fn done(&self) -> bool {
        self.finished.is_some() || self.gone.is_some()
    }
}

/// A timeline row being filled by the shards.
#[derive(Default)]
struct Row {
    end: Duration,
    sessions_open: u64,
    counts: CounterValues,
    cpu_share_max: f64,
    cpu_wait_max: f64,
    /// The merged histograms the guard watches.
    watched: BTreeMap<Tag, Histogram<u64>>,
}

/// Merges the shards' reports into the run directory.
pub struct Aggregator {
    dir: RunDir,
    shards: Vec<ShardState>,
    timeline: Option<TimelineWriter>,
    rows: BTreeMap<u64, Row>,
    written: u64,
    totals: CounterValues,
    /// TTFT so far, for the live display only (left empty when it is hidden).
    ttft: Histogram<u64>,
    pub exporter: Option<Arc<Exporter>>,
    progress: Progress,
    pub problems: Vec<String>,
    /// Server telemetry: its latest sample goes into each row.
    scraper: Option<Arc<Scraper>>,
    guard: Guard,
    /// The first guard the merged rows broke; the run stops on it.
    breach: Option<Breach>,
    /// Time zero of the run.
    start: SystemTime,
}

fn io(e: surge_record::Error) -> RunError {
    RunError::CouldNotRun(e.to_string())
}

impl Aggregator {
    pub fn new(
        dir: RunDir,
        shard_indices: &[u32],
        start: SystemTime,
        exporter: Option<Arc<Exporter>>,
        progress: Progress,
        scraper: Option<Arc<Scraper>>,
        guard: Guard,
    ) -> Result<Self, RunError> {
        let mut shards = Vec::new();
        for &index in shard_indices {
            shards.push(ShardState {
                index,
                rec: IntervalRecorder::new(Duration::ZERO),
                hlog: Some(dir.create_hlog(index, start).map_err(io)?),
                samples: Some(
                    dir.create_error_samples(
                        index,
                        SAMPLES_PER_CLASS as u32,
                        SAMPLES_PER_CLASS as u32 * ErrorClass::COUNT as u32,
                    )
                    .map_err(io)?,
                ),
                last_index: 0,
                last_end: Duration::ZERO,
                finished: None,
                gone: None,
                sessions_open: 0,
                cpu_s: 0.0,
                wall_s: 0.0,
                busiest_cpu: 0.0,
                wait_s: 0.0,
            });
        }
        let scraped = scraper.as_ref().map_or(&[][..], |s| s.columns());
        let extra = EXTRA_COLUMNS
            .iter()
            .copied()
            .chain(scraped.iter().map(String::as_str));
        let columns =
            TimelineColumns::new(ErrorClass::ALL.map(ErrorClass::name), extra).map_err(io)?;
        let timeline = Some(dir.create_timeline(&columns).map_err(io)?);
        Ok(Self {
            dir,
            shards,
            timeline,
            rows: BTreeMap::new(),
            written: 0,
            totals: CounterValues::default(),
            ttft: new_histogram(),
            exporter,
            progress,
            problems: Vec::new(),
            scraper,
            guard,
            breach: None,
            start,
        })
    }

    /// The guard the run broke, once it has.
    pub fn breach(&self) -> Option<&Breach> {
        self.breach.as_ref()
    }

    pub fn dir(&self) -> &RunDir {
        &self.dir
    }

    /// Says something now, above the progress line.
    pub fn note(&self, line: &str) {
        self.progress.note(line);
    }

    pub fn all_done(&self) -> bool {
        self.shards.iter().all(ShardState::done)
    }

    fn shard(&mut self, index: u32) -> Option<&mut ShardState> {
        self.shards.iter_mut().find(|s| s.index == index)
    }

    /// Takes one event from shard `index`.
    pub fn on_event(&mut self, index: u32, event: ShardEvent) -> Result<(), RunError> {
        // A shard declared lost stays lost: what a silent shard sends when it wakes up
        // belongs to no row the run still writes (it has been told to stop).
        if self
            .shards
            .iter()
            .any(|s| s.index == index && matches!(s.gone, Some(Gone::Lost { .. })))
        {
            return Ok(());
        }
        match event {
            ShardEvent::Message(m) => match *m {
                ShardMessage::Interval(r) => self.on_interval(index, r)?,
                ShardMessage::Error(sample) => {
                    if let Some(w) = self.shard(index).and_then(|s| s.samples.as_mut()) {
                        w.sample(&sample).map_err(io)?;
                    }
                }
                ShardMessage::Finished(f) => {
                    if let Some(s) = self.shard(index) {
                        s.finished = Some(f);
                    }
                    self.write_rows()?;
                }
            },
            ShardEvent::Gone(why) => self.drop_shard(index, Gone::Dead(why))?,
            ShardEvent::Lost(why) => {
                let at = SystemTime::now()
                    .duration_since(self.start)
                    .unwrap_or_default();
                self.drop_shard(index, Gone::Lost { why, at })?;
            }
        }
        Ok(())
    }

    /// Goes on without shard `index`.
    fn drop_shard(&mut self, index: u32, gone: Gone) -> Result<(), RunError> {
        if let Some(s) = self.shard(index).filter(|s| !s.done()) {
            let why = match &gone {
                Gone::Dead(why) | Gone::Lost { why, .. } => why.clone(),
            };
            s.gone = Some(gone);
            s.sessions_open = 0;
            self.progress.note(&format!("warning: {why}"));
            self.problems.push(why);
        }
        self.write_rows()
    }

    /// Whether shard `index` has finished or been given up on.
    pub fn is_done(&self, index: u32) -> bool {
        self.shards.iter().any(|s| s.index == index && s.done())
    }

    fn on_interval(&mut self, index: u32, r: IntervalReport) -> Result<(), RunError> {
        if let Some(ex) = &self.exporter {
            for e in &r.snapshot.entries {
                if e.tag.qualifier().is_none() {
                    ex.observe(e.tag.metric(), &e.histogram);
                }
            }
        }
        if let Some(h) = ttft_of(&r.snapshot).filter(|_| self.progress.is_visible()) {
            let _ = self.ttft.add(h);
        }
        let end = r.snapshot.end;
        let row = self.rows.entry(r.index).or_default();
        for tag in self.guard.watched() {
            if let Some(e) = r.snapshot.entries.iter().find(|e| &e.tag == tag) {
                let _ = row
                    .watched
                    .entry(tag.clone())
                    .or_insert_with(new_histogram)
                    .add(&e.histogram);
            }
        }
        let Some(s) = self.shard(index) else {
            return Ok(());
        };
        s.rec.merge_interval(r.snapshot).map_err(io)?;
        if let Some(log) = s.hlog.as_mut() {
            s.rec.close_interval(end, log).map_err(io)?;
        }
        let wall = end.saturating_sub(s.last_end).as_secs_f64();
        // A share of the interval, at most all of it: a starved shard reads its clocks
        // after the interval's nominal end, so its figures may spill over.
        let per_wall = |x: f64| if wall > 0.0 { (x / wall).min(1.0) } else { 0.0 };
        let share = per_wall(r.cpu_s);
        let wait = per_wall(r.wait_s);
        // Very short closing intervals say little about load.
        if wall >= 0.5 {
            s.busiest_cpu = s.busiest_cpu.max(share);
        }
        s.cpu_s += r.cpu_s;
        s.wait_s += r.wait_s;
        s.wall_s += wall;
        s.last_index = r.index;
        s.last_end = end;
        s.sessions_open = r.sessions_open;
        let row = self.rows.entry(r.index).or_default();
        row.end = row.end.max(end);
        row.sessions_open += r.sessions_open;
        row.counts = row.counts.plus(&r.counts);
        row.cpu_share_max = row.cpu_share_max.max(share);
        row.cpu_wait_max = row.cpu_wait_max.max(wait);
        self.write_rows()
    }

    /// Writes every row that all live shards have reported.
    fn write_rows(&mut self) -> Result<(), RunError> {
        while let Some((&k, _)) = self.rows.first_key_value() {
            let complete = self.shards.iter().all(|s| s.done() || s.last_index >= k);
            if !complete {
                break;
            }
            let row = self.rows.remove(&k).expect("present");
            let alive = self.shards.iter().filter(|s| s.gone.is_none()).count();
            let errors: Vec<u64> = row.counts.errors.to_vec();
            let c = &row.counts;
            if let Some(t) = self.timeline.as_mut() {
                let mut extra = vec![
                    c.late as f64,
                    c.abandoned as f64,
                    c.retries as f64,
                    c.good as f64,
                    c.tokens as f64,
                    c.unsent as f64,
                    c.sessions_opened as f64,
                    row.cpu_share_max,
                    alive as f64,
                    row.cpu_wait_max,
                ];
                if let Some(s) = &self.scraper {
                    extra.extend(s.latest());
                }
                t.write_row(&TimelineRow {
                    t_s: row.end.as_secs_f64(),
                    sessions_open: row.sessions_open,
                    sent: c.sent,
                    completed: c.completed,
                    errors: &errors,
                    extra: &extra,
                })
                .map_err(io)?;
            }
            self.totals = self.totals.plus(c);
            self.written = k;
            if self.breach.is_none() && self.guard.is_armed() {
                self.breach = self.guard.observe(Slice {
                    end: row.end,
                    counts: row.counts,
                    histograms: row.watched,
                });
                if let Some(b) = &self.breach {
                    self.progress.note(&format!(
                        "aborting: {} measured {} at {:.0} s; closing the sessions",
                        b.guard, b.measured, b.at_s
                    ));
                }
            }
            if let Some(ex) = &self.exporter {
                ex.sessions_open.set(row.sessions_open as i64);
                ex.sent.inc_by(c.sent);
                ex.completed.inc_by(c.completed);
                ex.late.inc_by(c.late);
                ex.unsolicited.inc_by(c.unsolicited);
                ex.reconnects.inc_by(c.reconnects);
                ex.abandoned.inc_by(c.abandoned);
                ex.retries.inc_by(c.retries);
                for class in ErrorClass::ALL {
                    ex.errors
                        .with_label_values(&[class.name()])
                        .inc_by(c.errors[class.index()]);
                }
            }
            self.progress.tick(&Tick {
                elapsed: row.end,
                sessions_open: row.sessions_open,
                sent_per_s: c.sent as f64,
                ttft_p99: (!self.ttft.is_empty())
                    .then(|| Duration::from_micros(self.ttft.value_at_quantile(0.99))),
                errors: self.totals.errors.iter().sum(),
                shards_alive: alive,
            });
        }
        Ok(())
    }

    /// Closes every file and builds the summary. `interrupted` marks a Ctrl-C.
    pub fn finish(mut self, profile: &Profile) -> Result<Finished, RunError> {
        // Rows that can never complete (a shard died mid-row) are written as they are.
        for s in &mut self.shards {
            if !s.done() {
                s.gone = Some(Gone::Dead(format!("shard {} did not finish", s.index)));
            }
        }
        self.write_rows()?;
        self.progress.finish();
        let mut totals: BTreeMap<Tag, Histogram<u64>> = BTreeMap::new();
        let mut tokens_per_s = new_histogram();
        let mut upgrade_status: BTreeMap<u16, u64> = BTreeMap::new();
        let mut closed_by_server: BTreeMap<u16, u64> = BTreeMap::new();
        let mut goodput_by_scope: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        let mut duration = Duration::ZERO;
        let mut busiest = Saturation::default();
        for s in &mut self.shards {
            for (tag, h) in s.rec.totals() {
                if !h.is_empty() {
                    let _ = totals
                        .entry(tag.clone())
                        .or_insert_with(new_histogram)
                        .add(h);
                }
            }
            if let Some(f) = &s.finished {
                let _ = tokens_per_s.add(&f.tokens_per_s);
                tally(&mut upgrade_status, &f.upgrade_status);
                tally(&mut closed_by_server, &f.closed_by_server);
                let scopes = f.goodput_by_scope.iter().map(|(k, t)| (k, *t));
                add_scopes(&mut goodput_by_scope, scopes);
            }
            duration = duration.max(s.last_end);
            busiest = busiest.max(Saturation {
                cpu_share: s.busiest_cpu,
                wait_share: if s.wall_s > 0.0 {
                    (s.wait_s / s.wall_s).min(1.0)
                } else {
                    0.0
                },
            });
            if let Some(h) = s.hlog.take() {
                h.finish().map_err(io)?;
            }
            if let Some(w) = s.samples.take() {
                w.finish().map_err(io)?;
            }
        }
        if let Some(t) = self.timeline.take() {
            t.finish().map_err(io)?;
        }
        let dead: Vec<String> = self
            .shards
            .iter()
            .filter_map(|s| match &s.gone {
                Some(Gone::Dead(why)) => Some(why.clone()),
                _ => None,
            })
            .collect();
        // Rates are per second of the schedule, as the simulator's are: the answers still
        // landing after its end count, but the wait for them does not lengthen the window.
        let duration = duration.min(profile.duration.to_std());
        let plan = crate::plan::Plan::new(profile);
        let count = self.shards.iter().map(|s| s.index + 1).max().unwrap_or(1);
        let lost: Vec<LostShard> = self
            .shards
            .iter()
            .filter_map(|s| match &s.gone {
                Some(Gone::Lost { why, at }) => Some(LostShard {
                    shard: s.index,
                    last_report_s: s.last_end.as_secs_f64(),
                    lost_at_s: at.as_secs_f64(),
                    why: why.clone(),
                    offered_share_lost: plan.offered_share(s.index, count, s.last_end),
                }),
                _ => None,
            })
            .collect();
        let mut summary = crate::summary::build(&crate::summary::Inputs {
            thresholds: &crate::summary::Wanted::of(profile),
            duration,
            counts: &self.totals,
            totals: &totals,
            tokens_per_s: &tokens_per_s,
            upgrade_status: &upgrade_status,
            closed_by_server: &closed_by_server,
            goodput: &profile.goodput,
            goodput_by_scope: &goodput_by_scope,
            busiest,
            shards: self.shards.len(),
            dead: &dead,
        });
        summary.lost_shards = lost;
        self.dir.write_summary(&summary).map_err(io)?;
        Ok(Finished {
            dir: self.dir.path().to_path_buf(),
            summary,
            dead,
            problems: self.problems,
            interrupted: self
                .shards
                .iter()
                .any(|s| s.finished.as_ref().is_some_and(|f| f.interrupted)),
        })
    }
}

/// What the aggregator leaves behind.
pub struct Finished {
    pub dir: PathBuf,
    pub summary: Summary,
    pub dead: Vec<String>,
    pub problems: Vec<String>,
    pub interrupted: bool,
}

fn ttft_of(s: &IntervalSnapshot) -> Option<&Histogram<u64>> {
    s.entries
        .iter()
        .find(|e| e.tag == Tag::from(Metric::Ttft))
        .map(|e| &e.histogram)
}

/// Adds counts by code written with string keys (as JSON objects have them) to `into`.
pub fn tally<'a>(
    into: &mut BTreeMap<u16, u64>,
    by_code: impl IntoIterator<Item = (&'a String, &'a u64)>,
) {
    for (code, n) in by_code {
        if let Ok(code) = code.parse::<u16>() {
            *into.entry(code).or_default() += n;
        }
    }
}

/// Adds goodput counts per scope, (good answers, answers), to `into`.
pub fn add_scopes<'a>(
    into: &mut BTreeMap<String, (u64, u64)>,
    scopes: impl IntoIterator<Item = (&'a String, (u64, u64))>,
) {
    for (scope, (good, answers)) in scopes {
        let t = into.entry(scope.clone()).or_default();
        t.0 += good;
        t.1 += answers;
    }
}

/// The run.json of a measured run.
pub fn run_info(profile: &Profile, target: &str, start: SystemTime, shards: u32) -> RunInfo {
    let resolved = resolved_profile(profile);
    let mut info = RunInfo::new(RunKind::Measured, profile.name.clone(), resolved, start);
    info.set_target(target);
    info.seed = Some(profile.seed);
    info.shards = shards;
    info
}

/// The profile as run.json keeps it, its own target URL redacted.
pub fn resolved_profile(profile: &Profile) -> serde_json::Value {
    let mut resolved = serde_json::to_value(profile).unwrap_or(serde_json::Value::Null);
    // The profile's own URL may carry credentials too.
    if let Some(url) = resolved.pointer_mut("/target/url") {
        if let Some(u) = url.as_str() {
            *url = serde_json::Value::String(surge_record::redact_url(u));
        }
    }
    resolved
}

/// How a run ended, from what its shards did: a dead shard fails it, then a breached guard
/// aborts it, then a lost one degrades it, then a stop interrupts it.
pub fn status_of(dead: bool, breach: bool, lost: bool, interrupted: bool) -> RunStatus {
    if dead {
        RunStatus::Failed
    } else if breach {
        RunStatus::Aborted
    } else if lost {
        RunStatus::Degraded
    } else if interrupted {
        RunStatus::Interrupted
    } else {
        RunStatus::Complete
    }
}

/// Marks the run finished in run.json.
pub fn finish_info(dir: &RunDir, info: &mut RunInfo, status: RunStatus) -> Result<(), RunError> {
    info.finish(status, SystemTime::now());
    dir.write_run_info(info).map_err(io)
}
