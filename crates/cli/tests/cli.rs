//! The `surge` binary as a user meets it: output, help and exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn surge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_surge"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("the surge binary runs")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_shows_the_spike_peak() {
    let out = surge(&["check", "profiles/one-piece-spike.toml"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let spike = stdout
        .lines()
        .find(|l| l.starts_with("spike "))
        .expect("a spike stage row");
    assert!(spike.contains("500 → 25,000"), "{spike}");
    assert!(spike.contains("5,000 → 250,000"), "{spike}");
    assert!(stdout.contains("peak sessions        25,000"), "{stdout}");
    assert!(stdout.contains("peak messages/min    250,000"), "{stdout}");
    assert!(stdout.contains("system model in effect"));
}

#[test]
fn check_names_the_quotas_the_peak_outgrows() {
    // cost-10m: the seed's 10 M conversations a day on the default quotas, which the
    // simulator throttles at Bedrock.
    let out = surge(&["check", "profiles/cost-10m.toml"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let sonnet = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("sonnet ") && l.contains("TPM,"))
        .expect("a pre-flight row for sonnet");
    assert!(
        sonnet.contains("13,889"),
        "peak requests per minute: {sonnet}"
    );
    let warning = stdout
        .lines()
        .find(|l| l.contains("warning: the peak needs more"))
        .expect("a warning");
    for key in [
        "bedrock.models.sonnet.tokens_per_minute",
        "bedrock.models.sonnet.requests_per_minute",
    ] {
        assert!(warning.contains(key), "{warning}");
    }
    let out = surge(&["check", "profiles/one-piece-spike.toml"]);
    let (stdout, _) = text(&out);
    assert!(stdout.contains("every quota holds the peak"), "{stdout}");
}

#[test]
fn check_json_is_the_resolved_profile() {
    let out = surge(&["check", "--json", "profiles/local.toml"]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["name"], "local");
    assert_eq!(json["system"]["bedrock"]["streaming"], true);
}

#[test]
fn every_shipped_profile_checks() {
    for entry in std::fs::read_dir(repo().join("profiles")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = surge(&["check", path.to_str().unwrap()]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}: {}",
                path.display(),
                text(&out).1
            );
        }
    }
}

#[test]
fn invalid_profile_exits_2_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    let good = std::fs::read_to_string(repo().join("profiles/baseline.toml")).unwrap();
    let system = repo()
        .join("profiles/system/mangaassist.toml")
        .canonicalize()
        .unwrap();
    let broken = good
        .replace(
            "file = \"system/mangaassist.toml\"",
            &format!("file = \"{}\"", system.display()),
        )
        .replace("sessions = 500", "sessions = \"25k\"");
    std::fs::write(&bad, broken).unwrap();
    let out = surge(&["check", bad.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "bad.toml:34:1: traffic.stages[0].sessions: expected a whole number, found \"25k\""
        ),
        "{stderr}"
    );
}

#[test]
fn missing_profile_and_bad_usage_exit_2() {
    let out = surge(&["check", "profiles/does-not-exist.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("does-not-exist.toml"));
    assert_eq!(surge(&["check"]).status.code(), Some(2));
    assert_eq!(surge(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn help_explains_commands_and_exit_codes() {
    let out = surge(&["--help"]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout.contains("Exit codes"), "{stdout}");
    assert!(stdout.contains("check"), "{stdout}");
    let out = surge(&["help", "check"]);
    let (stdout, _) = text(&out);
    assert!(stdout.contains("Example: surge check"), "{stdout}");
    assert!(stdout.contains("--json"), "{stdout}");
}

/// A copy of `profiles/local.toml` in `dir` with its system file made absolute and one
/// text replacement applied.
fn local_variant(dir: &Path, from: &str, to: &str) -> PathBuf {
    let system = repo()
        .join("profiles/system/mangaassist.toml")
        .canonicalize()
        .unwrap();
    let text = std::fs::read_to_string(repo().join("profiles/local.toml"))
        .unwrap()
        .replace(
            "file = \"system/mangaassist.toml\"",
            &format!("file = \"{}\"", system.display()),
        )
        .replace(from, to);
    let path = dir.join("local.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn json_file(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The run-directory files a real run writes validate against the versioned schemas.
fn assert_valid(schema: &str, doc: &serde_json::Value) {
    let schema = json_file(&repo().join("crates/record/schema").join(schema));
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn simulate_writes_a_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let out_s = out.to_str().unwrap();
    let res = surge(&["simulate", "profiles/local.toml", "--out", out_s]);
    let (stdout, stderr) = text(&res);
    assert_eq!(res.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("latency (ms)"), "{stdout}");
    let runs: Vec<_> = std::fs::read_dir(out.join("local")).unwrap().collect();
    assert_eq!(runs.len(), 1);
    let run = runs.into_iter().next().unwrap().unwrap().path();
    for file in ["run.json", "summary.json", "timeline.csv", "shard-000.hlog"] {
        assert!(
            run.join(file).is_file(),
            "{file} missing in {}",
            run.display()
        );
    }
    let run_json = json_file(&run.join("run.json"));
    assert_valid("run.v1.schema.json", &run_json);
    assert_valid(
        "summary.v1.schema.json",
        &json_file(&run.join("summary.json")),
    );
    assert_eq!(run_json["kind"], "simulated");
    assert_eq!(run_json["status"], "complete");
    assert!(stdout.contains(&run.display().to_string()), "{stdout}");
}

#[test]
fn simulate_exits_1_when_a_threshold_fails() {
    let dir = tempfile::tempdir().unwrap();
    let profile = local_variant(
        dir.path(),
        "\"e2e.p99\" = \"< 5s\"",
        "\"e2e.p99\" = \"< 1ms\"",
    );
    let res = surge(&["simulate", profile.to_str().unwrap(), "--no-write"]);
    let (_, stderr) = text(&res);
    assert_eq!(res.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("threshold failed: "), "{stderr}");
    assert!(stderr.contains("e2e"), "{stderr}");
}

#[test]
fn simulate_rejects_zero_replications() {
    let res = surge(&[
        "simulate",
        "profiles/local.toml",
        "--replications",
        "0",
        "--no-write",
    ]);
    assert_eq!(res.status.code(), Some(2));
}

#[test]
fn cost_prints_the_q35_table_and_corrections() {
    let out = surge(&["cost", "profiles/cost-100k.toml"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let llm = stdout
        .lines()
        .find(|l| l.starts_with("LLM sonnet"))
        .unwrap();
    assert!(
        llm.contains("$1,800.00") && llm.contains("$54,000.00"),
        "{llm}"
    );
    assert!(
        stdout.contains("+ model tiering             $810.00"),
        "{stdout}"
    );
    assert!(stdout.contains("$0.0185 per conversation"), "{stdout}");
    assert!(
        stdout.contains("where the seed's arithmetic differs"),
        "{stdout}"
    );
    let json = surge(&["cost", "--json", "profiles/cost-10m.toml"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let llm_month = v["unoptimized"]["llm_per_day"].as_f64().unwrap() * 30.0;
    assert!((llm_month - 5.4e6).abs() < 1.0, "{llm_month}");
}

#[test]
fn cost_needs_a_cost_table() {
    let out = surge(&["cost", "profiles/local.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("no [cost] table"));
}

#[test]
fn plan_reports_the_cheapest_setting_or_exits_1() {
    let out = surge(&[
        "plan",
        "profiles/local.toml",
        "--slo",
        "ttft.p99<=3s,errors.rate<=1%",
        "--vary",
        "orchestrator.min_tasks=1..10",
        "--replications",
        "1",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("cheapest setting that meets every SLO: orchestrator.min_tasks="),
        "{stdout}"
    );
    // The top of the range passes whenever the answer does: judged, not simulated.
    assert!(
        stdout.contains("orchestrator.min_tasks=10  ✓ meets, implied by orchestrator.min_tasks="),
        "{stdout}"
    );
    // An SLO nothing can meet: exit 1, not an error.
    let out = surge(&[
        "plan",
        "profiles/local.toml",
        "--slo",
        "e2e.p50<=1ms",
        "--vary",
        "orchestrator.min_tasks=1..2",
        "--replications",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    assert!(text(&out).0.contains("no setting explored meets every SLO"));
}

#[test]
fn plan_rejects_unknown_knobs_and_metrics() {
    let out = surge(&[
        "plan",
        "profiles/local.toml",
        "--slo",
        "ttft.p99<=1s",
        "--vary",
        "orchestrator.tasks=1..5",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("no such key"), "{}", text(&out).1);
    let out = surge(&[
        "plan",
        "profiles/local.toml",
        "--slo",
        "latency.p99<=1s",
        "--vary",
        "orchestrator.min_tasks=1..5",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("unknown metric"), "{}", text(&out).1);
}

#[test]
fn bench_runs_mock_load_report_and_prediction() {
    let dir = tempfile::tempdir().unwrap();
    let system = repo()
        .join("profiles/system/mangaassist.toml")
        .canonicalize()
        .unwrap();
    let profile = dir.path().join("tiny.toml");
    std::fs::write(
        &profile,
        format!(
            r#"description = "tiny bench"
seed = 3
duration = "6s"

[system]
file = "{}"
bedrock.streaming = true

[traffic]
arrival = "poisson"
conversation_turns = 5
reply_timeout = "10s"
connect_rate = "500/s"

[traffic.stores]
manga_jp = "100%"

[traffic.intents]
product_info = "60%"
chitchat = "40%"

[[traffic.stages]]
name = "steady"
duration = "6s"
ramp = "1s"
sessions = 10
message_rate = "120/min"

[thresholds]
"errors.rate" = "< 5%"
"#,
            system.display()
        ),
    )
    .unwrap();
    let out = dir.path().join("results");
    let res = surge(&[
        "bench",
        profile.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&res);
    assert_eq!(res.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("predicted (simulated) against measured (mock)"),
        "{stdout}"
    );
    let runs: Vec<PathBuf> = std::fs::read_dir(out.join("tiny"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 2, "a measured and a simulated run: {runs:?}");
    let kinds: Vec<String> = runs
        .iter()
        .map(|r| {
            json_file(&r.join("run.json"))["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(kinds.contains(&"measured".to_string()) && kinds.contains(&"simulated".to_string()));
    let measured = runs
        .iter()
        .find(|r| json_file(&r.join("run.json"))["kind"] == "measured")
        .unwrap();
    assert!(measured.join("report.html").is_file());
    let summary = json_file(&measured.join("summary.json"));
    assert!(
        summary["counts"]["completed"].as_u64().unwrap() > 0,
        "{summary}"
    );
}

/// `surge sweep` of profiles/local.toml against a host that is not loopback, writing
/// under `out_dir`, with `extra` flags.
fn sweep_remote(out_dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "sweep",
        "profiles/local.toml",
        "--target",
        "ws://staging.example.invalid/chat",
        "--rates",
        "600..1200:600",
        "--out",
        out_dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    surge(&args)
}

/// The Bedrock dollars `surge sweep` estimates for a hold of `hold` (exit 2: unconfirmed).
fn sweep_estimate(out_dir: &Path, hold: &str) -> f64 {
    let out = sweep_remote(out_dir, &["--hold", hold, "--max-rate", "1200"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stderr.contains("--yes"), "{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("estimated Bedrock spend"))
        .unwrap_or_else(|| panic!("no estimate: {stdout}"));
    let dollars = line.split('$').nth(1).unwrap().split(' ').next().unwrap();
    dollars.replace(',', "").parse().unwrap()
}

#[test]
fn sweep_of_a_remote_target_needs_a_ceiling_and_a_yes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let refused = sweep_remote(&out, &[]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        text(&refused).1.contains("--max-rate"),
        "{:?}",
        text(&refused)
    );

    // Without a terminal the estimate is printed and nothing starts; it is every step's
    // messages priced, so twice the hold is twice the money.
    let one = sweep_estimate(&out, "60s");
    let two = sweep_estimate(&out, "120s");
    assert!(one > 0.0, "{one}");
    assert!((two / one - 2.0).abs() < 0.01, "{one} then {two}");
    assert!(!out.exists(), "an unconfirmed sweep writes nothing");
}

#[test]
fn sweep_refuses_past_its_ceiling_and_without_thresholds() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let sweep = |profile: &str, extra: &[&str]| {
        let mut args = vec![
            "sweep",
            profile,
            "--target",
            "ws://127.0.0.1:9/chat",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = surge(&args);
        assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
        text(&o).1
    };
    let e = sweep(
        "profiles/local.toml",
        &["--rates", "600..3000:600", "--max-rate", "2000"],
    );
    assert!(e.contains("--max-rate"), "{e}");
    let e = sweep(
        "profiles/local.toml",
        &["--rates", "600..3000:600", "--max-duration", "4m"],
    );
    assert!(e.contains("--max-duration"), "{e}");
    let e = sweep("profiles/local.toml", &["--rates", "3000..600"]);
    assert!(e.contains("HI is below LO"), "{e}");
    let bare = local_variant(dir.path(), "[thresholds]", "[thresholds_removed]");
    let text = std::fs::read_to_string(&bare).unwrap();
    let cut = text.find("[thresholds_removed]").unwrap();
    std::fs::write(&bare, &text[..cut]).unwrap();
    let e = sweep(bare.to_str().unwrap(), &["--rates", "600..1200"]);
    assert!(e.contains("no [thresholds]"), "{e}");
    assert!(!out.exists(), "a refused sweep writes nothing");
}
