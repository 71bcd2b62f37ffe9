//! Goodput known answers: a run directory written with known shares of good answers per
//! second must report exactly those shares, over the whole run (from `summary.json`) and
//! over a window (from `timeline.csv`'s `good` column), and thresholds and comparisons judge
//! them the way the profile says.

use std::path::Path;

use surge_analyze::{LoadOptions, ReportOptions};
use surge_profile::MetricRef;
use surge_profile::metric::{RatioMetric, Threshold};
use surge_record::{
    Counts, Goodput, RunDir, RunInfo, RunKind, RunStatus, Summary, TimelineColumns, TimelineRow,
    UtcTime,
};

const SECONDS: u64 = 20;

/// Sent and good answers in second `s`: 100 sent; 90 good for the first ten seconds, then
/// 60 (a system that degrades half-way).
fn second(s: u64) -> (u64, u64) {
    (100, if s < 10 { 90 } else { 60 })
}

fn write_run(path: &Path) {
    let dir = RunDir::create_at(path).unwrap();
    let start = UtcTime::from_unix_millis(1_795_871_100_000);
    let mut info = RunInfo::new(RunKind::Measured, "goodput", serde_json::json!({}), start);
    info.finish(RunStatus::Complete, start);
    dir.write_run_info(&info).unwrap();
    let columns = TimelineColumns::new(["timeout"], ["late", "good", "tokens"]).unwrap();
    let mut tl = dir.create_timeline(&columns).unwrap();
    let (mut sent, mut good) = (0, 0);
    for s in 0..SECONDS {
        let (n, g) = second(s);
        tl.write_row(&TimelineRow {
            t_s: (s + 1) as f64,
            sessions_open: 50,
            sent: n,
            completed: n,
            errors: &[0],
            extra: &[0.0, g as f64, (n * 200) as f64],
        })
        .unwrap();
        sent += n;
        good += g;
    }
    tl.finish().unwrap();
    let mut summary = Summary::new(SECONDS as f64);
    summary.counts = Counts {
        sessions: 50,
        sent,
        completed: sent,
        late: 0,
        unsolicited: 0,
        ..Counts::default()
    };
    summary.compute_rates();
    summary.goodput = Some(Goodput::from_counts(
        good,
        sent,
        SECONDS as f64,
        &[("e2e", 5000.0)],
        [("store:manga_jp".to_string(), (good, sent))],
    ));
    dir.write_summary(&summary).unwrap();
}

fn report(path: &Path, from_s: Option<f64>, to_s: Option<f64>) -> surge_analyze::Report {
    let load = LoadOptions {
        from_s,
        to_s,
        ..LoadOptions::default()
    };
    surge_analyze::report(&[path.to_path_buf()], &load, &ReportOptions::default()).unwrap()
}

#[test]
fn goodput_over_the_run_and_over_a_window() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("run");
    write_run(&path);
    let goodput = MetricRef::Ratio(RatioMetric::Goodput);

    // Whole run: (10×90 + 10×60) / 2000 = 75 %, 75 good answers a second.
    let whole = report(&path, None, None);
    assert_eq!(whole.figure(&goodput), Some(0.75));
    let traffic = whole.overall.traffic.as_ref().unwrap();
    assert_eq!(traffic.good, Some(1500));
    assert_eq!(traffic.goodput_per_s, Some(75.0));
    assert!(whole.figures().contains(&goodput));

    // The second half alone, from the timeline: 60 %.
    let late = report(&path, Some(10.0), None);
    assert_eq!(late.figure(&goodput), Some(0.6));

    // Thresholds judge it, higher being better.
    let judge = |condition: &str| {
        let t = Threshold::parse(goodput.clone(), condition).unwrap();
        surge_analyze::thresholds::evaluate(&[t], &whole)[0].passed
    };
    assert!(judge("> 70%"));
    assert!(!judge("> 99%"));
}

#[test]
fn a_fall_in_goodput_is_a_regression() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    write_run(&base);
    let base = report(&base, None, None);
    // The candidate is the run's worse half: 60 % against 75 %.
    let candidate = report(&tmp.path().join("base"), Some(10.0), None);
    let limits = surge_analyze::parse_limits("goodput.ratio=+10%").unwrap();
    let c = surge_analyze::compare(&base, &candidate, &limits, None).unwrap();
    assert!(!c.passed, "75 % → 60 % is a fall of 20 %, more than 10 %");
    let limits = surge_analyze::parse_limits("goodput.ratio=+25%").unwrap();
    let c = surge_analyze::compare(&base, &candidate, &limits, None).unwrap();
    assert!(c.passed, "a fall of 20 % is within 25 %");
    // The other way round goodput rose: never a regression.
    let limits = surge_analyze::parse_limits("goodput.ratio=+0%").unwrap();
    assert!(
        surge_analyze::compare(&candidate, &base, &limits, None)
            .unwrap()
            .passed
    );
}
