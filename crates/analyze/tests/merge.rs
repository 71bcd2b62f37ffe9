//! Merging, windows, stages, counts and damaged logs, checked against histograms built
//! directly from every recorded value.

mod common;

use std::path::PathBuf;

use common::{Fixture, build, ms_at};
use surge_analyze::model::{By, LatencyRow, Report};
use surge_analyze::{LoadOptions, ReportOptions};
use surge_record::{Histogram, RunKind};

fn report(dirs: &[PathBuf], from: Option<f64>, to: Option<f64>) -> Report {
    let load = LoadOptions {
        from_s: from,
        to_s: to,
        ..LoadOptions::default()
    };
    surge_analyze::report(dirs, &load, &ReportOptions::default()).unwrap()
}

fn assert_row_is(row: &LatencyRow, h: &Histogram<u64>) {
    let what = &row.tag;
    assert_eq!(row.count, h.len(), "{what} count");
    assert_eq!(row.p50, ms_at(h, 0.5), "{what} p50");
    assert_eq!(row.p90, ms_at(h, 0.9), "{what} p90");
    assert_eq!(row.p99, ms_at(h, 0.99), "{what} p99");
    assert_eq!(row.p999, ms_at(h, 0.999), "{what} p99.9");
    assert_eq!(row.max, h.max() as f64 / 1000.0, "{what} max");
}

fn fixture() -> (tempfile::TempDir, Fixture) {
    let root = tempfile::tempdir().unwrap();
    let f = build(root.path(), "run", RunKind::Measured, 1.0);
    (root, f)
}

#[test]
fn merged_shards_equal_one_histogram_of_all_values() {
    let (_root, f) = fixture();
    let r = report(std::slice::from_ref(&f.dir), None, None);
    for tag in common::TAGS {
        let row = r.row(tag).unwrap_or_else(|| panic!("no row for {tag}"));
        assert_row_is(row, &f.histogram(tag, 0, 30));
    }
    // Lag is reported as generator health, not as a latency of the system.
    assert!(r.overall.latency.iter().all(|l| l.tag != "lag"));
    let lag = r.generator.lag.as_ref().unwrap();
    assert_row_is(lag, &f.histogram("lag", 0, 30));
    assert!(!r.generator.bottleneck, "{}", r.generator.verdict);
    assert_eq!(r.window.intervals, 2 * 30 * 10);
    let e2e = r.row("e2e").unwrap();
    assert_eq!(e2e.rate_per_s, e2e.count as f64 / 30.0);
}

#[test]
fn several_directories_merge_like_shards() {
    let root = tempfile::tempdir().unwrap();
    let a = build(root.path(), "a", RunKind::Measured, 1.0);
    let b = build(root.path(), "b", RunKind::Measured, 1.7);
    let r = report(&[a.dir.clone(), b.dir.clone()], None, None);
    for tag in ["e2e", "ttft:manga_jp", "e2e:haiku"] {
        let mut h = a.histogram(tag, 0, 30);
        h.add(b.histogram(tag, 0, 30)).unwrap();
        assert_row_is(r.row(tag).unwrap(), &h);
    }
    let t = r.overall.traffic.as_ref().unwrap();
    assert_eq!(t.sent, 2 * 2400);
    assert_eq!(t.sessions_peak, Some(200.0), "gauges of shards add up");
}

#[test]
fn a_window_holds_exactly_its_intervals_and_rejudges_thresholds() {
    let (_root, f) = fixture();
    let whole = report(std::slice::from_ref(&f.dir), None, None);
    let ttft_p50 = |r: &Report| {
        r.thresholds
            .iter()
            .find(|t| t.metric == "ttft.p50")
            .cloned()
            .unwrap()
    };
    assert!(
        !ttft_p50(&whole).passed,
        "the steady stage is too slow for ttft.p50 < 60ms"
    );
    assert!(!whole.passed());

    let w = report(std::slice::from_ref(&f.dir), Some(0.0), Some(10.0));
    assert_row_is(w.row("e2e").unwrap(), &f.histogram("e2e", 0, 10));
    let t = ttft_p50(&w);
    assert!(t.passed, "{t:?}");
    assert_eq!(t.measured, Some(ms_at(&f.histogram("ttft", 0, 10), 0.5)));
    assert_eq!(w.window.duration_s, 10.0);
    assert_eq!(w.window.intervals, 2 * 10 * 10);

    let w = report(std::slice::from_ref(&f.dir), Some(5.0), Some(12.0));
    for tag in ["e2e", "ttft:manga_jp"] {
        assert_row_is(w.row(tag).unwrap(), &f.histogram(tag, 5, 12));
    }
    // Traffic in a window comes from the timeline: second 3 is outside, 10 inside.
    let tr = w.overall.traffic.as_ref().unwrap();
    assert_eq!(tr.source, "timeline.csv");
    assert_eq!(tr.sent, 7 * 80);
    assert_eq!(tr.errors["timeout"], 1);
    assert_eq!(tr.error_ratio, Some(1.0 / 560.0));
    assert_eq!(tr.late, Some(2));
    assert_eq!(tr.tokens_per_s, Some(80.0 * 120.0));
}

#[test]
fn stages_follow_the_resolved_profile() {
    let (_root, f) = fixture();
    let r = report(std::slice::from_ref(&f.dir), None, None);
    let stages = r.breakdowns.iter().find(|b| b.by == By::Stage).unwrap();
    let names: Vec<&str> = stages.sections.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["ramp", "steady"]);
    for (s, (from, to)) in stages.sections.iter().zip([(0, 10), (10, 30)]) {
        assert_eq!(s.duration_s, (to - from) as f64);
        for row in &s.latency {
            assert_row_is(row, &f.histogram(&row.tag, from, to));
        }
        assert_eq!(s.traffic.as_ref().unwrap().sent, 80 * (to - from));
    }
    let stores: Vec<&str> = r
        .breakdowns
        .iter()
        .find(|b| b.by == By::Store)
        .unwrap()
        .sections
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(stores, ["kindle", "manga_jp"]);
    assert!(r.breakdowns.iter().any(|b| b.by == By::Model));
    // A window inside the steady stage has only that stage.
    let w = report(std::slice::from_ref(&f.dir), Some(12.0), None);
    let stages = w.breakdowns.iter().find(|b| b.by == By::Stage).unwrap();
    assert_eq!(stages.sections.len(), 1);
    assert_eq!(stages.sections[0].name, "steady");
}

#[test]
fn whole_run_counts_come_from_the_summary() {
    let (_root, f) = fixture();
    let r = report(std::slice::from_ref(&f.dir), None, None);
    let t = r.overall.traffic.as_ref().unwrap();
    assert_eq!(t.source, "summary.json");
    assert_eq!((t.sent, t.errors_total, t.late), (2400, 6, Some(6)));
    assert_eq!(t.error_ratio, Some(6.0 / 2400.0));
    let er = r
        .thresholds
        .iter()
        .find(|t| t.metric == "errors.rate")
        .unwrap();
    assert!(er.passed);
    assert_eq!(er.measured, Some(0.0025));
    let ddb = r
        .infrastructure
        .iter()
        .find(|i| i.name == "ddb_wru_per_s")
        .unwrap();
    assert_eq!((ddb.peak, ddb.capacity), (590.0, Some(1000.0)));
}

fn damage(path: &std::path::Path) -> (usize, usize) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    // A payload damaged in the middle of the file…
    let mid = lines.len() / 2;
    let (head, payload) = lines[mid].rsplit_once(',').unwrap();
    lines[mid] = format!("{head},{}", &payload[..payload.len() / 2]);
    // …and a last line cut off by a crash.
    let last = lines.len() - 1;
    lines[last].truncate(20);
    std::fs::write(path, lines.join("\n")).unwrap();
    (mid + 1, last + 1)
}

#[test]
fn damaged_logs_warn_with_file_and_line_and_keep_intact_intervals() {
    let (_root, f) = fixture();
    let shard = f.dir.join("shard-001.hlog");
    let (mid, last) = damage(&shard);
    let r = report(std::slice::from_ref(&f.dir), None, None);
    let name = shard.display().to_string();
    assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
    assert!(
        r.warnings[0].starts_with(&format!("{name}:{mid}: ")),
        "{:?}",
        r.warnings
    );
    assert!(
        r.warnings[1].starts_with(&format!("{name}:{last}: ")),
        "{:?}",
        r.warnings
    );
    assert!(r.warnings[1].contains("truncated"), "{:?}", r.warnings);
    // The intact intervals are exactly what the reference reader (surge-record) keeps.
    let mut expected = surge_record::new_histogram();
    for p in ["shard-000.hlog", "shard-001.hlog"] {
        for iv in surge_record::hlog::read_file(&f.dir.join(p))
            .unwrap()
            .intervals
        {
            if iv.tag.to_string() == "e2e" {
                expected.add(&iv.histogram).unwrap();
            }
        }
    }
    assert_row_is(r.row("e2e").unwrap(), &expected);
}

#[test]
fn a_file_that_is_not_a_log_is_an_error_naming_it() {
    let (_root, f) = fixture();
    let shard = f.dir.join("shard-002.hlog");
    std::fs::write(&shard, "hello\nworld\n").unwrap();
    let e = surge_analyze::report(
        std::slice::from_ref(&f.dir),
        &LoadOptions::default(),
        &ReportOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with(&format!(
            "{}:1: not an HdrHistogram interval log",
            shard.display()
        )),
        "{e}"
    );
    let e = surge_analyze::report(
        &[f.dir.join("nope")],
        &LoadOptions::default(),
        &ReportOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("nope"), "{e}");
}

#[test]
fn reading_threads_do_not_change_the_result() {
    let (_root, f) = fixture();
    let with = |threads| {
        let load = LoadOptions {
            threads: Some(threads),
            ..LoadOptions::default()
        };
        surge_analyze::report(
            std::slice::from_ref(&f.dir),
            &load,
            &ReportOptions::default(),
        )
        .unwrap()
    };
    let one = surge_analyze::render::json::report(&with(1));
    let two = surge_analyze::render::json::report(&with(2));
    assert_eq!(one, two);
}

#[test]
fn an_unreadable_summary_is_stepped_over_with_a_warning() {
    let (_root, f) = fixture();
    let summary = f.dir.join("summary.json");
    let text = std::fs::read_to_string(&summary).unwrap();
    std::fs::write(
        &summary,
        text.replace("surge.summary/v1", "surge.summary/v9"),
    )
    .unwrap();
    let r = report(std::slice::from_ref(&f.dir), None, None);
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(
        r.warnings[0].starts_with(&summary.display().to_string()),
        "{:?}",
        r.warnings
    );
    assert!(r.warnings[0].ends_with("counts come from timeline.csv instead"));
    let t = r.overall.traffic.as_ref().unwrap();
    assert_eq!(
        (t.source.as_str(), t.sent, t.errors_total),
        ("timeline.csv", 2400, 6)
    );
}

#[test]
fn without_a_late_column_a_run_with_no_late_sends_has_none_in_a_window() {
    let (_root, f) = fixture();
    // Drop the timeline's `late` column and make the summary count no late sends.
    let tl = f.dir.join("timeline.csv");
    let text = std::fs::read_to_string(&tl).unwrap();
    let col = text
        .lines()
        .next()
        .unwrap()
        .split(',')
        .position(|c| c == "late")
        .unwrap();
    let rewritten: Vec<String> = text
        .lines()
        .map(|l| {
            let cells: Vec<&str> = l
                .split(',')
                .enumerate()
                .filter(|(i, _)| *i != col)
                .map(|(_, c)| c)
                .collect();
            cells.join(",")
        })
        .collect();
    std::fs::write(&tl, rewritten.join("\n") + "\n").unwrap();
    let w = report(std::slice::from_ref(&f.dir), Some(0.0), Some(10.0));
    assert_eq!(
        w.overall.traffic.as_ref().unwrap().late,
        None,
        "the summary counts 6 late sends"
    );
    let late = w
        .thresholds
        .iter()
        .find(|t| t.metric == "late.rate")
        .unwrap();
    assert!(
        !late.passed && late.measured.is_none(),
        "no data fails: {late:?}"
    );

    let summary = f.dir.join("summary.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    json["counts"]["late"] = 0.into();
    std::fs::write(&summary, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    let w = report(std::slice::from_ref(&f.dir), Some(0.0), Some(10.0));
    assert_eq!(w.overall.traffic.as_ref().unwrap().late_ratio, Some(0.0));
    assert!(
        w.thresholds
            .iter()
            .find(|t| t.metric == "late.rate")
            .unwrap()
            .passed
    );
}
