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
