//! The workflows around the commands: `surge prewarm` against the mock, the spike
//! rehearsal script (its early refusal and a whole tiny rehearsal), and the nightly
//! script's exit codes against a normal and a deliberately slowed mock, the mock
//! scaling its orchestrator as the simulator predicts, and the mock holding API Gateway's
//! limits from a profile's overrides. Everything runs on loopback with bounded waits.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const SURGE: &str = env!("CARGO_BIN_EXE_surge");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A small profile against the mock: template intents only (no LLM), so latency is a few
/// hundred milliseconds and stable; `extra` is appended (e.g. a [prewarm] table).
fn profile(dir: &Path, name: &str, seconds: u32, extra: &str) -> PathBuf {
    let system = repo()
        .join("profiles/system/mangaassist.toml")
        .canonicalize()
        .unwrap();
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"description = "workflow test"
seed = 5
duration = "{seconds}s"

[system]
file = "{}"

[traffic]
arrival = "poisson"
conversation_turns = 5
reply_timeout = "10s"
connect_rate = "500/s"

[traffic.stores]
manga_jp = "100%"

[traffic.intents]
product_info = "60%"
order_tracking = "40%"

[[traffic.stages]]
name = "steady"
duration = "{seconds}s"
ramp = "1s"
sessions = 10
message_rate = "300/min"

[thresholds]
"errors.rate" = "< 5%"
{extra}"#,
            system.display()
        ),
    )
    .unwrap();
    path
}

/// A `surge mock` process on a free loopback port, killed when dropped.
struct Mock {
    child: Child,
    addr: String,
}

impl Mock {
    fn start(profile: &Path, extra: &[&str]) -> Mock {
        let mut child = Command::new(SURGE)
            .args(["mock", "--profile", profile.to_str().unwrap()])
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            for _ in lines {} // keep draining so the mock never blocks on stdout
        });
        let first = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("surge mock did not say where it listens within 30 s");
            }
        };
        let addr = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {first}"))
            .trim()
            .to_string();
        Mock { child, addr }
    }

    fn url(&self) -> String {
        format!("ws://{}/chat", self.addr)
    }

    /// GET /metrics.
    fn metrics(&self) -> String {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` to the end, killing it after `limit`; output goes to files (no pipe stalls).
fn bounded(mut cmd: Command, limit: Duration) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} did not finish within {limit:?}:\n{}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Ran {
        code: status.code(),
        stdout: std::fs::read_to_string(out).unwrap(),
        stderr: std::fs::read_to_string(err).unwrap(),
    }
}

fn surge(args: &[&str]) -> Command {
    let mut c = Command::new(SURGE);
    c.args(args);
    c
}

/// A metric's value in the exposition text (`name value` or `name{labels} value`).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

const PREWARM: &str = r#"
[target]
token_env = "SURGE_TEST_PREWARM_TOKEN"

[prewarm]
timeout = "5s"

[[prewarm.calls]]
name = "One Piece omnibus"
method = "POST"
path = "/admin/prewarm"
body = { asin = "B0ONEPIECE", ttl = "1h", release = "2026-12-04T00:00:00+09:00" }
headers = { "X-Surge-Run" = "test" }
expect = 200
"#;

#[test]
fn prewarm_switches_the_mock_cache_to_the_prewarmed_hit_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let p = profile(dir.path(), "warm", 5, PREWARM);
    let mock = Mock::start(&p, &[]);
    let before = mock.metrics();
    assert_eq!(metric(&before, "surge_mock_cache_prewarmed"), 0.0);
    assert_eq!(metric(&before, "surge_mock_prewarm_requests_total"), 0.0);

    // Credentials in the URL and the token are used, never printed.
    let target = format!("ws://user:hunter2@{}/chat", mock.addr);
    let mut cmd = surge(&["prewarm", p.to_str().unwrap(), "--target", &target]);
    cmd.env("SURGE_TEST_PREWARM_TOKEN", "tok-s3cret");
    let ran = bounded(cmd, Duration::from_secs(30));
    assert_eq!(ran.code, Some(0), "{}\n{}", ran.stdout, ran.stderr);
    assert!(ran.stdout.contains("200 OK"), "{}", ran.stdout);
    assert!(ran.stdout.contains("One Piece omnibus"), "{}", ran.stdout);
    assert!(
        ran.stdout.contains(" ms"),
        "the time of each call: {}",
        ran.stdout
    );
    for secret in ["hunter2", "tok-s3cret"] {
        assert!(
            !ran.stdout.contains(secret) && !ran.stderr.contains(secret),
            "{secret} printed"
        );
    }
    let after = mock.metrics();
    assert_eq!(metric(&after, "surge_mock_cache_prewarmed"), 1.0, "{after}");
    assert_eq!(metric(&after, "surge_mock_prewarm_requests_total"), 1.0);

    // A missing token, a host the profile does not allow: exit 2, nothing called.
    let ran = bounded(
        surge(&["prewarm", p.to_str().unwrap(), "--target", &mock.url()]),
        Duration::from_secs(30),
    );
    assert_eq!(ran.code, Some(2), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("SURGE_TEST_PREWARM_TOKEN"),
        "{}",
        ran.stderr
    );
    let mut cmd = surge(&[
        "prewarm",
        p.to_str().unwrap(),
        "--target",
        "wss://chat.example.com/ws",
    ]);
    cmd.env("SURGE_TEST_PREWARM_TOKEN", "x");
    let ran = bounded(cmd, Duration::from_secs(30));
    assert_eq!(ran.code, Some(2), "{}", ran.stderr);
    assert!(ran.stderr.contains("refusing"), "{}", ran.stderr);
    assert_eq!(
        metric(&mock.metrics(), "surge_mock_prewarm_requests_total"),
        1.0
    );

    // A call answered with another status than expected fails the step: exit 3.
    let bad = profile(
        dir.path(),
        "bad",
        5,
        "[prewarm]\n[[prewarm.calls]]\nmethod = \"POST\"\npath = \"/admin/prewarm\"\nbody = { asin = \"not valid!\" }\n",
    );
    let ran = bounded(
        surge(&["prewarm", bad.to_str().unwrap(), "--target", &mock.url()]),
        Duration::from_secs(30),
    );
    assert_eq!(ran.code, Some(3), "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout.contains("FAIL") && ran.stdout.contains("400 Bad Request"),
        "{}",
        ran.stdout
    );
}

fn rehearse(target: &str, profile: &Path, out: &Path) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("scripts/rehearse-spike.sh"))
        .args([target, profile.to_str().unwrap()])
        .env("SURGE_BIN", SURGE)
        .env("SURGE_OUT", out)
        .env_remove("SURGE_RUN_ARGS");
    cmd
}

#[test]
fn rehearse_spike_refuses_foreign_targets_early_then_predicts_prewarms_runs_and_compares() {
    let dir = tempfile::tempdir().unwrap();
    let warm = "[prewarm]\n[[prewarm.calls]]\nmethod = \"POST\"\npath = \"/admin/prewarm\"\nbody = { asin = \"B0ONEPIECE\", ttl = \"2h\" }\n";
    let p = profile(dir.path(), "spike", 5, warm);

    // A host the profile does not allow: refused before the prediction, nothing written.
    let out = dir.path().join("refused");
    let ran = bounded(
        rehearse("wss://prod.example.com/chat", &p, &out),
        Duration::from_secs(60),
    );
    assert_eq!(ran.code, Some(2), "{}\n{}", ran.stdout, ran.stderr);
    assert!(ran.stderr.contains("refusing"), "{}", ran.stderr);
    assert!(!ran.stdout.contains("surge simulate"), "{}", ran.stdout);
    assert!(
        !out.exists(),
        "nothing is written before the target is accepted"
    );

    // The whole rehearsal against the mock.
    let mock = Mock::start(&p, &[]);
    let out = dir.path().join("rehearsal");
    let ran = bounded(rehearse(&mock.url(), &p, &out), Duration::from_secs(60));
    assert_eq!(ran.code, Some(0), "{}\n{}", ran.stdout, ran.stderr);
    let order: Vec<usize> = [
        "== surge simulate",
        "== surge prewarm",
        "== surge run",
        "predicted (simulated) against measured",
    ]
    .iter()
    .map(|step| {
        ran.stdout
            .find(step)
            .unwrap_or_else(|| panic!("no {step:?} in:\n{}", ran.stdout))
    })
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{}", ran.stdout);
    assert!(out.join("report.html").is_file());
    let md = std::fs::read_to_string(out.join("prediction-vs-measured.md")).unwrap();
    assert!(md.contains("simulated") && md.contains("measured"), "{md}");
    for side in ["predicted", "measured"] {
        assert!(
            out.join(side).join("spike").is_dir(),
            "{side} run directory"
        );
    }
    assert_eq!(metric(&mock.metrics(), "surge_mock_cache_prewarmed"), 1.0);
}

/// Runs scripts/nightly.sh against `target` with `baseline`; its outputs go to `out`.
fn nightly(profile: &Path, target: &str, baseline: &Path, out: &Path) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("scripts/nightly.sh"))
        .env("SURGE_BIN", SURGE)
        .env("SURGE_TARGET", target)
        .env("SURGE_PROFILE", profile)
        .env("SURGE_BASELINE", baseline)
        .env("SURGE_OUT", out)
        // The slowed mock adds 1 s to every message; normal runs here answer in ~250 ms.
        .env("SURGE_MAX_REGRESSION", "e2e.p50=+500ms,errors.rate=+5pp")
        .env("GITHUB_STEP_SUMMARY", out.with_extension("step-summary.md"))
        .env_remove("SURGE_RUN_ARGS")
        .env_remove("SURGE_PUSHGATEWAY");
    cmd
}

#[test]
fn nightly_script_exits_1_on_regression_against_a_slowed_mock_and_0_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let p = profile(dir.path(), "nightly-tiny", 8, "");
    let normal = Mock::start(&p, &[]);
    let slowed = Mock::start(&p, &["--fault-latency", "chat=1s@1.0"]);

    // The baseline: a measured run against the normal mock.
    let base_out = dir.path().join("baseline");
    let ran = bounded(
        surge(&[
            "run",
            p.to_str().unwrap(),
            "--target",
            &normal.url(),
            "--out",
            base_out.to_str().unwrap(),
            "--no-progress",
        ]),
        Duration::from_secs(45),
    );
    assert_eq!(ran.code, Some(0), "{}\n{}", ran.stdout, ran.stderr);
    let baseline = std::fs::read_dir(base_out.join("nightly-tiny"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();

    // The control and the slowed run side by side (each is mostly waiting).
    let (ok_out, slow_out) = (dir.path().join("ok"), dir.path().join("slow"));
    let control = {
        let cmd = nightly(&p, &normal.url(), &baseline, &ok_out);
        std::thread::spawn(move || bounded(cmd, Duration::from_secs(50)))
    };
    let slow = bounded(
        nightly(&p, &slowed.url(), &baseline, &slow_out),
        Duration::from_secs(50),
    );
    let control = control.join().unwrap();

    assert_eq!(slow.code, Some(1), "{}\n{}", slow.stdout, slow.stderr);
    let summary = std::fs::read_to_string(slow_out.join("summary.md")).unwrap();
    assert!(summary.contains("surge nightly: FAIL"), "{summary}");
    assert!(
        summary.contains("regression beyond limits: e2e.p50"),
        "{summary}"
    );
    let junit = std::fs::read_to_string(slow_out.join("junit-regression.xml")).unwrap();
    assert!(
        junit.contains("<failure") && junit.contains("e2e.p50"),
        "{junit}"
    );
    assert!(slow_out.join("junit-thresholds.xml").is_file());
    assert!(slow_out.join("report.html").is_file());
    let step = std::fs::read_to_string(slow_out.with_extension("step-summary.md")).unwrap();
    assert!(step.contains("surge nightly: FAIL"), "{step}");

    assert_eq!(
        control.code,
        Some(0),
        "the normal mock passes:\n{}\n{}",
        control.stdout,
        control.stderr
    );
    let summary = std::fs::read_to_string(ok_out.join("summary.md")).unwrap();
    assert!(summary.contains("surge nightly: PASS"), "{summary}");
    assert!(ok_out.join("junit-regression.xml").is_file());

    // No target: bad usage, exit 2.
    let mut cmd = nightly(&p, "", &baseline, &dir.path().join("none"));
    cmd.env_remove("SURGE_TARGET");
    let ran = bounded(cmd, Duration::from_secs(10));
    assert_eq!(ran.code, Some(2), "{}", ran.stderr);
}

/// One model, two clocks: the mock's orchestrator scales by the same target tracking the
/// simulator predicts. One task of one worker, 50 ms of CPU a message, 30 messages a
/// second: the service is saturated, so datapoints (every second) above the 50 % target
/// scale out to 2 tasks and then to the maximum of 4, in the simulator's virtual time and
/// in the mock's wall time alike.
#[test]
fn the_mock_scales_out_as_the_simulator_predicts() {
    let dir = tempfile::tempdir().unwrap();
    let system = repo()
        .join("profiles/system/mangaassist.toml")
        .canonicalize()
        .unwrap();
    let off: String = [
        "gateway",
        "burst",
        "classifier",
        "memory",
        "cache",
        "semantic_cache",
        "precomputed",
        "rag",
        "bedrock",
        "guardrails",
        "format",
    ]
    .iter()
    .map(|l| format!("{l}.enabled = false\n"))
    .collect();
    let p = dir.path().join("scaling.toml");
    std::fs::write(
        &p,
        format!(
            r#"description = "target tracking, simulated and mocked"
seed = 3
duration = "8s"

[system]
file = "{}"
{off}orchestrator.initial_tasks = 1
orchestrator.min_tasks = 1
orchestrator.max_tasks = 4
orchestrator.workers_per_task = 1
orchestrator.vcpu_per_task = 1.0
orchestrator.cpu_per_message = "50ms"
orchestrator.task_start = "200ms"
orchestrator.autoscaling.target_cpu = "50%"
orchestrator.autoscaling.period = "1s"
orchestrator.autoscaling.scale_out_datapoints = 2
orchestrator.autoscaling.scale_in_datapoints = 1000

[traffic]
arrival = "poisson"
conversation_turns = 5
reply_timeout = "30s"
connect_rate = "500/s"

[traffic.stores]
manga_jp = "100%"

[traffic.intents]
order_tracking = "100%"

[[traffic.stages]]
name = "saturated"
duration = "8s"
ramp = "1s"
sessions = 100
message_rate = "1800/min"
"#,
            system.display()
        ),
    )
    .unwrap();

    // The prediction.
    let out = dir.path().join("sim");
    let sim = bounded(
        surge(&[
            "simulate",
            p.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]),
        Duration::from_secs(60),
    );
    assert!(
        sim.code.is_some_and(|c| c <= 1),
        "{}\n{}",
        sim.stdout,
        sim.stderr
    );
    let timeline = std::fs::read_to_string(
        walk(&out)
            .into_iter()
            .find(|f| f.ends_with("timeline.csv"))
            .expect("a timeline"),
    )
    .unwrap();
    let mut rows = timeline.lines();
    let header: Vec<&str> = rows.next().unwrap().split(',').collect();
    let col = header
        .iter()
        .position(|h| *h == "ecs_tasks_running")
        .unwrap();
    let predicted = rows
        .map(|r| r.split(',').nth(col).unwrap().parse::<f64>().unwrap())
        .fold(0.0, f64::max);
    assert_eq!(
        predicted, 4.0,
        "the simulator scales out to the maximum:\n{timeline}"
    );

    // The measurement: the mock's task count while the same traffic runs against it.
    let mock = Mock::start(&p, &[]);
    let running = |text: &str| metric(text, "surge_mock_orchestrator_tasks{state=\"running\"}");
    assert_eq!(running(&mock.metrics()), 1.0, "one task before any traffic");
    let metrics = format!("http://{}/metrics", mock.addr);
    let mut run = surge(&["run", p.to_str().unwrap(), "--target", &mock.url()])
        .args(["--scrape", &metrics])
        .arg("--out")
        .arg(dir.path().join("runs"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut measured = 0.0_f64;
    while Instant::now() < deadline {
        measured = measured.max(running(&mock.metrics()));
        if run.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = run.kill();
    let _ = run.wait();
    assert_eq!(measured, predicted, "the mock scaled to {measured} tasks");

    // The run directory recorded the same, scraped from the mock once per interval.
    let timeline = std::fs::read_to_string(
        walk(&dir.path().join("runs"))
            .into_iter()
            .find(|f| f.ends_with("timeline.csv"))
            .expect("a measured timeline"),
    )
    .unwrap();
    let mut rows = timeline.lines();
    let header: Vec<&str> = rows.next().unwrap().split(',').collect();
    let col = header
        .iter()
        .position(|h| *h == "scrape:surge_mock_orchestrator_tasks:state-running")
        .unwrap_or_else(|| panic!("a scraped column in {header:?}"));
    let scraped: Vec<f64> = rows
        .filter_map(|r| r.split(',').nth(col)?.parse().ok())
        .collect();
    assert_eq!(scraped.first(), Some(&1.0), "{timeline}");
    assert_eq!(
        scraped.iter().copied().fold(0.0, f64::max),
        predicted,
        "{timeline}"
    );
}

#[test]
fn scrape_endpoints_are_checked_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let p = profile(dir.path(), "scrape", 2, "");
    let run = |scrape: &str| {
        let mut c = surge(&[
            "run",
            p.to_str().unwrap(),
            "--target",
            "ws://127.0.0.1:9/chat",
        ]);
        c.args(["--scrape", scrape]).arg("--out").arg(dir.path());
        bounded(c, Duration::from_secs(30))
    };
    let ran = run("ftp://127.0.0.1/metrics");
    assert_eq!(ran.code, Some(2), "{}", ran.stderr);
    assert!(ran.stderr.contains("http://"), "{}", ran.stderr);
    let ran = run("http://metrics.example.com/metrics");
    assert_eq!(ran.code, Some(2), "{}", ran.stderr);
    assert!(ran.stderr.contains("target.allowed"), "{}", ran.stderr);
    // Nothing listens on port 9: the run does not start, and says why.
    let ran = run("http://user:s3cret@127.0.0.1:9/metrics");
    assert_eq!(ran.code, Some(3), "{}", ran.stderr);
    assert!(ran.stderr.contains("--scrape"), "{}", ran.stderr);
    assert!(!ran.stderr.contains("s3cret"), "{}", ran.stderr);
    assert!(
        walk(dir.path()).iter().all(|f| !f.ends_with("run.json")),
        "no run directory"
    );
}

/// A WebSocket client on a plain TCP stream, just enough to meet the mock's gateway: the
/// upgrade, masked text frames out, whole frames in.
struct RawWs(TcpStream);

impl RawWs {
    fn connect(addr: &str) -> RawWs {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET /chat HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
            s.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        RawWs(s)
    }

    /// Sends a text frame (masked with a zero key, so the payload goes as it is).
    fn send(&mut self, text: &str) {
        let payload = text.as_bytes();
        let len = u16::try_from(payload.len()).unwrap();
        let mut frame = vec![0x81];
        if len < 126 {
            frame.push(0x80 | len as u8);
        } else {
            frame.push(0x80 | 126);
            frame.extend(len.to_be_bytes());
        }
        frame.extend([0, 0, 0, 0]);
        frame.extend(payload);
        self.0.write_all(&frame).unwrap();
    }

    /// The next frame from the server: opcode and payload.
    fn next(&mut self) -> (u8, Vec<u8>) {
        let mut head = [0u8; 2];
        self.0.read_exact(&mut head).unwrap();
        let len = match head[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                self.0.read_exact(&mut b).unwrap();
                u64::from(u16::from_be_bytes(b))
            }
            127 => {
                let mut b = [0u8; 8];
                self.0.read_exact(&mut b).unwrap();
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        };
        let mut payload = vec![0u8; usize::try_from(len).unwrap()];
        self.0.read_exact(&mut payload).unwrap();
        (head[0] & 0x0f, payload)
    }
}

#[test]
fn the_mock_holds_the_gateway_limits_a_profile_overrides_and_sends_api_gateway_frames() {
    let dir = tempfile::tempdir().unwrap();
    let p = profile(dir.path(), "gateway", 10, "");
    let text = std::fs::read_to_string(&p).unwrap().replacen(
        "file = \"",
        "gateway.idle_timeout = \"1s\"\ngateway.per_user_rate = \"1/min\"\nfile = \"",
        1,
    );
    std::fs::write(&p, text).unwrap();
    let mock = Mock::start(&p, &["--gateway-frames", "aws"]);
    let opened = Instant::now();
    let mut ws = RawWs::connect(&mock.addr);
    for id in ["m-1", "m-2"] {
        ws.send(&format!(
            r#"{{"type":"message","session":"s-1","id":"{id}","store":"manga_jp","text":"Where is my order?"}}"#
        ));
    }
    // m-1 is answered, m-2 throttled by the per-user rate in API Gateway's frame, then
    // the silent connection is closed after the idle timeout.
    let mut texts = Vec::new();
    let close = loop {
        assert!(texts.len() < 100, "{texts:?}");
        match ws.next() {
            (0x1, payload) => texts.push(String::from_utf8(payload).unwrap()),
            (0x8, payload) => break payload,
            _ => {}
        }
    };
    let after = opened.elapsed();
    assert_eq!(
        close[..2],
        1001u16.to_be_bytes(),
        "Going away; frames {texts:?}"
    );
    assert!(after >= Duration::from_secs(1), "closed after {after:?}");
    let throttle: Vec<serde_json::Value> = texts
        .iter()
        .map(|t| serde_json::from_str(t).unwrap())
        .filter(|v: &serde_json::Value| v.get("connectionId").is_some())
        .collect();
    assert_eq!(throttle.len(), 1, "{texts:?}");
    assert_eq!(throttle[0]["message"], "Too Many Requests");
    assert!(throttle[0].get("id").is_none(), "no message id: {texts:?}");
    assert!(
        texts.iter().any(|t| t.contains(r#""type":"done""#)),
        "{texts:?}"
    );
    let series = "surge_mock_chat_closes_total{reason=\"idle_timeout\"}";
    let mut seen = 0.0;
    for _ in 0..50 {
        seen = metric(&mock.metrics(), series);
        if seen == 1.0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(seen, 1.0, "{series}");
}

/// Every file below `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}
