//! Every output format, compared byte for byte with files under tests/snapshots/.
//!
//! The run directory is built by the test itself (tests/common) with fixed times and
//! values, and its temporary path is replaced by `<RUN>`, so the files never change unless
//! the output does. After an intended change, regenerate and review the diff:
//!
//! ```sh
//! SURGE_UPDATE_SNAPSHOTS=1 cargo test -p surge-analyze --test snapshots
//! ```

mod common;

use std::path::Path;

use surge_analyze::{Format, LoadOptions, ReportOptions, render};
use surge_record::RunKind;

fn check(name: &str, actual: &str, root: &Path) {
    let actual = actual.replace(&root.display().to_string(), "<RUN>");
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("SURGE_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with SURGE_UPDATE_SNAPSHOTS=1 to create it",
            path.display()
        )
    });
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name} differs from the snapshot at line {}:\n  expected: {:?}\n  actual:   {:?}\n\
             (SURGE_UPDATE_SNAPSHOTS=1 regenerates it)",
            line + 1,
            expected.lines().nth(line),
            actual.lines().nth(line)
        );
    }
}

#[test]
fn report_in_every_format() {
    let root = tempfile::tempdir().unwrap();
    let f = common::build(root.path(), "run", RunKind::Simulated, 1.0);
    let report = surge_analyze::report(
        std::slice::from_ref(&f.dir),
        &LoadOptions::default(),
        &ReportOptions::default(),
    )
    .unwrap();
    for (format, file) in [
        (Format::Text, "report.txt"),
        (Format::Markdown, "report.md"),
        (Format::Json, "report.json"),
        (Format::Html, "report.html"),
        (Format::Junit, "report.junit.xml"),
    ] {
        check(file, &render::report(&report, format), root.path());
    }
    let e2e = report
        .charts
        .distributions
        .iter()
        .find(|d| d.tag == "e2e")
        .unwrap();
    check("e2e.hgrm", &render::hgrm::distribution(e2e), root.path());
}

#[test]
fn windowed_report_by_stage() {
    let root = tempfile::tempdir().unwrap();
    let f = common::build(root.path(), "run", RunKind::Measured, 1.0);
    let load = LoadOptions {
        from_s: Some(5.0),
        to_s: Some(15.0),
        ..LoadOptions::default()
    };
    let opts = ReportOptions {
        by: vec![surge_analyze::By::Stage],
    };
    let report = surge_analyze::report(std::slice::from_ref(&f.dir), &load, &opts).unwrap();
    check(
        "window-5-15.txt",
        &render::report(&report, Format::Text),
        root.path(),
    );
}

#[test]
fn comparison_in_every_format() {
    let root = tempfile::tempdir().unwrap();
    let base = common::build(root.path(), "base", RunKind::Simulated, 1.0);
    let cand = common::build(root.path(), "candidate", RunKind::Measured, 1.2);
    let load = LoadOptions {
        blocks: true,
        ..LoadOptions::default()
    };
    let opts = ReportOptions::default();
    let side = |dir: &Path| {
        let loaded = surge_analyze::load(&[dir.to_path_buf()], &load).unwrap();
        (
            surge_analyze::analyze(&loaded, &opts),
            surge_analyze::Samples::of(&loaded),
        )
    };
    let (b, bs) = side(&base.dir);
    let (c, cs) = side(&cand.dir);
    let noise = surge_analyze::compare::Noise {
        base: &bs,
        candidate: &cs,
        options: surge_analyze::BootstrapOptions::default(),
    };
    let limits =
        surge_analyze::parse_limits("e2e.p99=+10%!,ttft.p99=+50ms,errors.rate=+0.05pp").unwrap();
    let cmp = surge_analyze::compare(&b, &c, &limits, Some(&noise)).unwrap();
    for (format, file) in [
        (Format::Text, "compare.txt"),
        (Format::Markdown, "compare.md"),
        (Format::Json, "compare.json"),
        (Format::Html, "compare.html"),
        (Format::Junit, "compare.junit.xml"),
    ] {
        check(file, &render::comparison(&cmp, format), root.path());
    }
}
