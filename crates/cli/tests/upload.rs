//! Results without a shared volume: `surge run --upload s3://…` and `surge report s3://…`
//! against an S3-compatible server surge did not write (the Python `moto` server, on a
//! loopback port), with AWS's chain reading only what the test gives the child processes.
//!
//! A short run against `surge mock` goes to the bucket byte for byte and reports from
//! there as from its local directory; a bad URL is a usage error before any load; a store
//! that cannot be reached fails the upload (exit 3) and keeps the local run; a prefix with
//! nothing under it is a clear error. Every wait is bounded.
//!
//! moto comes from $SURGE_S3_PYTHON or `.venv/s3` (scripts/test.sh installs it); without
//! it the moto test says so and passes, except under CI=true, where it fails.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::calibration::{Mock, SURGE, Steady, only_run};
use surge_objstore::testkit::{self, Moto};

/// Four sessions sending 10 messages/s for 2 s.
fn profile(dir: &Path) -> PathBuf {
    profile_of(dir, "upload", "2s")
}

/// Four sessions sending 10 messages/s for `duration`, in profile `name`.
fn profile_of(dir: &Path, name: &str, duration: &str) -> PathBuf {
    Steady {
        name,
        seed: 11,
        duration,
        sessions: 4,
        rate: "10/s",
        thresholds: "",
    }
    .write(dir)
}

struct Ended {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ended {
    fn text(&self) -> String {
        format!(
            "exit {:?}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// `surge ARGS` started with no AWS setting of this process but `aws` (and no config
/// files, no instance metadata).
fn spawn(args: &[&str], aws: &[(&str, String)], scratch: &Path) -> Child {
    let mut cmd = Command::new(SURGE);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", scratch.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            scratch.join("no-aws-credentials"),
        );
    for (k, v) in aws {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// How `child` ended; killed past 60 s.
fn wait(mut child: Child) -> Ended {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("surge did not end within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    Ended {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Ctrl-C to `child` as soon as `ready` holds (`not_yet` fails the test after 20 s), and
/// how it ended.
fn interrupt_once(child: Child, not_yet: &str, ready: impl Fn() -> bool) -> Ended {
    let started = Instant::now();
    while !ready() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{not_yet} within 20 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    wait(child)
}

/// `surge ARGS` to its end, with only `aws` of the AWS settings.
fn surge(args: &[&str], aws: &[(&str, String)], scratch: &Path) -> Ended {
    wait(spawn(args, aws, scratch))
}

fn run_args<'a>(profile: &'a Path, mock: &'a Mock, out: &'a Path, upload: &'a str) -> Vec<String> {
    vec![
        "run".into(),
        profile.display().to_string(),
        "--no-progress".into(),
        "--target".into(),
        format!("ws://{}/chat", mock.addr),
        "--out".into(),
        out.display().to_string(),
        "--upload".into(),
        upload.into(),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Whether the one run under `out` has written an interval to timeline.csv.
fn timeline_has_rows(out: &Path) -> bool {
    let Ok(profiles) = std::fs::read_dir(out) else {
        return false;
    };
    profiles.flatten().any(|p| {
        std::fs::read_dir(p.path()).is_ok_and(|runs| {
            runs.flatten().any(|r| {
                std::fs::read_to_string(r.path().join("timeline.csv"))
                    .is_ok_and(|t| t.lines().count() > 1)
            })
        })
    })
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A moto server with an empty `bucket`, a runtime to inspect it with, and the AWS
/// settings that point child processes at it; `None` (the test skips) without moto.
struct Bucket {
    moto: Moto,
    rt: tokio::runtime::Runtime,
    aws: [(&'static str, String); 4],
}

impl Bucket {
    fn start() -> Option<Self> {
        let python = support::python::or_skip(&support::python::MOTO)?;
        let moto = Moto::start(&python);
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(testkit::create_bucket(&moto.client(), "bucket"));
        let aws = moto.env();
        Some(Self { moto, rt, aws })
    }
}

#[test]
fn a_run_goes_to_s3_byte_for_byte_and_reports_from_there() {
    let Some(Bucket { moto, rt, aws }) = Bucket::start() else {
        return;
    };
    let client = moto.client();

    let dir = tempfile::tempdir().unwrap();
    let p = profile(dir.path());
    let mock = Mock::start(&p);
    let out = dir.path().join("out");
    let url = "s3://bucket/nightly/run1";
    let e = surge(&strs(&run_args(&p, &mock, &out, url)), &aws, dir.path());
    assert_eq!(e.code, Some(0), "{}", e.text());
    let run = only_run(&out);
    assert_eq!(json(&run.join("run.json"))["status"], "complete");

    // Every local file is in the bucket at PREFIX/<path>, byte for byte, and nothing else.
    let local = testkit::files(&run);
    assert!(local.iter().any(|f| f.0 == "shard-000.hlog"), "{local:?}");
    let stored: Vec<_> = rt
        .block_on(testkit::objects(&client, "bucket", ""))
        .into_iter()
        .map(|(k, b)| (k.strip_prefix("nightly/run1/").unwrap_or(&k).to_string(), b))
        .collect();
    assert_eq!(stored.len(), local.len(), "{}", e.text());
    assert!(stored == local, "the bucket differs from {}", run.display());
    let bytes: usize = local.iter().map(|f| f.1.len()).sum();
    let said = format!(
        "uploaded {} files ({:.1} KiB) to s3://bucket/nightly/run1/",
        local.len(),
        bytes as f64 / 1024.0
    );
    assert!(e.stdout.contains(&said), "{said}\n{}", e.text());

    // The report from S3 is the report of the local directory, naming the URL.
    let from_s3 = surge(&["report", url], &aws, dir.path());
    assert_eq!(from_s3.code, Some(0), "{}", from_s3.text());
    let from_disk = surge(&["report", run.to_str().unwrap()], &[], dir.path());
    assert_eq!(from_disk.code, Some(0), "{}", from_disk.text());
    assert!(from_s3.stdout.contains(url), "{}", from_s3.stdout);
    assert!(!from_s3.stdout.contains("surge-s3-"), "{}", from_s3.stdout);
    // The same report but for the run's name (and the width of its column).
    let path = run.to_str().unwrap();
    let named = |text: &str, name: &str| -> (Vec<String>, String) {
        let (runs, rest): (Vec<_>, Vec<_>) = text
            .lines()
            .partition(|l| l.contains(name) || l.trim_start().starts_with("run directory"));
        let runs = runs
            .join("\n")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        (rest.into_iter().map(str::to_owned).collect(), runs)
    };
    let (s3_rest, s3_runs) = named(&from_s3.stdout, url);
    let (disk_rest, disk_runs) = named(&from_disk.stdout, path);
    assert_eq!(s3_rest, disk_rest);
    assert_eq!(s3_runs, disk_runs.replace(path, url));
    assert!(
        s3_runs.contains(&format!("{url} measured complete")),
        "{s3_runs}"
    );
    // compare reads S3 as well.
    let cmp = surge(
        &["compare", url, run.to_str().unwrap(), "--bootstrap", "0"],
        &aws,
        dir.path(),
    );
    assert_eq!(cmp.code, Some(0), "{}", cmp.text());
    assert!(cmp.stdout.contains(url), "{}", cmp.stdout);

    // Ctrl-C stops the run and the directory is uploaded all the same, marked interrupted.
    let long = profile_of(dir.path(), "long", "60s");
    let out = dir.path().join("out-interrupted");
    let url = "s3://bucket/nightly/interrupted";
    let child = spawn(&strs(&run_args(&long, &mock, &out, url)), &aws, dir.path());
    let e = interrupt_once(child, "no interval written", || timeline_has_rows(&out));
    assert_eq!(e.code, Some(130), "{}", e.text());
    assert!(
        e.stdout.contains("to s3://bucket/nightly/interrupted/"),
        "{}",
        e.text()
    );
    let stored = rt.block_on(testkit::objects(&client, "bucket", "nightly/interrupted/"));
    let run_json = stored
        .iter()
        .find(|o| o.0 == "nightly/interrupted/run.json")
        .expect("run.json uploaded");
    let info: serde_json::Value = serde_json::from_slice(&run_json.1).unwrap();
    assert_eq!(info["status"], "interrupted");
    assert_eq!(stored.len(), testkit::files(&only_run(&out)).len());

    // Nothing there: said plainly, exit 2.
    let missing = surge(&["report", "s3://bucket/missing"], &aws, dir.path());
    assert_eq!(missing.code, Some(2), "{}", missing.text());
    assert!(
        missing
            .stderr
            .contains("no run directory at s3://bucket/missing"),
        "{}",
        missing.text()
    );
}

/// Ctrl-C while `surge report s3://…` downloads a run: exit 130, and no copy of the run is
/// left in the temporary directory (the default action of SIGINT would leave it).
#[test]
fn ctrl_c_during_a_download_removes_it_and_exits_130() {
    let Some(Bucket { moto, rt, aws }) = Bucket::start() else {
        return;
    };
    let client = moto.client();
    // 96 MiB: moto serves it for well over the few milliseconds the signal takes.
    rt.block_on(testkit::put(
        &client,
        "bucket",
        "big/run.json",
        b"{}".to_vec(),
    ));
    let big: Vec<u8> = (0..96u32 << 20).map(|i| (i % 251) as u8).collect();
    rt.block_on(testkit::put(&client, "bucket", "big/shard-000.hlog", big));
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let mut env = aws.to_vec();
    env.push(("TMPDIR", tmp.display().to_string()));
    let child = spawn(&["report", "s3://bucket/big"], &env, dir.path());
    let downloading = || {
        std::fs::read_dir(&tmp)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("surge-s3-"))
    };
    let e = interrupt_once(child, "no download started", downloading);
    assert_eq!(e.code, Some(130), "{}", e.text());
    assert!(e.stderr.contains("interrupted"), "{}", e.text());
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().flatten().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_bad_upload_url_is_a_usage_error_before_any_load() {
    let dir = tempfile::tempdir().unwrap();
    let p = profile(dir.path());
    let out = dir.path().join("out");
    let e = surge(
        &[
            "run",
            p.to_str().unwrap(),
            "--target",
            "ws://127.0.0.1:9/chat",
            "--out",
            out.to_str().unwrap(),
            "--upload",
            "http://x",
        ],
        &[],
        dir.path(),
    );
    assert_eq!(e.code, Some(2), "{}", e.text());
    assert!(
        e.stderr.contains("the scheme is http://, not s3://"),
        "{}",
        e.text()
    );
    assert!(!out.exists(), "no run directory before the URL is checked");
}

#[test]
fn an_unreachable_store_fails_the_upload_and_keeps_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let p = profile(dir.path());
    let mock = Mock::start(&p);
    let out = dir.path().join("out");
    // A loopback port nothing listens on.
    let closed = format!("http://127.0.0.1:{}", testkit::free_port());
    let aws = testkit::env_for(closed);
    let e = surge(
        &strs(&run_args(&p, &mock, &out, "s3://bucket/x")),
        &aws,
        dir.path(),
    );
    assert_eq!(e.code, Some(3), "{}", e.text());
    assert!(
        e.stderr.contains("error: cannot list s3://bucket/x: ")
            && e.stderr.contains("Connection refused")
            && e.stderr.contains("AWS_ENDPOINT_URL_S3"),
        "{}",
        e.text()
    );
    let run = only_run(&out);
    assert!(
        e.stderr
            .contains(&format!("the run directory is kept at {}", run.display())),
        "{}",
        e.text()
    );
    assert_eq!(json(&run.join("run.json"))["status"], "complete");
    assert!(json(&run.join("summary.json"))["counts"]["sent"].as_u64() > Some(0));
    assert!(!e.stdout.contains("uploaded"), "{}", e.text());
    // No credential in anything surge printed.
    assert!(!e.stdout.contains(testkit::SECRET_KEY) && !e.stderr.contains(testkit::SECRET_KEY));
}

/// Ctrl-C while the finished run uploads: the upload is given up, the run directory kept
/// and named, and the exit is 130, as for any stop by the user (it used to be 3, "could
/// not be carried out", as if the store had failed).
#[test]
fn ctrl_c_during_an_upload_keeps_the_run_and_exits_130() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let p = profile(dir.path());
    let mock = Mock::start(&p);
    let out = dir.path().join("out");
    // A store that takes connections and never answers: the upload waits on it.
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    hole.set_nonblocking(true).unwrap();
    let endpoint = format!("http://{}", hole.local_addr().unwrap());
    let (accepted, done) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let holder = {
        let (accepted, done) = (accepted.clone(), done.clone());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            let started = Instant::now();
            while !done.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(90) {
                match hole.accept() {
                    Ok((stream, _)) => {
                        held.push(stream);
                        accepted.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        })
    };
    let aws = testkit::env_for(endpoint);
    let child = spawn(
        &strs(&run_args(&p, &mock, &out, "s3://bucket/x")),
        &aws,
        dir.path(),
    );
    let uploading = || accepted.load(Ordering::Relaxed) > 0;
    let e = interrupt_once(child, "no upload started", uploading);
    done.store(true, Ordering::Relaxed);
    holder.join().unwrap();
    assert_eq!(e.code, Some(130), "{}", e.text());
    let run = only_run(&out);
    assert!(
        e.stderr
            .contains("error: upload to s3://bucket/x interrupted")
            && e.stderr
                .contains(&format!("the run directory is kept at {}", run.display())),
        "{}",
        e.text()
    );
    // The run itself had ended before the upload began: complete, not interrupted.
    assert_eq!(json(&run.join("run.json"))["status"], "complete");
    assert!(!e.stdout.contains("uploaded"), "{}", e.text());
}

/// Shards that uploaded their own directories merge from the bucket as from disk: a lost
/// coordinator's run put together from S3 alone, its messages naming the URLs.
#[test]
fn shard_directories_merge_from_s3_as_from_disk() {
    // The server lives as long as `_moto`.
    let Some(Bucket {
        moto: _moto, aws, ..
    }) = Bucket::start()
    else {
        return;
    };

    let dir = tempfile::tempdir().unwrap();
    let p = profile_of(dir.path(), "sharded", "2s");
    let mock = Mock::start(&p);
    let shared = dir.path().join("shared");
    for shard in ["0/2", "1/2"] {
        let url = format!("s3://bucket/sharded/shard-00{}", &shard[..1]);
        let mut args = run_args(&p, &mock, &shared, &url);
        args.extend(["--shard".into(), shard.into()]);
        let e = surge(&strs(&args), &aws, dir.path());
        assert_eq!(e.code, Some(0), "{}", e.text());
    }
    let merge = |sources: [String; 2], out: &Path| {
        let mut args = vec!["run".to_string(), "--merge".into()];
        args.extend(sources);
        args.extend(["--out".into(), out.display().to_string()]);
        surge(&strs(&args), &aws, dir.path())
    };
    let (local, from_s3) = (
        dir.path().join("merged-local"),
        dir.path().join("merged-s3"),
    );
    let on_disk = merge(
        ["shard-000", "shard-001"].map(|s| shared.join(s).display().to_string()),
        &local,
    );
    assert_eq!(on_disk.code, Some(0), "{}", on_disk.text());
    let urls = ["shard-000", "shard-001"].map(|s| format!("s3://bucket/sharded/{s}"));
    let e = merge(urls.clone(), &from_s3);
    assert_eq!(e.code, Some(0), "{}", e.text());
    let (a, b) = (only_run(&local), only_run(&from_s3));
    assert_eq!(json(&a.join("summary.json")), json(&b.join("summary.json")));
    assert_eq!(
        testkit::files(&a),
        testkit::files(&b),
        "the same files, byte for byte"
    );
    assert!(json(&b.join("summary.json"))["counts"]["sent"].as_u64() > Some(0));

    // A shard missing from the bucket is named by its URL, not a temporary path.
    let gone = merge(
        [urls[0].clone(), "s3://bucket/sharded/shard-009".into()],
        &dir.path().join("merged-gone"),
    );
    assert_eq!(gone.code, Some(2), "{}", gone.text());
    assert!(
        gone.stderr.contains("s3://bucket/sharded/shard-009") && !gone.stderr.contains("surge-s3-"),
        "{}",
        gone.text()
    );
}
