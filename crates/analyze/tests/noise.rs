//! Known-answer tests of `surge compare`'s noise gate on synthetic runs whose true difference
//! the test knows (tests/common/synthetic.rs): noise alone must not fail a `!` limit, a real
//! shift must, and the same seed must give the same intervals.

mod common;

use std::path::{Path, PathBuf};

use common::synthetic::{self, Synthetic};
use surge_analyze::compare::Noise;
use surge_analyze::{BootstrapOptions, Comparison, LoadOptions, Report, ReportOptions, Samples};

fn side(dir: &Path) -> (Report, Samples) {
    let load = LoadOptions {
        blocks: true,
        ..LoadOptions::default()
    };
    let loaded = surge_analyze::load(&[dir.to_path_buf()], &load).unwrap();
    (
        surge_analyze::analyze(&loaded, &ReportOptions::default()),
        Samples::of(&loaded),
    )
}

fn compare(
    base: &(Report, Samples),
    cand: &(Report, Samples),
    limits: &str,
    options: BootstrapOptions,
) -> surge_analyze::Result<Comparison> {
    let noise = Noise {
        base: &base.1,
        candidate: &cand.1,
        options,
    };
    let limits = surge_analyze::parse_limits(limits)?;
    surge_analyze::compare(&base.0, &cand.0, &limits, Some(&noise))
}

fn row<'a>(c: &'a Comparison, figure: &str) -> &'a surge_analyze::compare::CompareRow {
    c.rows.iter().find(|r| r.figure == figure).unwrap()
}

fn build(root: &Path, name: &str, s: Synthetic) -> PathBuf {
    synthetic::build(root, name, s)
}

/// One minute at 20 messages a second: 1,200 values, 12 beyond the p99 — a noisy p99.
const SMALL: Synthetic = Synthetic {
    seconds: 60,
    per_second: 20,
    scale: 1.0,
    error_p: 0.0,
    seed: 0,
};

#[test]
fn noise_alone_fails_a_plain_limit_but_not_a_significance_limit() {
    let root = tempfile::tempdir().unwrap();
    let base = side(&build(root.path(), "base", Synthetic { seed: 1, ..SMALL }));
    // Same distribution, other draws: find a candidate whose p99 is >10 % above the base's
    // by chance alone (about one draw in seven; 40 tries).
    let (seed, cand) = (2..42u64)
        .map(|seed| {
            let dir = build(
                root.path(),
                &format!("cand-{seed}"),
                Synthetic { seed, ..SMALL },
            );
            (seed, side(&dir))
        })
        .find(|(_, c)| c.0.row("e2e").unwrap().p99 > 1.10 * base.0.row("e2e").unwrap().p99)
        .expect("some draw of the same distribution is 10 % worse at p99");

    let plain = compare(&base, &cand, "e2e.p99=+10%", BootstrapOptions::default()).unwrap();
    assert!(
        !plain.passed,
        "seed {seed}: the point estimate is beyond +10 %"
    );
    assert!(
        plain.limits[0].explanation.contains("but within noise"),
        "{}",
        plain.limits[0].explanation
    );

    let gated = compare(&base, &cand, "e2e.p99=+10%!", BootstrapOptions::default()).unwrap();
    assert!(gated.passed, "seed {seed}: {}", gated.limits[0].explanation);
    assert_eq!(gated.limits[0].ci_vs_allowance, Some("overlaps"));
    let r = row(&gated, "e2e.p99");
    let i = r.interval.unwrap();
    assert!(r.relative.unwrap() > 0.10);
    assert!(
        i.relative_low.unwrap() < 0.0,
        "{i:?}: the interval reaches below no change"
    );
    assert_eq!(r.significant, Some(false));
}

#[test]
fn intervals_of_runs_of_one_distribution_mostly_hold_zero() {
    let root = tempfile::tempdir().unwrap();
    let options = BootstrapOptions {
        resamples: 400,
        ..BootstrapOptions::default()
    };
    let (mut checked, mut significant) = (0, 0);
    for pair in 0..12u64 {
        let run = |k: u64| {
            let s = Synthetic {
                seed: 100 + 2 * pair + k,
                ..SMALL
            };
            side(&build(root.path(), &format!("run-{pair}-{k}"), s))
        };
        let c = compare(&run(0), &run(1), "", options).unwrap();
        for figure in ["e2e.p50", "e2e.p90", "e2e.p99", "ttft.p99"] {
            checked += 1;
            significant += usize::from(row(&c, figure).significant.unwrap());
        }
    }
    // A 95 % interval excludes the true delta (0) in about 5 % of checks; a method whose
    // intervals were too narrow would call a quarter or more of them significant.
    assert_eq!(checked, 48);
    assert!(
        significant <= 6,
        "{significant} of {checked} significant on noise alone"
    );
}

#[test]
fn a_real_shift_fails_a_significance_limit_and_its_interval_holds_the_truth() {
    let root = tempfile::tempdir().unwrap();
    // Two minutes at 100 messages a second; the candidate's exponential part is 1.5 times
    // the base's and it fails twice as often.
    let big = Synthetic {
        seconds: 120,
        per_second: 100,
        scale: 1.0,
        error_p: 0.01,
        seed: 3,
    };
    let base = side(&build(root.path(), "base", big));
    let cand = side(&build(
        root.path(),
        "cand",
        Synthetic {
            scale: 1.5,
            error_p: 0.02,
            seed: 4,
            ..big
        },
    ));
    let c = compare(
        &base,
        &cand,
        "e2e.p99=+10%!,e2e.p50=+20ms!,errors.rate=+0.5pp!",
        BootstrapOptions::default(),
    )
    .unwrap();
    assert!(!c.passed);
    assert!(c.limits.iter().all(|l| l.exceeded), "{:#?}", c.limits);
    assert!(c.limits.iter().all(|l| l.ci_vs_allowance == Some("beyond")));
    // The true p99 of 50 ms + Exp(mean m) is 50 + m·ln 100.
    let p99 = |m: f64| 50.0 + m * 100f64.ln();
    let truth = p99(300.0) / p99(200.0) - 1.0;
    let i = row(&c, "e2e.p99").interval.unwrap();
    let (lo, hi) = (i.relative_low.unwrap(), i.relative_high.unwrap());
    assert!(lo < truth && truth < hi, "{lo}..{hi} misses {truth}");
    assert!(lo > 0.10);
    let e = row(&c, "errors.rate").interval.unwrap();
    assert!(e.low < 0.01 && 0.01 < e.high, "{e:?} misses +1 pp");
    assert_eq!(row(&c, "e2e.p50").significant, Some(true));
    // Maxima and a figure without a timeline column have no interval, and say why.
    assert!(
        row(&c, "e2e.max")
            .no_interval
            .as_ref()
            .unwrap()
            .contains("maximum")
    );
    assert!(
        row(&c, "late.rate")
            .no_interval
            .as_ref()
            .unwrap()
            .contains("late")
    );
}

#[test]
fn the_same_seed_gives_the_same_intervals() {
    let root = tempfile::tempdir().unwrap();
    let base = side(&build(root.path(), "base", Synthetic { seed: 5, ..SMALL }));
    let cand = side(&build(
        root.path(),
        "cand",
        Synthetic {
            seed: 6,
            scale: 1.2,
            ..SMALL
        },
    ));
    let run = |seed| {
        let c = compare(
            &base,
            &cand,
            "e2e.p99=+10%",
            BootstrapOptions {
                seed,
                ..BootstrapOptions::default()
            },
        )
        .unwrap();
        c.rows.iter().map(|r| r.interval).collect::<Vec<_>>()
    };
    let (a, b, other) = (run(1), run(1), run(2));
    assert_eq!(a, b);
    assert!(a.iter().any(Option::is_some));
    assert_ne!(a, other, "another seed draws other resamples");
}

#[test]
fn a_significance_limit_without_an_interval_is_an_error() {
    let root = tempfile::tempdir().unwrap();
    // Eight seconds: eight blocks of 1 s, fewer than the bootstrap needs.
    let short = Synthetic {
        seconds: 8,
        ..SMALL
    };
    let base = side(&build(root.path(), "base", Synthetic { seed: 7, ..short }));
    let cand = side(&build(root.path(), "cand", Synthetic { seed: 8, ..short }));
    let e = compare(&base, &cand, "e2e.p99=+10%!", BootstrapOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("`!` needs a confidence interval"), "{e}");
    assert!(
        e.contains("8 blocks of 1 s; the bootstrap needs at least 10"),
        "{e}"
    );
    assert!(e.contains("Drop the `!`"), "{e}");
    // Without `!` the point estimate is judged as before.
    assert!(
        compare(&base, &cand, "e2e.p99=+1000%", BootstrapOptions::default())
            .unwrap()
            .passed
    );
    // No bootstrap at all.
    let limits = surge_analyze::parse_limits("e2e.p50=+10%!").unwrap();
    let e = surge_analyze::compare(&base.0, &cand.0, &limits, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("without a bootstrap"), "{e}");
}
