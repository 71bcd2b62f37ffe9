//! The merge step of a multi-machine run after the fact: shard directories → one run
//! directory.
//!
//! Each machine runs `surge run --shard I/N` and writes its own `OUT/shard-NNN/`. With
//! `--rendezvous` shard 0 merges them live ([`crate::rendezvous`]); this merge is for shard
//! directories gathered afterwards (a run without a rendezvous, a lost coordinator), and
//! gives the same summary as the live merge. Merging copies every `shard-NNN.hlog` and
//! error sample file unchanged (they are already named by shard), adds the timelines row
//! by row (the shards shared time zero), and rebuilds `summary.json` from the merged
//! histograms — so percentiles are of all messages, never averages of shard percentiles —
//! and re-judges the thresholds the shards carried.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use surge_record::{
    Histogram, LostShard, RunDir, RunInfo, RunStatus, Summary, Tag, TimelineColumns, TimelineRow,
    new_histogram,
};

use crate::RunError;
use crate::coordinator::{add_scopes, tally};
use crate::errors::ErrorClass;
use crate::health::Saturation;
use crate::recording::CounterValues;
use crate::summary::{Inputs, Wanted, build};
use surge_profile::goodput::Slos;

fn err(e: impl std::fmt::Display) -> RunError {
    RunError::CouldNotRun(e.to_string())
}

struct ShardDir {
    dir: RunDir,
    info: RunInfo,
    summary: Summary,
    name: String,
}

/// A shard directory to merge, and its name in what the merged run says (its path, or the
/// URL it was downloaded from).
#[derive(Debug, Clone)]
pub struct Source {
    pub dir: PathBuf,
    pub name: String,
}

/// Merges the shard directories `shards` into a new run directory under `out`; returns its
/// path and the merged summary.
pub fn merge(shards: &[Source], out: &Path) -> Result<(PathBuf, Summary, RunStatus), RunError> {
    if shards.is_empty() {
        return Err(RunError::Usage(
            "--merge needs at least one shard directory".into(),
        ));
    }
    let mut parts = Vec::new();
    for source in shards {
        let dir = RunDir::open(&source.dir).map_err(err)?;
        let info = dir.read_run_info().map_err(err)?;
        let summary = dir.read_summary().map_err(|e| {
            RunError::CouldNotRun(format!("{e} (did shard {} finish?)", source.name))
        })?;
        parts.push(ShardDir {
            dir,
            info,
            summary,
            name: source.name.clone(),
        });
    }
    let first = &parts[0].info;
    let start = parts.iter().map(|p| p.info.started_at).min().expect("one");
    let target = RunDir::create(out, &first.profile, start).map_err(err)?;

    // Histograms and samples: copied as they are, and merged for the summary.
    let mut totals: BTreeMap<Tag, Histogram<u64>> = BTreeMap::new();
    let mut present = std::collections::BTreeSet::new();
    for p in &parts {
        for hlog in p.dir.list_hlogs().map_err(err)? {
            let name = hlog.file_name().expect("a file");
            present.extend(RunDir::hlog_shard(&hlog));
            let to = target.path().join(name);
            if to.exists() {
                return Err(RunError::Usage(format!(
                    "two shard directories hold {}: give each shard directory once",
                    name.to_string_lossy()
                )));
            }
            std::fs::copy(&hlog, &to).map_err(err)?;
            for interval in surge_record::hlog::read_file(&hlog).map_err(err)?.intervals {
                if let Some(tag) = interval.tag.surge() {
                    let _ = totals
                        .entry(tag.clone())
                        .or_insert_with(new_histogram)
                        .add(&interval.histogram);
                }
            }
        }
        for samples in p.dir.list_error_samples().map_err(err)? {
            let to = target
                .errors_dir()
                .join(samples.file_name().expect("a file"));
            std::fs::copy(&samples, to).map_err(err)?;
        }
    }
    merge_timelines(&parts, &target)?;

    let mut counts = CounterValues::default();
    let mut upgrade_status: BTreeMap<u16, u64> = BTreeMap::new();
    let mut closed_by_server: BTreeMap<u16, u64> = BTreeMap::new();
    // Goodput: every shard judged its answers by the same SLOs; their counts add up.
    let mut slos: BTreeMap<String, f64> = BTreeMap::new();
    let mut goodput_by_scope: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut busiest = Saturation::default();
    let mut duration: f64 = 0.0;
    for p in &parts {
        let s = &p.summary;
        counts.sessions_opened += s.counts.sessions;
        counts.sent += s.counts.sent;
        counts.completed += s.counts.completed;
        counts.late += s.counts.late;
        counts.unsolicited += s.counts.unsolicited;
        counts.abandoned += s.counts.abandoned;
        counts.retries += s.counts.retries;
        if let Some(g) = &s.goodput {
            counts.good += g.good;
            slos = g.slo_ms.clone();
            let scopes = g.by_scope.iter().map(|(k, s)| (k, (s.good, s.answers)));
            add_scopes(&mut goodput_by_scope, scopes);
        }
        if let Some(c) = &s.connections {
            counts.reconnects += c.reconnects;
            counts.keepalives += c.keepalives;
            tally(&mut closed_by_server, &c.closed_by_server);
        }
        counts.unsent += s.extra.get("unsent").and_then(|v| v.as_u64()).unwrap_or(0);
        for c in ErrorClass::ALL {
            counts.errors[c.index()] += s.errors.get(c.name()).copied().unwrap_or(0);
        }
        if let Some(by) = s
            .extra
            .get("upgrade_rejected_by_status")
            .and_then(|v| v.as_object())
        {
            for (k, v) in by {
                if let (Ok(code), Some(n)) = (k.parse(), v.as_u64()) {
                    *upgrade_status.entry(code).or_default() += n;
                }
            }
        }
        let generator = &s.extra["generator"];
        counts.paced += generator["paced"].as_u64().unwrap_or(0);
        busiest = busiest.max(Saturation {
            cpu_share: generator["cpu_share_max"].as_f64().unwrap_or(0.0),
            wait_share: generator["cpu_wait_share"].as_f64().unwrap_or(0.0),
        });
        duration = duration.max(s.duration_s);
    }
    let thresholds: Vec<Wanted> = parts[0]
        .summary
        .thresholds
        .iter()
        .filter_map(|t| {
            Some(Wanted {
                metric: t.metric.parse().ok()?,
                op: t.op,
                limit: t.limit,
            })
        })
        .collect();
    let dead: Vec<String> = parts
        .iter()
        .filter(|p| p.info.status == RunStatus::Failed)
        .map(|p| format!("{} failed", p.name))
        .collect();
    let count = parts.iter().map(|p| p.info.shards).max().unwrap_or(1);
    let missing: Vec<u32> = (0..count).filter(|i| !present.contains(i)).collect();
    let mut summary = build(&Inputs {
        thresholds: &thresholds,
        duration: Duration::from_secs_f64(duration),
        counts: &counts,
        totals: &totals,
        tokens_per_s: &new_histogram(),
        upgrade_status: &upgrade_status,
        closed_by_server: &closed_by_server,
        goodput: &Slos::from_ms(&slos),
        goodput_by_scope: &goodput_by_scope,
        busiest,
        shards: parts.len(),
        dead: &dead,
    });
    // A shard not given is load the rehearsal did not send: the merge is degraded, as a
    // live run that lost the shard from the start would be.
    summary.lost_shards.extend(missing.iter().map(|&shard| {
        LostShard {
            shard,
            last_report_s: 0.0,
            lost_at_s: 0.0,
            why: "no directory of this shard was given to --merge (its sessions, about 1/N \
                  of the run's, are missing from every figure)"
                .into(),
            offered_share_lost: 1.0 / f64::from(count),
        }
    }));
    target.write_summary(&summary).map_err(err)?;

    let status = [
        RunStatus::Failed,
        RunStatus::Aborted,
        RunStatus::Interrupted,
        RunStatus::Running,
    ]
    .into_iter()
    .find(|s| parts.iter().any(|p| p.info.status == *s))
    .unwrap_or(if missing.is_empty() {
        RunStatus::Complete
    } else {
        RunStatus::Degraded
    });
    let mut info = first.clone();
    info.started_at = start;
    // Each machine judged only its own shard: the first breach stopped the run.
    info.breach = parts
        .iter()
        .filter_map(|p| p.info.breach.clone())
        .min_by(|a, b| a.at_s.total_cmp(&b.at_s));
    info.shards = count;
    let ended = parts.iter().filter_map(|p| p.info.ended_at).max();
    info.finish(status, ended.unwrap_or(start));
    target.write_run_info(&info).map_err(err)?;
    Ok((target.path().to_path_buf(), summary, status))
}

/// Adds the shards' timelines row by row.
fn merge_timelines(parts: &[ShardDir], target: &RunDir) -> Result<(), RunError> {
    let timelines = parts
        .iter()
        .map(|p| p.dir.read_timeline().map_err(err))
        .collect::<Result<Vec<_>, _>>()?;
    let classes: Vec<&str> = ErrorClass::ALL.iter().map(|c| c.name()).collect();
    let extra: Vec<String> = timelines[0].extra_columns().map(str::to_string).collect();
    let columns = TimelineColumns::new(&classes, &extra).map_err(err)?;
    let mut w = target.create_timeline(&columns).map_err(err)?;
    let rows = timelines.iter().map(|t| t.len()).max().unwrap_or(0);
    for i in 0..rows {
        let sum = |name: &str| -> f64 {
            timelines
                .iter()
                .filter_map(|t| t.column(name).and_then(|c| c.get(i)))
                .filter(|v| v.is_finite())
                .sum()
        };
        let max = |name: &str| -> f64 {
            timelines
                .iter()
                .filter_map(|t| t.column(name).and_then(|c| c.get(i)))
                .fold(0.0, |a, b| a.max(*b))
        };
        let errors: Vec<u64> = classes
            .iter()
            .map(|c| sum(&format!("errors_{c}")) as u64)
            .collect();
        let extra_values: Vec<f64> = extra
            .iter()
            .map(|c| if c.ends_with("_max") { max(c) } else { sum(c) })
            .collect();
        w.write_row(&TimelineRow {
            t_s: max("t_s"),
            sessions_open: sum("sessions_open") as u64,
            sent: sum("sent") as u64,
            completed: sum("completed") as u64,
            errors: &errors,
            extra: &extra_values,
        })
        .map_err(err)?;
    }
    w.finish().map_err(err)
}
