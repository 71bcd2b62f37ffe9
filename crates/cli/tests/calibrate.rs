//! `surge calibrate` on runs whose answers are known: simulated runs of a system with
//! hidden numbers, relabelled as measured and given the shipped system model (so the
//! calibrator cannot read the answer off the run), plus its refusals of bad input.
//! The validations against software whose numbers surge did not choose are
//! `calibrate_mock.rs` and `calibrate_python.rs`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::calibration::{Numbers, SHIPPED, SURGE, only_run, profile, surge};

fn calibrate(args: &[&str]) -> Output {
    Command::new(SURGE)
        .arg("calibrate")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The hidden system: what differs from [`SHIPPED`] is what the tests fit (a key left out
/// of `--fit` but hidden too would be absorbed by the keys fitted, as it should be, and
/// the numbers would not come back).
const HIDDEN: Numbers = Numbers {
    tasks: 3,
    cpu_ms: 30.0,
    classifier_ms: 20.0,
    memory_ms: 10.0,
    sonnet_ttft_ms: 420.0,
    haiku_ttft_ms: 100.0,
    sonnet_rate: 180.0,
    haiku_rate: 1000.0,
};

/// `surge simulate PROFILE --out OUT`, which must succeed; the run directory it wrote.
fn simulate(profile: &Path, out: &Path) -> PathBuf {
    surge(
        &[
            "simulate",
            profile.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        Duration::from_secs(120),
    );
    only_run(out)
}

/// A simulated run of `numbers` at `rate` messages/s, relabelled as measured and carrying
/// the shipped system model in its run.json, as a generator told the shipped profile would.
fn fake_measured(work: &Path, name: &str, numbers: &Numbers, rate: f64) -> PathBuf {
    let p = work.join(format!("{name}.toml"));
    profile(&p, numbers, None, (rate / 0.2) as u32, rate, "30s");
    let shipped = work.join(format!("{name}-shipped.toml"));
    profile(&shipped, &SHIPPED, None, (rate / 0.2) as u32, rate, "30s");
    let run = simulate(&p, &work.join(format!("sim-{name}")));
    let read = |p: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    };
    let mut info = read(&run.join("run.json"));
    info["kind"] = "measured".into();
    let shipped_system = shipped_system_json(work, &shipped);
    info["resolved_profile"]["system"] = shipped_system;
    std::fs::write(
        run.join("run.json"),
        serde_json::to_vec_pretty(&info).unwrap(),
    )
    .unwrap();
    run
}

/// The resolved system model of a profile, as run.json stores it.
fn shipped_system_json(work: &Path, profile: &Path) -> serde_json::Value {
    let out = work.join("resolve-shipped");
    let _ = std::fs::remove_dir_all(&out);
    let short = work.join("short.toml");
    let text = std::fs::read_to_string(profile)
        .unwrap()
        .replace("duration = \"30s\"", "duration = \"5s\"");
    std::fs::write(&short, text).unwrap();
    let run = simulate(&short, &out);
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("run.json")).unwrap()).unwrap();
    info["resolved_profile"]["system"].clone()
}

#[test]
fn bad_input_exits_2_with_what_to_do() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let shipped = work.join("shipped.toml");
    profile(&shipped, &SHIPPED, None, 50, 10.0, "5s");
    let measured = fake_measured(work, "low", &HIDDEN, 20.0);
    let p = shipped.to_str().unwrap();

    // A simulated run.
    let simulated = work.join("simulated");
    let simulated = simulate(&shipped, &simulated);
    let o = calibrate(&[simulated.to_str().unwrap(), "--profile", p]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("simulated run") && text(&o).contains("surge run"),
        "{}",
        text(&o)
    );

    // A directory that is not a run directory, and one that does not exist.
    let o = calibrate(&[work.to_str().unwrap(), "--profile", p]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("not a run directory"), "{}", text(&o));
    let o = calibrate(&[work.join("nowhere").to_str().unwrap(), "--profile", p]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    // Keys that are not there, or cannot be fitted.
    let run = measured.to_str().unwrap();
    let o = calibrate(&[run, "--profile", p, "--fit", "bedrock.models.sonnet.speed"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no such key"), "{}", text(&o));
    let o = calibrate(&[run, "--profile", p, "--fit", "bedrock.streaming"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("a switch"), "{}", text(&o));
    let o = calibrate(&[run, "--profile", p, "--fit", "orchestrator"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("a whole section"), "{}", text(&o));

    // No profile, a bad replication count, nothing identifiable.
    let o = calibrate(&[run, "--profile", work.join("none.toml").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = calibrate(&[run, "--profile", p, "--replications", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = calibrate(&[
        run,
        "--profile",
        p,
        "--fit",
        "bedrock.models.sonnet.tokens_per_minute",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("identify none"), "{}", text(&o));
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", text(o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn unidentified(report: &serde_json::Value, key: &str) -> String {
    report["unidentified"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["key"] == key)
        .unwrap_or_else(|| panic!("{key} is not said to be unidentified: {report:#}"))["reason"]
        .as_str()
        .unwrap()
        .to_string()
}

fn key<'a>(report: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == key)
        .unwrap_or_else(|| panic!("{key} is not fitted: {report:#}"))
}

#[test]
fn what_the_runs_cannot_identify_is_said_plainly() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let shipped = work.join("shipped.toml");
    profile(&shipped, &SHIPPED, None, 50, 10.0, "5s");
    let low = fake_measured(work, "low", &HIDDEN, 20.0);
    let o = calibrate(&[
        low.to_str().unwrap(),
        "--profile",
        shipped.to_str().unwrap(),
        "--replications",
        "3",
        "--fit",
        "orchestrator.initial_tasks,bedrock.models.sonnet.tokens_per_minute,\
         classifier.latency,gateway.auth,bedrock.models.sonnet.ttft",
        "--json",
    ]);
    let report = json(&o);
    assert!(
        unidentified(&report, "orchestrator.initial_tasks").contains("two load levels"),
        "{report:#}"
    );
    assert!(
        unidentified(&report, "bedrock.models.sonnet.tokens_per_minute").contains("throttled"),
        "{report:#}"
    );
    let classifier = key(&report, "classifier.latency");
    assert_eq!(classifier["how"]["kind"], "fitted_with", "{classifier}");
    assert_eq!(classifier["how"]["keys"][0], "gateway.auth");
    key(&report, "bedrock.models.sonnet.ttft");
}

#[test]
fn the_same_seed_gives_the_same_fit_and_the_fit_recovers_what_was_hidden() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let shipped = work.join("shipped.toml");
    profile(&shipped, &SHIPPED, None, 50, 10.0, "5s");
    let low = fake_measured(work, "low", &HIDDEN, 30.0);
    let high = fake_measured(work, "high", &HIDDEN, 80.0);
    let fit = |out: &Path| {
        calibrate(&[
            low.to_str().unwrap(),
            high.to_str().unwrap(),
            "--profile",
            shipped.to_str().unwrap(),
            "--replications",
            "3",
            "--fit",
            "orchestrator.cpu_per_message,orchestrator.initial_tasks,bedrock.models.sonnet.ttft,\
             bedrock.models.sonnet.output_rate",
            "--out",
            out.to_str().unwrap(),
            "--json",
        ])
    };
    let (a, b) = (work.join("a.toml"), work.join("b.toml"));
    let report = json(&fit(&a));
    json(&fit(&b));
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let toml = std::fs::read_to_string(&a).unwrap();
    assert!(toml.contains("# fitted"), "{toml}");

    // Consistency, not truth (the runs came from the same simulator): the hidden numbers
    // come back. The pool's capacity does; its split into workers and service time only
    // to within a worker (3 × 30 ms and 4 × 40 ms queue almost alike at these loads).
    let tasks: f64 = key(&report, "orchestrator.initial_tasks")["fitted"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((tasks - f64::from(HIDDEN.tasks)).abs() <= 1.0, "{report:#}");
    let ms = |v: &serde_json::Value, prefix: &str, suffix: &str| -> f64 {
        v.as_str()
            .unwrap()
            .strip_prefix(prefix)
            .unwrap()
            .strip_suffix(suffix)
            .unwrap()
            .parse()
            .unwrap()
    };
    let ttft = ms(
        &key(&report, "bedrock.models.sonnet.ttft")["fitted"],
        "",
        "ms",
    );
    assert!((ttft / HIDDEN.sonnet_ttft_ms - 1.0).abs() < 0.1, "{ttft}");
    let cpu = ms(
        &key(&report, "orchestrator.cpu_per_message")["fitted"],
        "exp(mean=",
        "ms)",
    );
    let capacity = tasks / cpu;
    let hidden_capacity = f64::from(HIDDEN.tasks) / HIDDEN.cpu_ms;
    assert!(
        (capacity / hidden_capacity - 1.0).abs() < 0.05,
        "{tasks} tasks of {cpu} ms against {} of {}",
        HIDDEN.tasks,
        HIDDEN.cpu_ms
    );

    // The fitted model is a system model a profile accepts as it is.
    let uses = work.join("uses-fitted.toml");
    profile(&uses, &SHIPPED, Some(&a), 50, 10.0, "5s");
    let o = Command::new(SURGE)
        .args(["simulate", uses.to_str().unwrap(), "--no-write"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}
