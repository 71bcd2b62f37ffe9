//! `surge run` end to end: the real binary, worker processes, Ctrl-C (of a run and of a
//! sweep), exit codes.
//!
//! A scripted chat server (surge_loadgen::testkit) runs in the test on loopback; profiles
//! last a few seconds. Every wait is bounded.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use surge_loadgen::testkit::{Script, TestServer};
use tokio::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn profile(dir: &Path, sessions: u64, rate: &str, duration: &str, extra: &str) -> PathBuf {
    let system = repo()
        .join("profiles/system/mangaassist.toml")
        .canonicalize()
        .unwrap();
    let text = format!(
        r#"description = "surge run test"
seed = 3
[system]
file = "{}"
[traffic]
arrival = "constant"
conversation_turns = 5
reply_timeout = "2s"
connect_rate = "500/s"
[traffic.stores]
manga_jp = "50%"
kindle = "50%"
[traffic.intents]
chitchat = "100%"
[[traffic.stages]]
name = "hold"
duration = "{duration}"
sessions = {sessions}
message_rate = "{rate}"
{extra}
"#,
        system.display()
    );
    let path = dir.join("run-test.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn surge() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_surge"));
    c.stdin(Stdio::null()).kill_on_drop(true);
    c
}

async fn finish(cmd: &mut Command) -> Output {
    tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("surge run ends on its own")
        .expect("surge runs")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The one run directory under OUT/<profile>/.
fn run_dir(out: &Path) -> PathBuf {
    let parent = out.join("run-test");
    let mut dirs: Vec<_> = std::fs::read_dir(&parent)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.pop().unwrap()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_are_two_processes_merged_into_one_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(Script {
        greeting: Some(r#"{"type":"greeting"}"#.into()),
        ..Script::default()
    })
    .await
    .unwrap();
    let p = profile(dir.path(), 6, "30/s", "3s", "");
    let out = dir.path().join("out");
    let o = finish(
        surge()
            .args(["run", p.to_str().unwrap(), "--shards", "2", "--target"])
            .arg(server.url())
            .arg("--out")
            .arg(&out),
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let rd = run_dir(&out);
    for f in [
        "shard-000.hlog",
        "shard-001.hlog",
        "timeline.csv",
        "summary.json",
    ] {
        assert!(rd.join(f).is_file(), "{f} in {}", rd.display());
    }
    let summary = json(&rd.join("summary.json"));
    let sent = summary["counts"]["sent"].as_u64().unwrap();
    assert_eq!(sent, server.messages(), "{}", text(&o));
    assert_eq!(summary["counts"]["completed"].as_u64(), Some(sent));
    assert_eq!(summary["counts"]["sessions"].as_u64(), Some(6));
    // One greeting per connection, from both shards: counted, not errors.
    assert_eq!(summary["counts"]["unsolicited"].as_u64(), Some(6));
    assert_eq!(summary["connections"]["opened"].as_u64(), Some(6));
    assert_eq!(summary["connections"]["reconnects"].as_u64(), Some(0));
    assert!((75..=95).contains(&sent), "{}", text(&o));
    assert_eq!(summary["latency_ms"]["e2e"]["count"].as_u64(), Some(sent));
    assert!(summary["latency_ms"]["ttft:kindle"]["count"].as_u64() > Some(0));
    let run = json(&rd.join("run.json"));
    assert_eq!(run["status"], "complete");
    assert_eq!(run["shards"], 2);
    // The combined timeline adds both shards' messages.
    let tl = std::fs::read_to_string(rd.join("timeline.csv")).unwrap();
    let total: u64 = tl
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, sent, "{tl}");
}

async fn wait_for_first_interval(out: &Path) {
    for _ in 0..200 {
        let parent = out.join("run-test");
        if let Some(Ok(e)) = std::fs::read_dir(&parent).ok().and_then(|mut d| d.next()) {
            let tl = std::fs::read_to_string(e.path().join("timeline.csv")).unwrap_or_default();
            if tl.lines().count() >= 3 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no interval was written within 20 s");
}

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_leaves_a_readable_interrupted_run_directory() {
    for shards in ["1", "2"] {
        let dir = tempfile::tempdir().unwrap();
        let server = TestServer::start(Script::default()).await.unwrap();
        let p = profile(dir.path(), 4, "20/s", "60s", "");
        let out = dir.path().join("out");
        let child = surge()
            .args(["run", p.to_str().unwrap(), "--shards", shards, "--target"])
            .arg(server.url())
            .arg("--out")
            .arg(&out)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_first_interval(&out).await;
        signal(child.id().unwrap(), "-INT");
        let o = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .expect("surge stops soon after Ctrl-C")
            .unwrap();
        assert_eq!(o.status.code(), Some(130), "shards {shards}: {}", text(&o));
        let rd = run_dir(&out);
        assert_eq!(json(&rd.join("run.json"))["status"], "interrupted");
        let summary = json(&rd.join("summary.json"));
        let sent = summary["counts"]["sent"].as_u64().unwrap();
        assert!(sent > 0, "{}", text(&o));
        assert_eq!(sent, server.messages(), "shards {shards}: {}", text(&o));
        assert!(summary["duration_s"].as_f64().unwrap() < 50.0);
    }
}

/// Worker processes of `pid`, from /proc.
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_that_dies_is_reported_and_the_rest_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(Script::default()).await.unwrap();
    let p = profile(dir.path(), 4, "20/s", "6s", "");
    let out = dir.path().join("out");
    let child = surge()
        .args(["run", p.to_str().unwrap(), "--shards", "2", "--target"])
        .arg(server.url())
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_first_interval(&out).await;
    let workers = children(child.id().unwrap());
    assert_eq!(workers.len(), 2, "{workers:?}");
    signal(workers[1], "-KILL");
    let o = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("surge ends")
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("ended without finishing"), "{}", text(&o));
    let rd = run_dir(&out);
    assert_eq!(json(&rd.join("run.json"))["status"], "failed");
    let summary = json(&rd.join("summary.json"));
    // The surviving shard ran to the end: its messages and the dead one's first seconds.
    assert!(
        summary["counts"]["sent"].as_u64().unwrap() >= 60,
        "{}",
        text(&o)
    );
    assert!(summary["extra"]["generator"]["shards_failed"][0].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_what_it_must_not_do() {
    let dir = tempfile::tempdir().unwrap();
    let p = profile(dir.path(), 2, "2/s", "2s", "");
    let run = |args: &[&str]| {
        let mut c = surge();
        c.args(["run", p.to_str().unwrap()]).args(args);
        c
    };
    // A host that the profile does not allow.
    let o = finish(&mut run(&["--target", "ws://chat.example.com/ws"])).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("target.allowed"), "{}", text(&o));
    // A token variable that is not set.
    let o = finish(&mut run(&[
        "--target",
        "ws://127.0.0.1:9/ws",
        "--token-env",
        "SURGE_TEST_TOKEN_THAT_IS_NOT_SET",
    ]))
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // More sessions than one process may hold: the message names --shards.
    let big = profile(dir.path(), 25_000, "1000/s", "2s", "");
    let o = finish(
        surge()
            .args([
                "run",
                big.to_str().unwrap(),
                "--target",
                "ws://127.0.0.1:9/ws",
            ])
            .arg("--out")
            .arg(dir.path()),
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--shards 2"), "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_threshold_exits_1_and_the_token_is_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(Script::default()).await.unwrap();
    let p = profile(
        dir.path(),
        2,
        "10/s",
        "2s",
        "[thresholds]\n\"ttft.p99\" = \"< 1ms\"\n\"errors.rate\" = \"< 1%\"\n",
    );
    let out = dir.path().join("out");
    let target = format!("ws://user:hunter2@{}/chat?key=hunter2", server.addr);
    let o = finish(
        surge()
            .args([
                "run",
                p.to_str().unwrap(),
                "--token-env",
                "SURGE_TEST_TOKEN",
            ])
            .args(["--target", &target, "--header", "X-Run:test"])
            .env("SURGE_TEST_TOKEN", "hunter2")
            .arg("--out")
            .arg(&out),
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("FAILED ttft.p99"), "{}", text(&o));
    let rd = run_dir(&out);
    for entry in std::fs::read_dir(&rd).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let content = std::fs::read_to_string(&path).unwrap();
            assert!(!content.contains("hunter2"), "secret in {}", path.display());
        }
    }
    assert!(!text(&o).contains("hunter2"), "{}", text(&o));
}

/// A multi-machine run in miniature: two `--shard I/2` processes with one start time, as the
/// Kubernetes Indexed Job runs them, then the merge step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_of_a_multi_machine_run_merge_into_one_directory() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(Script {
        greeting: Some(r#"{"type":"greeting"}"#.into()),
        drop_after_answer_every: Some(7),
        ..Script::default()
    })
    .await
    .unwrap();
    let p = profile(
        dir.path(),
        4,
        "20/s",
        "3s",
        "[thresholds]\n\"e2e.p99\" = \"< 10s\"\n",
    );
    let shared = dir.path().join("shared");
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        + 1.5;
    let shard = |i: &str| {
        let mut c = surge();
        c.args(["run", p.to_str().unwrap(), "--shard", i, "--start-at"])
            .arg(format!("{start:.3}"))
            .arg("--target")
            .arg(server.url())
            .arg("--out")
            .arg(&shared);
        c
    };
    let (mut first, mut second) = (shard("0/2"), shard("1/2"));
    let (a, b) = tokio::join!(finish(&mut first), finish(&mut second));
    assert_eq!(a.status.code(), Some(0), "{}", text(&a));
    assert_eq!(b.status.code(), Some(0), "{}", text(&b));
    let merged = dir.path().join("merged");
    let o = finish(
        surge()
            .args(["run", "--merge"])
            .arg(shared.join("shard-000"))
            .arg(shared.join("shard-001"))
            .arg("--out")
            .arg(&merged),
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let rd = run_dir(&merged);
    assert!(rd.join("shard-000.hlog").is_file() && rd.join("shard-001.hlog").is_file());
    let summary = json(&rd.join("summary.json"));
    let sent = summary["counts"]["sent"].as_u64().unwrap();
    assert_eq!(sent, server.messages(), "{}", text(&o));
    assert_eq!(summary["latency_ms"]["e2e"]["count"].as_u64(), Some(sent));
    assert_eq!(summary["thresholds"][0]["passed"], true);
    assert_eq!(json(&rd.join("run.json"))["status"], "complete");
    // Connections, closes by code and unsolicited frames add up over the shards.
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    let conn = &summary["connections"];
    assert_eq!(n(&conn["opened"]), server.connections(), "{summary:#}");
    assert_eq!(
        n(&conn["opened"]),
        4 + n(&conn["reconnects"]),
        "{summary:#}"
    );
    let drops = n(&conn["closed_by_server"]["1006"]);
    assert!(drops > 0, "{summary:#}");
    assert_eq!(
        drops,
        n(&summary["errors"]["dropped"]) + n(&summary["errors"]["closed_mid_answer"]),
        "{summary:#}"
    );
    let unsolicited = n(&summary["counts"]["unsolicited"]);
    assert!(
        unsolicited >= 4 && unsolicited <= n(&conn["opened"]),
        "{summary:#}"
    );
    let tl = std::fs::read_to_string(rd.join("timeline.csv")).unwrap();
    let total: u64 = tl
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, sent, "{tl}");

    // One shard of two is half a rehearsal: degraded, the missing shard named, never a pass.
    let partial = dir.path().join("partial");
    let o = finish(
        surge()
            .args(["run", "--merge"])
            .arg(shared.join("shard-001"))
            .arg("--out")
            .arg(&partial),
    )
    .await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("left out of a merge"), "{}", text(&o));
    let rd = run_dir(&partial);
    assert_eq!(json(&rd.join("run.json"))["status"], "degraded");
    assert_eq!(json(&rd.join("run.json"))["shards"], 2);
    let lost = &json(&rd.join("summary.json"))["lost_shards"];
    assert_eq!(lost[0]["shard"], 0, "{lost:#}");
    assert_eq!(lost[0]["offered_share_lost"], 0.5, "{lost:#}");
    assert!(
        lost[0]["why"].as_str().unwrap().contains("--merge"),
        "{lost:#}"
    );
}

/// The directory of step `step` of the one sweep under OUT/run-test/, once it exists.
fn sweep_step(out: &Path, step: &str) -> Option<PathBuf> {
    let sweep = std::fs::read_dir(out.join("run-test"))
        .ok()?
        .next()?
        .ok()?
        .path();
    std::fs::read_dir(&sweep)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(step))
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_a_sweep_in_its_step_and_keeps_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(Script::default()).await.unwrap();
    let p = profile(
        dir.path(),
        4,
        "20/s",
        "60s",
        "[thresholds]\n\"errors.rate\" = \"< 50%\"\n",
    );
    let out = dir.path().join("out");
    let child = surge()
        .args(["sweep", p.to_str().unwrap(), "--rates", "60..120:60"])
        .args([
            "--hold",
            "6s",
            "--sessions",
            "4",
            "--no-progress",
            "--target",
        ])
        .arg(server.url())
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Into the second step: its second interval written.
    let mut second = None;
    for _ in 0..300 {
        if let Some(step) = sweep_step(&out, "step-02") {
            let tl = std::fs::read_to_string(step.join("timeline.csv")).unwrap_or_default();
            if tl.lines().count() >= 3 {
                second = Some(step);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let second = second.expect("the second step wrote two intervals within 30 s");
    signal(child.id().unwrap(), "-INT");
    let o = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("surge sweep stops soon after Ctrl-C")
        .unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    assert_eq!(json(&second.join("run.json"))["status"], "interrupted");
    let sweep = json(&second.parent().unwrap().join("sweep.json"));
    let steps = sweep["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "{sweep:#}");
    assert_eq!(steps[0]["verdict"], "passed");
    assert_eq!(steps[1]["verdict"], "interrupted");
    assert_eq!(sweep["ending"], "interrupted");
    assert_eq!(sweep["max_sustainable_rate_per_min"], 60.0);
    // Nothing the server answered is missing from the steps' summaries.
    let sent: u64 = steps
        .iter()
        .map(|s| {
            let run = second.parent().unwrap().join(s["dir"].as_str().unwrap());
            json(&run.join("summary.json"))["counts"]["sent"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(sent, server.messages(), "{}", text(&o));
}
