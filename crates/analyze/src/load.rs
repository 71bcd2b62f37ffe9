//! Loading run directories: run.json, summary.json, timeline.csv, and every shard log merged.
//!
//! Why it exists: one report may span several directories (shards of one run written by
//! separate machines) and many logs. Metadata is read first, because the time layout (run
//! start, stages, window, chart buckets — see [`crate::window`]) must be fixed before the
//! logs are streamed; then the logs are read in parallel, one thread per core, each thread
//! with its own decoder and [`Accumulator`], merged at the end. Damaged lines become
//! warnings and the rest of the file still counts.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use surge_record::{RunDir, RunInfo, Summary, Timeline, Warning};

use crate::accumulate::Accumulator;
use crate::decode::PayloadDecoder;
use crate::error::{AnalyzeError, Result};
use crate::stream;
use crate::window::{Grid, stages_of};

/// One run directory as found on disk.
#[derive(Debug, Clone)]
pub struct RunInput {
    pub path: PathBuf,
    pub info: Option<RunInfo>,
    pub summary: Option<Summary>,
    pub timeline: Option<Timeline>,
    pub hlogs: Vec<PathBuf>,
    /// Files stepped over (e.g. a summary.json of another schema version).
    pub problems: Vec<String>,
}

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Window start, seconds since the run start.
    pub from_s: Option<f64>,
    /// Window end (exclusive), seconds since the run start.
    pub to_s: Option<f64>,
    /// Show a progress bar on stderr (the caller decides whether stderr is a terminal).
    pub progress: bool,
    /// Reading threads (default: available cores).
    pub threads: Option<usize>,
    /// Keep counts per bootstrap block for [`crate::noise::Samples`] (`surge compare`).
    pub blocks: bool,
}

/// One timeline row of one directory, on the common time axis.
#[derive(Debug, Clone)]
pub struct Row {
    /// Seconds since the run start: the interval the row covers.
    pub start_s: f64,
    pub end_s: f64,
    /// Values in the order of [`Loaded::columns`]; NaN where the directory lacks the column.
    pub values: Vec<f64>,
}

/// Everything a report is computed from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub runs: Vec<RunInput>,
    pub grid: Grid,
    pub acc: Accumulator,
    /// Union of the timeline columns (without `t_s`), in first-seen order.
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
    /// First interval start and last interval end inside the window (seconds since run start).
    pub span: Option<(f64, f64)>,
    pub intervals: u64,
    /// Problems stepped over, each naming its file (and line, where there is one).
    pub warnings: Vec<String>,
}

impl Loaded {
    /// The resolved profile of the first run that has one.
    pub fn profile(&self) -> Option<&serde_json::Value> {
        self.runs
            .iter()
            .find_map(|r| r.info.as_ref().map(|i| &i.resolved_profile))
    }
}

/// Read the metadata of one run directory (not its logs).
pub fn open_run(path: &Path) -> Result<RunInput> {
    let dir = RunDir::open(path)?;
    let info = dir
        .run_json_path()
        .exists()
        .then(|| dir.read_run_info())
        .transpose()?;
    // summary.json only adds exact whole-run counts; without it they come from the timeline.
    let mut problems = Vec::new();
    let summary = match dir.summary_path().exists().then(|| dir.read_summary()) {
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            problems.push(format!("{e}; counts come from timeline.csv instead"));
            None
        }
        None => None,
    };
    let timeline = dir
        .timeline_path()
        .exists()
        .then(|| dir.read_timeline())
        .transpose()?;
    let hlogs = dir.list_hlogs()?;
    if info.is_none() && hlogs.is_empty() {
        return Err(AnalyzeError::NotARun {
            path: path.to_path_buf(),
        });
    }
    Ok(RunInput {
        path: path.to_path_buf(),
        info,
        summary,
        timeline,
        hlogs,
        problems,
    })
}

fn unix_s(t: surge_record::UtcTime) -> f64 {
    t.unix_millis() as f64 / 1000.0
}

fn run_start(run: &RunInput) -> Result<Option<f64>> {
    if let Some(info) = &run.info {
        return Ok(Some(unix_s(info.started_at)));
    }
    let mut best: Option<f64> = None;
    for p in &run.hlogs {
        let bytes = std::fs::read(p).map_err(|e| surge_record::Error::Io {
            path: p.clone(),
            action: "read hlog",
            source: e,
        })?;
        if let Some(s) = stream::start_time(p, &bytes)? {
            best = Some(best.map_or(s, |b: f64| b.min(s)));
        }
    }
    Ok(best)
}

fn expected_duration(runs: &[RunInput]) -> f64 {
    let from_profile = runs
        .iter()
        .filter_map(|r| r.info.as_ref())
        .filter_map(|i| i.resolved_profile.get("duration")?.as_str()?.parse().ok())
        .map(|d: surge_profile::Duration| d.as_secs_f64());
    let from_summary = runs
        .iter()
        .filter_map(|r| r.summary.as_ref())
        .map(|s| s.duration_s);
    from_profile
        .chain(from_summary)
        .fold(0.0, f64::max)
        .max(1.0)
}

/// Read every directory in `paths` and merge all their logs.
pub fn load(paths: &[PathBuf], opts: &LoadOptions) -> Result<Loaded> {
    if paths.is_empty() {
        return Err(AnalyzeError::NoRuns);
    }
    if let (Some(from_s), Some(to_s)) = (opts.from_s, opts.to_s) {
        if from_s >= to_s {
            return Err(AnalyzeError::EmptyWindow { from_s, to_s });
        }
    }
    let runs = paths
        .iter()
        .map(|p| open_run(p))
        .collect::<Result<Vec<_>>>()?;
    let mut origin: Option<f64> = None;
    let mut starts = Vec::with_capacity(runs.len());
    for r in &runs {
        let s = run_start(r)?;
        starts.push(s);
        if let Some(s) = s {
            origin = Some(origin.map_or(s, |o: f64| o.min(s)));
        }
    }
    let origin = origin.unwrap_or(0.0);
    let stages = runs
        .iter()
        .find_map(|r| r.info.as_ref())
        .map(|i| stages_of(&i.resolved_profile))
        .unwrap_or_default();
    let grid = Grid::new(
        origin,
        opts.from_s,
        opts.to_s,
        stages,
        expected_duration(&runs),
    );

    let files: Vec<&Path> = runs
        .iter()
        .flat_map(|r| r.hlogs.iter().map(PathBuf::as_path))
        .collect();
    let read = read_logs(&files, &grid, opts)?;

    let (columns, rows) = merge_timelines(&runs, &starts, origin);
    let mut warnings: Vec<String> = runs.iter().flat_map(|r| r.problems.clone()).collect();
    warnings.extend(
        runs.iter()
            .filter_map(|r| r.timeline.as_ref())
            .flat_map(|t| t.warnings.iter().map(Warning::to_string)),
    );
    warnings.extend(read.warnings.iter().map(Warning::to_string));
    let mut acc = read.acc;
    acc.finish_blocks();
    Ok(Loaded {
        runs,
        grid,
        acc,
        columns,
        rows,
        span: read.span,
        intervals: read.intervals,
        warnings,
    })
}

struct ReadResult {
    acc: Accumulator,
    warnings: Vec<Warning>,
    span: Option<(f64, f64)>,
    intervals: u64,
}

impl ReadResult {
    fn new(stages: usize, blocks: bool) -> ReadResult {
        ReadResult {
            acc: if blocks {
                Accumulator::with_blocks(stages)
            } else {
                Accumulator::new(stages)
            },
            warnings: Vec::new(),
            span: None,
            intervals: 0,
        }
    }

    fn merge(&mut self, other: ReadResult) {
        self.acc.merge(other.acc);
        self.warnings.extend(other.warnings);
        self.intervals += other.intervals;
        self.span = match (self.span, other.span) {
            (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
            (a, b) => a.or(b),
        };
    }
}

fn progress_bar(files: &[&Path], on: bool) -> ProgressBar {
    if !on {
        return ProgressBar::hidden();
    }
    let total: u64 = files
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "reading logs {bar:30} {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
    ) {
        bar.set_style(style);
    }
    bar
}

/// Stream every file into per-thread accumulators (see the module docs).
fn read_logs(files: &[&Path], grid: &Grid, opts: &LoadOptions) -> Result<ReadResult> {
    let threads = opts
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, files.len().max(1));
    let next = AtomicUsize::new(0);
    let first_error: Mutex<Option<(usize, AnalyzeError)>> = Mutex::new(None);
    let bar = progress_bar(files, opts.progress);
    let stages = grid.stages.len();
    let results: Vec<ReadResult> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = ReadResult::new(stages, opts.blocks);
                    let mut decoder = PayloadDecoder::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = files.get(i) else { break };
                        match read_one(path, grid, &mut decoder, &mut out) {
                            Ok(bytes) => bar.inc(bytes),
                            Err(e) => {
                                let mut slot =
                                    first_error.lock().unwrap_or_else(|p| p.into_inner());
                                if slot.as_ref().is_none_or(|(j, _)| i < *j) {
                                    *slot = Some((i, e));
                                }
                                break;
                            }
                        }
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| AnalyzeError::ThreadPanicked))
            .collect::<Result<Vec<_>>>()
    })?;
    bar.finish_and_clear();
    if let Some((_, e)) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let mut total = ReadResult::new(stages, opts.blocks);
    for r in results {
        total.merge(r);
    }
    total
        .warnings
        .sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
    Ok(total)
}

fn read_one(
    path: &Path,
    grid: &Grid,
    decoder: &mut PayloadDecoder,
    out: &mut ReadResult,
) -> Result<u64> {
    let bytes = std::fs::read(path).map_err(|e| surge_record::Error::Io {
        path: path.to_path_buf(),
        action: "read hlog",
        source: e,
    })?;
    let info = stream::scan(path, &bytes, |iv| {
        let Some(place) = grid.place(iv.start_s) else {
            return ControlFlow::Continue(());
        };
        match decoder.decode(iv.payload) {
            Ok(decoded) => {
                out.acc.add(iv.tag, place, decoded);
                out.intervals += 1;
                let t = iv.start_s - grid.origin_s;
                let end = t + iv.length_s;
                out.span = Some(out.span.map_or((t, end), |(a, b)| (a.min(t), b.max(end))));
            }
            Err(message) => out.warnings.push(Warning {
                path: path.to_path_buf(),
                line: iv.line,
                message: format!("{message}; interval skipped"),
            }),
        }
        ControlFlow::Continue(())
    })?;
    out.warnings.extend(info.warnings);
    Ok(bytes.len() as u64)
}

/// Put every directory's timeline rows on the common axis (see [`Row`]).
fn merge_timelines(
    runs: &[RunInput],
    starts: &[Option<f64>],
    origin: f64,
) -> (Vec<String>, Vec<Row>) {
    let mut columns: Vec<String> = Vec::new();
    for t in runs.iter().filter_map(|r| r.timeline.as_ref()) {
        for c in t.columns().iter().skip(1) {
            if !columns.contains(c) {
                columns.push(c.clone());
            }
        }
    }
    let mut rows = Vec::new();
    for (run, start) in runs.iter().zip(starts) {
        let Some(t) = &run.timeline else { continue };
        let shift = start.unwrap_or(origin) - origin;
        let Some(ts) = t.column("t_s") else { continue };
        let cols: Vec<Option<&[f64]>> = columns.iter().map(|c| t.column(c)).collect();
        let mut prev = 0.0;
        for (i, &end) in ts.iter().enumerate() {
            rows.push(Row {
                start_s: prev + shift,
                end_s: end + shift,
                values: cols.iter().map(|c| c.map_or(f64::NAN, |c| c[i])).collect(),
            });
            prev = end;
        }
    }
    rows.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    (columns, rows)
}
