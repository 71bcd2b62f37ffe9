//! `surge report` and `surge compare` as CI uses them: outputs, exit codes, errors, and the
//! HTML report checked in headless Chromium.

#[path = "../../analyze/tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use surge_record::RunKind;

fn surge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_surge"))
        .args(args)
        .output()
        .expect("the surge binary runs")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn runs() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let a = common::build(root.path(), "base", RunKind::Simulated, 1.0).dir;
    let b = common::build(root.path(), "candidate", RunKind::Measured, 1.2).dir;
    (root, a, b)
}

#[test]
fn report_exit_code_follows_the_thresholds_of_the_window() {
    let (_root, base, _) = runs();
    // Whole run: ttft.p50 < 60ms fails in the slow steady stage.
    let out = surge(&["report", s(&base)]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stdout.contains("✗ ttft.p50"), "{stdout}");
    assert!(
        stderr.contains("threshold failed: ttft.p50 < 60ms"),
        "{stderr}"
    );
    // The ramp alone passes every threshold.
    let out = surge(&[
        "report",
        s(&base),
        "--from",
        "0",
        "--to",
        "10s",
        "--by",
        "stage",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}\n{stdout}");
    assert!(stdout.contains("window 0 s–10 s since start"), "{stdout}");
    assert!(!stdout.contains("by store"), "{stdout}");
}

#[test]
fn report_writes_every_format_and_hgrm_files() {
    let (root, base, _) = runs();
    for format in ["text", "json", "markdown", "html", "junit"] {
        let out_file = root.path().join(format!("r.{format}"));
        let out = surge(&[
            "report",
            s(&base),
            "--format",
            format,
            "--out",
            s(&out_file),
        ]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
        assert!(out.stdout.is_empty());
        let body = std::fs::read_to_string(&out_file).unwrap();
        assert!(body.contains("994.3"), "{format}: e2e p99 missing");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.path().join("r.json")).unwrap())
            .unwrap();
    assert_eq!(json["schema"], "surge.report/v1");
    let hgrm = root.path().join("hgrm");
    let out = surge(&["report", s(&base), "--hgrm", s(&hgrm), "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let e2e = std::fs::read_to_string(hgrm.join("e2e.hgrm")).unwrap();
    assert!(e2e.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"));
    let tail: Vec<&str> = e2e.lines().rev().take(3).collect();
    assert!(tail[2].starts_with("#[Mean    = "), "{e2e}");
    assert!(
        tail[1].starts_with("#[Max     =      999.935, Total count    =         2400]"),
        "{e2e}"
    );
    assert!(tail[0].starts_with("#[Buckets = "), "{e2e}");
    assert!(hgrm.join("ttft.hgrm").exists() && hgrm.join("lag.hgrm").exists());
}

#[test]
fn report_bad_input_exits_2_with_a_clear_message() {
    let (root, base, _) = runs();
    let missing = root.path().join("missing");
    let out = surge(&["report", s(&missing)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("missing"), "{}", text(&out).1);
    let out = surge(&["report", s(&base), "--format", "pdf"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).1.contains("unknown format \"pdf\""),
        "{}",
        text(&out).1
    );
    let out = surge(&["report", s(&base), "--from", "20", "--to", "10"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("--from 20s is not before --to 10s"));
    let out = surge(&["report", s(&base), "--by", "region"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn damaged_log_reports_intact_intervals_with_a_warning() {
    let (_root, base, _) = runs();
    let shard = base.join("shard-001.hlog");
    let mut bytes = std::fs::read(&shard).unwrap();
    let cut = bytes.len() - 40;
    bytes.truncate(cut);
    std::fs::write(&shard, bytes).unwrap();
    let out = surge(&["report", s(&base)]);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "thresholds, not the damage, decide: {stderr}"
    );
    let lines = std::fs::read_to_string(&shard).unwrap().lines().count();
    assert!(
        stderr.contains(&format!("warning: {}:{lines}: ", shard.display())),
        "{stderr}"
    );
    assert!(stdout.contains("Warnings (1)"), "{stdout}");
}

#[test]
fn compare_exit_codes() {
    let (_root, base, cand) = runs();
    // Candidate latencies are 20% higher.
    let out = surge(&[
        "compare",
        s(&base),
        s(&cand),
        "--max-regression",
        "e2e.p99=+25%,ttft.p99=+50ms",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("all 2 regression limits hold"), "{stdout}");
    assert!(stdout.contains("prediction error"), "{stdout}");

    let out = surge(&[
        "compare",
        s(&base),
        s(&cand),
        "--max-regression",
        "e2e.p99=+10%,errors.rate=+0.05pp",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stdout.contains("✗ e2e.p99"), "{stdout}");
    assert!(stdout.contains("✓ errors.rate"), "{stdout}");
    assert!(
        stderr.contains("regression beyond limits: e2e.p99"),
        "{stderr}"
    );

    // No limits: a side-by-side view that cannot fail.
    let out = surge(&["compare", s(&base), s(&cand), "--format", "markdown"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out).0.contains("| e2e.p99 |"), "{}", text(&out).0);
}

#[test]
fn compare_unknown_or_missing_figures_are_errors_never_passes() {
    let (_root, base, cand) = runs();
    for (limits, needle) in [
        ("latency.p99=+10%", "unknown metric \"latency.p99\""),
        ("e2e.p98=+10%", "unknown statistic \"p98\""),
        ("e2e:atlantis.p99=+10%", "no data for e2e:atlantis.p99"),
        ("errors.rate=+5ms", "is a rate"),
    ] {
        let out = surge(&["compare", s(&base), s(&cand), "--max-regression", limits]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{limits}: {stderr}");
        assert!(stderr.contains(needle), "{limits}: {stderr}");
    }
    let out = surge(&["compare", s(&base)]);
    assert_eq!(out.status.code(), Some(2));
}

/// Synthetic runs whose true difference the test knows (analyze/tests/common/synthetic.rs):
/// one minute at 20 messages a second, same distribution, draws 1 and 10, whose p99s differ
/// by more than 10 % by chance; and a candidate whose latencies really are 1.5 times longer.
#[test]
fn compare_significance_limits_pass_on_noise_and_fail_on_a_real_shift() {
    use common::synthetic::{self, Synthetic};
    let root = tempfile::tempdir().unwrap();
    let small = Synthetic {
        seconds: 60,
        per_second: 20,
        scale: 1.0,
        error_p: 0.0,
        seed: 1,
    };
    let base = synthetic::build(root.path(), "base", small);
    let noisy = synthetic::build(root.path(), "noisy", Synthetic { seed: 10, ..small });
    let shifted = synthetic::build(
        root.path(),
        "shifted",
        Synthetic {
            scale: 1.5,
            seed: 11,
            ..small
        },
    );

    // The precondition, from the JSON: noise alone moved p99 by more than +10 %.
    let json = root.path().join("noisy.json");
    let out = surge(&[
        "compare",
        s(&base),
        s(&noisy),
        "--format",
        "json",
        "--out",
        s(&json),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["bootstrap"]["resamples"], 1000);
    let p99 = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["figure"] == "e2e.p99")
        .unwrap();
    assert!(p99["relative"].as_f64().unwrap() > 0.10, "{p99}");
    assert_eq!(p99["significant"], false, "{p99}");

    let out = surge(&[
        "compare",
        s(&base),
        s(&noisy),
        "--max-regression",
        "e2e.p99=+10%",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stdout.contains("within noise"), "{stdout}");

    let out = surge(&[
        "compare",
        s(&base),
        s(&noisy),
        "--max-regression",
        "e2e.p99=+10%!",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}\n{stdout}");
    assert!(stdout.contains("✓ e2e.p99 +10%!"), "{stdout}");
    assert!(stdout.contains("overlaps"), "{stdout}");

    let junit = root.path().join("shifted.xml");
    let out = surge(&[
        "compare",
        s(&base),
        s(&shifted),
        "--max-regression",
        "e2e.p99=+10%!",
        "--format",
        "junit",
        "--out",
        s(&junit),
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("regression beyond limits: e2e.p99"),
        "{stderr}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("beyond noise") && xml.contains("95% CI"),
        "{xml}"
    );

    // `!` without an interval is bad usage, never a silent pass.
    for (args, needle) in [
        (
            &["--max-regression", "e2e.p99=+10%!", "--bootstrap", "0"][..],
            "without a bootstrap",
        ),
        (
            &["--max-regression", "e2e.max=+10%!"][..],
            "a maximum has no confidence interval",
        ),
        (
            &["--max-regression", "e2e.p999=+10%!"][..],
            "fewer than 10 beyond e2e.p999",
        ),
        (
            &["--max-regression", "e2e.p99!=+10%"][..],
            "`!` goes after the allowance",
        ),
        (&["--confidence", "120"][..], "above 50 and below 100"),
    ] {
        let mut all = vec!["compare", s(&base), s(&noisy)];
        all.extend_from_slice(args);
        let out = surge(&all);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

/// Renders the HTML report in headless Chromium (scripts/check-html.sh) when SURGE_CHROMIUM
/// names a Chromium binary; CI sets it. Debian: `apt-get install chromium`.
#[test]
fn html_report_renders_in_chromium() {
    let Some(chromium) = std::env::var_os("SURGE_CHROMIUM") else {
        eprintln!("skipped: set SURGE_CHROMIUM to a chromium binary to check the HTML report");
        return;
    };
    let (root, base, _) = runs();
    let html = root.path().join("report.html");
    let out = surge(&["report", s(&base), "--format", "html", "--out", s(&html)]);
    assert_eq!(out.status.code(), Some(1));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/check-html.sh");
    let check = Command::new("bash")
        .arg(script)
        .arg(&html)
        .args([
            "--charts",
            "8",
            "e2e p99 994.3 ms",
            "ttft p99 99.01 ms",
            "ddb_wru_per_s",
        ])
        .env("SURGE_CHROMIUM", chromium)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&check);
    assert!(check.status.success(), "{stdout}\n{stderr}");
    eprintln!("{stdout}");
}
