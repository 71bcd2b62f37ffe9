//! Many machines, one run, on loopback: `surge run --shard I/N --rendezvous HOST:PORT`
//! processes started seconds apart against `surge mock`.
//!
//! Each shard gets an `--out` of its own, as separate machines would. The answers checked
//! here come from the profile written in the test (sessions, rate, duration) and from the
//! shards' own directories, never from the coordinator's arithmetic. Every wait is bounded.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use support::calibration::{Mock, SURGE, Steady};

/// Sessions of every test profile: shard i of 3 owns the 4 whose index is i mod 3.
const SESSIONS: u32 = 12;

/// A profile: 12 sessions, constant 12 messages/s for `secs` s, plus `thresholds`.
fn profile(dir: &Path, name: &str, secs: u32, thresholds: &str) -> PathBuf {
    let thresholds = format!("\"e2e.p99\" = \"< 30s\"\n{thresholds}");
    Steady {
        name,
        seed: 9,
        duration: &format!("{secs}s"),
        sessions: SESSIONS,
        rate: "12/s",
        thresholds: &thresholds,
    }
    .write(dir)
}

/// Every shard of these runs holds the same rendezvous key, as run.sh's pods do: every
/// run below also proves the key both ways before its shards join.
const RUN_KEY: &str = "rendezvous key of the tests, 0123456789";

/// A free loopback port for the coordinator.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One `surge run` shard process, its output in files (no pipe to fill up).
struct Shard {
    child: Child,
    out: PathBuf,
    log: PathBuf,
}

impl Shard {
    fn start(
        profile: &Path,
        target: &str,
        shard: &str,
        port: u16,
        work: &Path,
        extra: &[&str],
    ) -> Shard {
        let name = shard.replace('/', "of");
        let out = work.join(format!("out-{name}"));
        let log = work.join(format!("{name}.log"));
        let child = Command::new(SURGE)
            .args(["run", profile.to_str().unwrap(), "--no-progress"])
            .args(["--target", target, "--shard", shard])
            .args(["--rendezvous", &format!("127.0.0.1:{port}")])
            .args(if extra.contains(&"--join-timeout") {
                &[][..]
            } else {
                &["--join-timeout", "60s"][..]
            })
            .arg("--out")
            .arg(&out)
            .args(extra)
            .env("SURGE_RENDEZVOUS_KEY", RUN_KEY)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(work.join(format!("{name}.stdout"))).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Shard { child, out, log }
    }

    /// Waits for the process (bounded); its exit code (`None`: ended by a signal).
    fn wait(&mut self, limit: Duration) -> Option<i32> {
        let began = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if began.elapsed() > limit {
                let _ = self.child.kill();
                panic!(
                    "{} did not end within {limit:?}:\n{}",
                    self.out.display(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// This shard's own run directory.
    fn own_dir(&self, index: u32) -> PathBuf {
        self.out.join(format!("shard-{index:03}"))
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: a signal to a child this test spawned and has not reaped.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, sig);
        }
    }
}

impl Drop for Shard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The coordinator's merged run directory: the one OUT/<profile>/<time>/.
fn merged_dir(out: &Path, profile: &str) -> PathBuf {
    let runs: Vec<PathBuf> = std::fs::read_dir(out.join(profile))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0].clone()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn started_at(dir: &Path) -> SystemTime {
    let info = json(&dir.join("run.json"));
    surge_record::UtcTime::parse_rfc3339(info["started_at"].as_str().unwrap())
        .unwrap()
        .to_system_time()
}

/// Timeline rows as (t_s, sent) of a run directory.
fn sent_by_row(dir: &Path) -> Vec<(f64, u64)> {
    let text = std::fs::read_to_string(dir.join("timeline.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let sent = header.iter().position(|c| *c == "sent").unwrap();
    lines
        .map(|l| {
            let v: Vec<&str> = l.split(',').collect();
            (v[0].parse().unwrap(), v[sent].parse().unwrap())
        })
        .collect()
}

/// Waits (bounded) until `dir`'s timeline has at least `rows` rows.
fn wait_for_rows(dir: &Path, rows: usize) {
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(60) {
        if std::fs::read_to_string(dir.join("timeline.csv")).is_ok_and(|t| t.lines().count() > rows)
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{} never reached {rows} timeline rows", dir.display());
}

/// Everything in a summary but what may differ between two builds of the same data.
fn comparable(mut s: serde_json::Value) -> serde_json::Value {
    s.as_object_mut().unwrap().remove("lost_shards");
    s
}

#[test]
fn shards_started_seconds_apart_begin_together_and_the_live_merge_equals_the_offline_one() {
    let work = tempfile::tempdir().unwrap();
    let p = profile(work.path(), "together", 6, "");
    let mock = Mock::start(&p);
    let target = format!("ws://{}/chat", mock.addr);
    let port = free_port();
    // The coordinator comes last, as a pod scheduled late would: the others wait for it.
    let mut one = Shard::start(&p, &target, "1/3", port, work.path(), &[]);
    std::thread::sleep(Duration::from_millis(1500));
    let mut two = Shard::start(&p, &target, "2/3", port, work.path(), &[]);
    std::thread::sleep(Duration::from_millis(1500));
    let mut zero = Shard::start(&p, &target, "0/3", port, work.path(), &[]);
    let limit = Duration::from_secs(60);
    assert_eq!(zero.wait(limit), Some(0), "{}", zero.log());
    assert_eq!(one.wait(limit), Some(0), "{}", one.log());
    assert_eq!(two.wait(limit), Some(0), "{}", two.log());
    assert!(
        one.log().contains("waiting for the coordinator"),
        "{}",
        one.log()
    );

    // One start: the shards' own time zeros agree to well under an interval, and every
    // shard sent in the first interval.
    let dirs = [zero.own_dir(0), one.own_dir(1), two.own_dir(2)];
    let zeros: Vec<SystemTime> = dirs.iter().map(|d| started_at(d)).collect();
    let earliest = *zeros.iter().min().unwrap();
    for (d, z) in dirs.iter().zip(&zeros) {
        let apart = z.duration_since(earliest).unwrap();
        eprintln!("{}: time zero {apart:?} after the earliest", d.display());
        assert!(
            apart < Duration::from_millis(100),
            "{} starts {apart:?} later",
            d.display()
        );
        let rows = sent_by_row(d);
        assert_eq!(rows[0].0, 1.0, "{}", d.display());
        assert!(
            rows[0].1 > 0,
            "{} sent nothing in the first interval",
            d.display()
        );
    }

    // The coordinator's one directory: every shard's hlog, the rendezvous, the whole load.
    let merged = merged_dir(&zero.out, "together");
    for i in 0..3 {
        assert!(merged.join(format!("shard-{i:03}.hlog")).is_file());
    }
    let info = json(&merged.join("run.json"));
    assert_eq!(info["status"], "complete");
    let joined = info["rendezvous"]["joined"].as_array().unwrap();
    assert_eq!(joined.len(), 3, "{info}");
    for j in joined {
        assert!(
            j["clock_offset_ms"].as_f64().unwrap().abs() < 50.0,
            "{info}"
        );
    }
    let summary = json(&merged.join("summary.json"));
    let sent = summary["counts"]["sent"].as_u64().unwrap();
    // 12 messages/s for 6 s, one per session every second at a random phase.
    assert!((66..=72).contains(&sent), "sent {sent}");
    let own_sent: u64 = dirs
        .iter()
        .map(|d| {
            json(&d.join("summary.json"))["counts"]["sent"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(sent, own_sent);

    // The offline merge of the shards' own directories says exactly the same.
    let offline = work.path().join("offline");
    let merge = Command::new(SURGE)
        .args(["run", "--merge"])
        .args(&dirs)
        .arg("--out")
        .arg(&offline)
        .output()
        .unwrap();
    assert!(merge.status.success(), "{merge:?}");
    let again = json(&merged_dir(&offline, "together").join("summary.json"));
    assert_eq!(comparable(summary), comparable(again));
    // The key went through every handshake and into no file: run directories, logs, output.
    let leaked = files_under(work.path())
        .into_iter()
        .filter(|f| {
            std::fs::read(f)
                .is_ok_and(|b| b.windows(RUN_KEY.len()).any(|w| w == RUN_KEY.as_bytes()))
        })
        .collect::<Vec<_>>();
    assert!(
        leaked.is_empty(),
        "the rendezvous key was written to {leaked:?}"
    );
}

/// Every file below `dir` (bounded: a run writes a few dozen).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    for _ in 0..10_000 {
        let Some(d) = dirs.pop() else { break };
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    assert!(!files.is_empty());
    files
}

#[test]
fn a_killed_and_a_silent_shard_are_lost_within_two_intervals_and_their_share_is_stated() {
    let work = tempfile::tempdir().unwrap();
    let secs = 14;
    let p = profile(work.path(), "lossy", secs, "");
    let mock = Mock::start(&p);
    let target = format!("ws://{}/chat", mock.addr);
    let port = free_port();
    let mut zero = Shard::start(&p, &target, "0/3", port, work.path(), &[]);
    let mut one = Shard::start(&p, &target, "1/3", port, work.path(), &[]);
    let mut two = Shard::start(&p, &target, "2/3", port, work.path(), &[]);
    wait_for_rows(&two.own_dir(2), 4);
    two.signal(libc::SIGKILL);
    let killed = SystemTime::now();
    wait_for_rows(&one.own_dir(1), 6);
    one.signal(libc::SIGSTOP);
    let stopped = SystemTime::now();

    let code = zero.wait(Duration::from_secs(60));
    one.signal(libc::SIGKILL);
    let _ = one.wait(Duration::from_secs(10));
    let _ = two.wait(Duration::from_secs(10));
    assert_eq!(code, Some(3), "a degraded run exits 3:\n{}", zero.log());
    assert!(zero.log().contains("shard 2 lost"), "{}", zero.log());

    let merged = merged_dir(&zero.out, "lossy");
    assert_eq!(json(&merged.join("run.json"))["status"], "degraded");
    let zero_at = started_at(&merged);
    let run_time = |t: SystemTime| t.duration_since(zero_at).unwrap().as_secs_f64();
    let summary = json(&merged.join("summary.json"));
    let lost = summary["lost_shards"].as_array().unwrap();
    assert_eq!(lost.len(), 2, "{summary}");
    for (shard, failed_at, how) in [
        (2, run_time(killed), "connection ended"),
        (1, run_time(stopped), "nothing from it"),
    ] {
        let l = lost.iter().find(|l| l["shard"] == shard).unwrap();
        let lost_at = l["lost_at_s"].as_f64().unwrap();
        let last = l["last_report_s"].as_f64().unwrap();
        assert!(l["why"].as_str().unwrap().contains(how), "{l}");
        // Declared within two intervals of the failure, and not before it.
        assert!(
            lost_at >= failed_at - 0.05,
            "shard {shard}: lost at {lost_at}, failed at {failed_at}"
        );
        assert!(
            lost_at <= failed_at + 2.2,
            "shard {shard}: lost at {lost_at}, failed at {failed_at}"
        );
        // 4 of the 12 sessions at a constant rate: a third of what was due after its last
        // report.
        let expected = 4.0 / f64::from(SESSIONS) * (f64::from(secs) - last) / f64::from(secs);
        let share = l["offered_share_lost"].as_f64().unwrap();
        eprintln!(
            "shard {shard}: failed at {failed_at:.2} s, last report {last:.0} s, lost at \
             {lost_at:.2} s ({:.2} s after the failure); share {share:.4}, expected {expected:.4}",
            lost_at - failed_at
        );
        assert!(
            (share - expected).abs() < 0.01,
            "shard {shard}: share {share}, expected {expected}"
        );
    }
    // The run went on: shard 0 sent to the end, and the timeline counts one shard alive.
    let text = std::fs::read_to_string(merged.join("timeline.csv")).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let alive = header.iter().position(|c| *c == "shards_alive").unwrap();
    let last: Vec<&str> = text.lines().last().unwrap().split(',').collect();
    assert_eq!(last[alive], "1", "{text}");
    assert!(
        last[0].parse::<f64>().unwrap() >= f64::from(secs) - 0.5,
        "{text}"
    );

    // Reports say so.
    let report = Command::new(SURGE)
        .args(["report", merged.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(text.contains("degraded"), "{text}");
    assert!(text.contains("shard 2"), "{text}");
}

#[test]
fn an_abort_breached_by_one_shards_traffic_stops_every_shard() {
    let work = tempfile::tempdir().unwrap();
    let p = profile(
        work.path(),
        "guarded",
        40,
        r#""errors.rate" = { limit = "< 5%", abort = true, window = "2s", after = "2s" }"#,
    );
    let healthy = Mock::start(&p);
    // Shard 2's regional endpoint fails every chat message; the others are fine.
    let failing = Mock::start_with(&p, &["--fault-error-rate", "chat=1.0"]);
    let good = format!("ws://{}/chat", healthy.addr);
    let bad = format!("ws://{}/chat", failing.addr);
    let port = free_port();
    let mut zero = Shard::start(&p, &good, "0/3", port, work.path(), &[]);
    let mut one = Shard::start(&p, &good, "1/3", port, work.path(), &[]);
    let mut two = Shard::start(&p, &bad, "2/3", port, work.path(), &[]);
    let limit = Duration::from_secs(40);
    assert_eq!(zero.wait(limit), Some(1), "{}", zero.log());
    // The others did their part: the verdict is the coordinator's.
    assert_eq!(one.wait(limit), Some(0), "{}", one.log());
    assert_eq!(two.wait(limit), Some(0), "{}", two.log());

    let merged = merged_dir(&zero.out, "guarded");
    let info = json(&merged.join("run.json"));
    assert_eq!(info["status"], "aborted", "{info}");
    let at = info["breach"]["at_s"].as_f64().unwrap();
    assert!(at < 15.0, "{info}");
    // Every shard stopped on the coordinator's word, long before the planned 40 s, and
    // says why in its own directory.
    for (shard, dir) in [(1, one.own_dir(1)), (2, two.own_dir(2))] {
        let own = json(&dir.join("run.json"));
        assert_eq!(own["status"], "aborted", "shard {shard}: {own}");
        assert_eq!(own["breach"], info["breach"], "shard {shard}");
        let rows = sent_by_row(&dir);
        let end = rows.last().unwrap().0;
        eprintln!("breach at {at} s; shard {shard} stopped at {end} s");
        assert!(
            end < at + 5.0,
            "shard {shard} ran to {end} s, breach at {at} s"
        );
    }
    // Only shard 2's traffic failed: the breach is the merged view's, not one shard's.
    let errors = |dir: &Path| {
        json(&dir.join("summary.json"))["rates"]["error_ratio"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(errors(&one.own_dir(1)), 0.0);
    let two_errors = json(&two.own_dir(2).join("summary.json"));
    assert!(errors(&two.own_dir(2)) > 0.5, "{two_errors}");
}

#[test]
fn the_barrier_refuses_strangers_and_starts_short_only_when_asked() {
    let work = tempfile::tempdir().unwrap();
    let p = profile(work.path(), "barrier", 4, "");
    let other = profile(work.path(), "other", 5, "");
    let mock = Mock::start(&p);
    let target = format!("ws://{}/chat", mock.addr);

    // A shard briefed with another profile is refused; without it the run cannot gather.
    let port = free_port();
    let mut zero = Shard::start(
        &p,
        &target,
        "0/2",
        port,
        work.path(),
        &["--join-timeout", "3s"],
    );
    let mut stranger = Shard::start(&other, &target, "1/2", port, work.path(), &[]);
    assert_eq!(stranger.wait(Duration::from_secs(30)), Some(3));
    assert!(
        stranger.log().contains("profile differs"),
        "{}",
        stranger.log()
    );
    assert_eq!(zero.wait(Duration::from_secs(30)), Some(3));
    assert!(
        zero.log().contains("only 1 of 2 shards joined"),
        "{}",
        zero.log()
    );

    // With --min-shards 1 the coordinator starts alone after the timeout; the missing
    // shard's whole share is lost.
    let port = free_port();
    let work2 = work.path().join("short");
    std::fs::create_dir_all(&work2).unwrap();
    let mut alone = Shard::start(
        &p,
        &target,
        "0/2",
        port,
        &work2,
        &["--join-timeout", "1s", "--min-shards", "1"],
    );
    assert_eq!(
        alone.wait(Duration::from_secs(30)),
        Some(3),
        "{}",
        alone.log()
    );
    let summary = json(&merged_dir(&alone.out, "barrier").join("summary.json"));
    let lost = &summary["lost_shards"][0];
    assert_eq!(lost["shard"], 1, "{summary}");
    assert!(
        lost["why"].as_str().unwrap().contains("never joined"),
        "{summary}"
    );
    let share = lost["offered_share_lost"].as_f64().unwrap();
    assert!((share - 0.5).abs() < 0.01, "{summary}");

    // Bad usage is refused before anything starts.
    let e = Command::new(SURGE)
        .args(["run", p.to_str().unwrap(), "--target", &target])
        .args(["--rendezvous", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(e.status.code(), Some(2), "{e:?}");
    let e = Command::new(SURGE)
        .args([
            "run",
            p.to_str().unwrap(),
            "--target",
            &target,
            "--shard",
            "1/2",
        ])
        .args(["--rendezvous", "no-port"])
        .output()
        .unwrap();
    assert_eq!(e.status.code(), Some(2), "{e:?}");
    assert!(
        String::from_utf8_lossy(&e.stderr).contains("HOST:PORT"),
        "{e:?}"
    );
}

#[test]
fn the_coordinators_ctrl_c_stops_every_shard_and_its_loss_fails_them_cleanly() {
    let work = tempfile::tempdir().unwrap();
    let p = profile(work.path(), "stops", 30, "");
    let mock = Mock::start(&p);
    let target = format!("ws://{}/chat", mock.addr);

    // Ctrl-C on the coordinator: every shard closes its interval; the merged run says so.
    let port = free_port();
    let ctrl_c = work.path().join("ctrl-c");
    std::fs::create_dir_all(&ctrl_c).unwrap();
    let mut zero = Shard::start(&p, &target, "0/2", port, &ctrl_c, &[]);
    let mut one = Shard::start(&p, &target, "1/2", port, &ctrl_c, &[]);
    wait_for_rows(&one.own_dir(1), 3);
    zero.signal(libc::SIGINT);
    let limit = Duration::from_secs(30);
    assert_eq!(zero.wait(limit), Some(130), "{}", zero.log());
    assert_eq!(one.wait(limit), Some(0), "{}", one.log());
    let merged = merged_dir(&zero.out, "stops");
    assert_eq!(json(&merged.join("run.json"))["status"], "interrupted");
    let own = json(&one.own_dir(1).join("run.json"));
    assert_eq!(own["status"], "interrupted", "{own}");
    assert!(sent_by_row(&one.own_dir(1)).last().unwrap().0 < 15.0);

    // The coordinator killed: the other shard stops within the silence limit, keeps its
    // own complete directory and exits 3.
    let port = free_port();
    let lost = work.path().join("lost");
    std::fs::create_dir_all(&lost).unwrap();
    let zero = Shard::start(&p, &target, "0/2", port, &lost, &[]);
    let mut one = Shard::start(&p, &target, "1/2", port, &lost, &[]);
    wait_for_rows(&one.own_dir(1), 3);
    zero.signal(libc::SIGKILL);
    let killed = Instant::now();
    assert_eq!(one.wait(limit), Some(3), "{}", one.log());
    assert!(
        killed.elapsed() < Duration::from_secs(15),
        "{:?}",
        killed.elapsed()
    );
    assert!(one.log().contains("lost the coordinator"), "{}", one.log());
    let dir = one.own_dir(1);
    assert_eq!(json(&dir.join("run.json"))["status"], "failed");
    let summary = json(&dir.join("summary.json"));
    assert!(summary["counts"]["sent"].as_u64().unwrap() > 0, "{summary}");
    assert!(dir.join("shard-001.hlog").is_file());
    // Closed cleanly: no session was cut off by the stop itself.
    for class in ["dropped", "closed_mid_answer"] {
        assert_eq!(summary["errors"][class], 0, "{class}: {summary}");
    }
}

/// A key too short to guard anything is refused before the run, without repeating it.
#[test]
fn a_rendezvous_key_too_short_is_a_usage_error() {
    let work = tempfile::tempdir().unwrap();
    let profile = profile(work.path(), "short-key", 2, "");
    let out = Command::new(SURGE)
        .args(["run", profile.to_str().unwrap(), "--no-progress"])
        .args(["--target", "ws://127.0.0.1:9/chat", "--shard", "1/2"])
        .args(["--rendezvous", &format!("127.0.0.1:{}", free_port())])
        .arg("--out")
        .arg(work.path().join("out"))
        .env("SURGE_RENDEZVOUS_KEY", "hunter2")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "usage error; stderr: {stderr}");
    assert!(
        stderr.contains("SURGE_RENDEZVOUS_KEY") && stderr.contains("at least 16"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hunter2"),
        "the key is not repeated: {stderr}"
    );
}
