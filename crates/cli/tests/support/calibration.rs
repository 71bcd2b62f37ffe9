//! What the calibration validations share: the scenario (a small fixed orchestrator,
//! short streamed answers, quotas out of the way), profiles written from numbers, the
//! mock as a child process, measured runs, and predictions averaged over seeds.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const SURGE: &str = env!("CARGO_BIN_EXE_surge");

/// Where a validation works: a fresh temporary directory, or the one named by
/// `SURGE_VALIDATION_KEEP` (kept afterwards, to re-run the calibration on its measured runs).
pub struct Work {
    _temp: Option<tempfile::TempDir>,
    pub path: PathBuf,
}

pub fn work_dir(test: &str) -> Work {
    match std::env::var_os("SURGE_VALIDATION_KEEP") {
        Some(root) => {
            let path = PathBuf::from(root).join(test);
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            eprintln!("measured runs kept in {}", path.display());
            Work { _temp: None, path }
        }
        None => {
            let temp = tempfile::tempdir().unwrap();
            Work {
                path: temp.path().to_path_buf(),
                _temp: Some(temp),
            }
        }
    }
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The numbers of the system a profile describes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Numbers {
    pub tasks: u32,
    pub cpu_ms: f64,
    pub classifier_ms: f64,
    pub memory_ms: f64,
    pub sonnet_ttft_ms: f64,
    pub haiku_ttft_ms: f64,
    pub sonnet_rate: f64,
    pub haiku_rate: f64,
}

/// What the shipped profile says.
pub const SHIPPED: Numbers = Numbers {
    tasks: 4,
    cpu_ms: 20.0,
    classifier_ms: 20.0,
    memory_ms: 10.0,
    sonnet_ttft_ms: 300.0,
    haiku_ttft_ms: 100.0,
    sonnet_rate: 250.0,
    haiku_rate: 1000.0,
};

impl Numbers {
    /// Messages per second the orchestrator serves at full utilisation.
    pub fn capacity(&self) -> f64 {
        f64::from(self.tasks) / (self.cpu_ms / 1000.0)
    }
}

/// A profile of `sessions` users sending `rate` messages/s in total for `duration`,
/// on a system with `n`'s numbers (or, with `system_file`, on that system model).
pub fn profile(
    path: &Path,
    n: &Numbers,
    system_file: Option<&Path>,
    sessions: u32,
    rate: f64,
    duration: &str,
) {
    let mangaassist = repo()
        .join("profiles/system/mangaassist.toml")
        .canonicalize()
        .unwrap();
    let system = match system_file {
        Some(f) => format!("[system]\nfile = \"{}\"\n", f.display()),
        None => format!(
            r#"[system]
file = "{}"
bedrock.streaming = true
bedrock.tiering = true
orchestrator.initial_tasks = {}
orchestrator.min_tasks = 1
orchestrator.max_tasks = 50
orchestrator.autoscaling.enabled = false
orchestrator.cpu_per_message = "exp(mean={}ms)"
classifier.latency = "{}ms"
memory.read_latency = "{}ms"
bedrock.models.sonnet.ttft = "{}ms"
bedrock.models.haiku.ttft = "{}ms"
bedrock.models.sonnet.output_rate = "{}/s"
bedrock.models.haiku.output_rate = "{}/s"
bedrock.models.sonnet.requests_per_minute = 1000000
bedrock.models.sonnet.tokens_per_minute = 1000000000
bedrock.models.haiku.requests_per_minute = 1000000
bedrock.models.haiku.tokens_per_minute = 1000000000
memory.previous_peak_writes = "1000000/min"
memory.previous_peak_reads = "1000000/min"
intents.recommendation.output_tokens = "uniform(10, 20)"
intents.complex_product_question.output_tokens = "uniform(10, 20)"
intents.simple_faq.output_tokens = "uniform(10, 20)"
intents.chitchat.output_tokens = "uniform(10, 20)"
"#,
            mangaassist.display(),
            n.tasks,
            n.cpu_ms,
            n.classifier_ms,
            n.memory_ms,
            n.sonnet_ttft_ms,
            n.haiku_ttft_ms,
            n.sonnet_rate,
            n.haiku_rate
        ),
    };
    write_profile(path, &system, MIXED_INTENTS, sessions, rate, duration);
}

/// The intent mix of the mock validation: the shipped one, templates and both tiers.
pub const MIXED_INTENTS: &str = r#"product_info = "40%"
order_tracking = "20%"
recommendation = "15%"
complex_product_question = "10%"
simple_faq = "10%"
chitchat = "5%"
"#;

/// A profile of `sessions` users sending `rate` messages/s in total for `duration`, with
/// the intent shares `intents` (TOML lines), after `head`: the sections that come before
/// `[traffic]` (`[system]`, `[protocol]`).
pub fn write_profile(
    path: &Path,
    head: &str,
    intents: &str,
    sessions: u32,
    rate: f64,
    duration: &str,
) {
    let text = format!(
        r#"description = "calibration scenario"
seed = 7
{head}
[traffic]
arrival = "poisson"
conversation_turns = 5
reply_timeout = "20s"
connect_rate = "500/s"
[traffic.stores]
manga_jp = "60%"
comics_us = "25%"
kindle = "15%"
[traffic.intents]
{intents}[[traffic.stages]]
name = "steady"
duration = "{duration}"
ramp = "5s"
sessions = {sessions}
message_rate = "{rate:.1}/s"
"#
    );
    std::fs::write(path, text).unwrap();
}

/// A `surge mock` process on a free loopback port, killed when dropped.
/// A steady test load: `sessions` sessions of order-tracking messages to one store at a
/// constant `rate` for `duration`, on the shipped system model, plus `thresholds` lines.
pub struct Steady<'a> {
    pub name: &'a str,
    pub seed: u64,
    pub duration: &'a str,
    pub sessions: u32,
    pub rate: &'a str,
    pub thresholds: &'a str,
}

impl Steady<'_> {
    /// Writes the profile as `dir/NAME.toml`.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let system = repo()
            .join("profiles/system/mangaassist.toml")
            .canonicalize()
            .unwrap();
        let text = format!(
            r#"description = "{name} test"
seed = {seed}
[system]
file = "{system}"
[traffic]
arrival = "constant"
conversation_turns = 5
reply_timeout = "5s"
connect_rate = "500/s"
[traffic.stores]
manga_jp = "100%"
[traffic.intents]
order_tracking = "100%"
[[traffic.stages]]
name = "hold"
duration = "{duration}"
sessions = {sessions}
message_rate = "{rate}"
[thresholds]
{thresholds}
"#,
            name = self.name,
            seed = self.seed,
            system = system.display(),
            duration = self.duration,
            sessions = self.sessions,
            rate = self.rate,
            thresholds = self.thresholds,
        );
        let path = dir.join(format!("{}.toml", self.name));
        std::fs::write(&path, text).unwrap();
        path
    }
}

pub struct Mock {
    child: Child,
    pub addr: String,
}

impl Mock {
    pub fn start(profile: &Path) -> Mock {
        Self::start_with(profile, &[])
    }

    /// `surge mock` with extra flags (faults, workers).
    pub fn start_with(profile: &Path, extra: &[&str]) -> Mock {
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
            for _ in lines {}
        });
        let Ok(first) = rx.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            panic!("surge mock did not say where it listens within 30 s");
        };
        let addr = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {first}"))
            .trim()
            .to_string();
        Mock { child, addr }
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a `surge` process ended: its exit code (`None` when a signal ended it), stdout and
/// stderr.
pub struct Ended {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `surge` to its end (bounded by `limit`: killed and a panic past it).
pub fn surge_ended(args: &[&str], limit: Duration) -> Ended {
    let mut child = Command::new(SURGE)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        if let Some(_status) = child.try_wait().unwrap() {
            break;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("surge {args:?} did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    Ended {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `surge` to its end (bounded by `limit`), returning stdout; panics with its output
/// when it fails.
pub fn surge(args: &[&str], limit: Duration) -> String {
    let ended = surge_ended(args, limit);
    assert!(
        ended.code == Some(0),
        "surge {args:?} failed ({:?}):\n{}\n{}",
        ended.code,
        ended.stdout,
        ended.stderr
    );
    ended.stdout
}

/// The one run directory under `root` (a fresh `--out` per run).
pub fn only_run(root: &Path) -> PathBuf {
    let mut found = Vec::new();
    for profile in std::fs::read_dir(root).unwrap() {
        for run in std::fs::read_dir(profile.unwrap().path()).unwrap() {
            found.push(run.unwrap().path());
        }
    }
    assert_eq!(found.len(), 1, "{found:?}");
    found.pop().unwrap()
}

pub fn summary(run: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap()
}

/// p50 and p99 of e2e and TTFT of a summary, in that order.
pub fn headline(summary: &serde_json::Value) -> [f64; 4] {
    let at = |tag: &str, p: &str| summary["latency_ms"][tag][p].as_f64().unwrap();
    [
        at("e2e", "p50"),
        at("e2e", "p99"),
        at("ttft", "p50"),
        at("ttft", "p99"),
    ]
}

pub const HEADLINE: [&str; 4] = ["e2e.p50", "e2e.p99", "ttft.p50", "ttft.p99"];

/// The headline figures of `profile` simulated with seeds 1..=seeds, averaged.
pub fn predict(profile: &Path, seeds: u64, work: &Path) -> [f64; 4] {
    let mut sum = [0.0; 4];
    for seed in 1..=seeds {
        let out = work.join(format!("predict-{seed}"));
        surge(
            &[
                "simulate",
                profile.to_str().unwrap(),
                "--seed",
                &seed.to_string(),
                "--out",
                out.to_str().unwrap(),
            ],
            Duration::from_secs(300),
        );
        let h = headline(&summary(&only_run(&out)));
        for (s, v) in sum.iter_mut().zip(h) {
            *s += v;
        }
        std::fs::remove_dir_all(&out).unwrap();
    }
    sum.map(|s| s / seeds as f64)
}

/// The largest relative miss of `predicted` against `measured`, and which figure it is.
pub fn worst_miss(predicted: &[f64; 4], measured: &[f64; 4]) -> (f64, &'static str) {
    predicted
        .iter()
        .zip(measured)
        .zip(HEADLINE)
        .map(|((p, m), name)| ((p / m - 1.0).abs(), name))
        .fold((0.0, ""), |a, b| if b.0 > a.0 { b } else { a })
}

/// A measured run's headline figures against the predictions of the fitted model and of
/// the model the fit started from (4 seeds each).
pub struct Verdict {
    /// The fitted model's largest relative miss.
    pub miss: f64,
    /// The start model's largest relative miss.
    pub start_miss: f64,
    /// Both, figure by figure, for the test's output.
    pub line: String,
}

/// Simulates `on_fitted` and `on_start` (the measured run's traffic on each model) and
/// compares them with the measured run `dir`, at `utilisation`.
pub fn judge(
    name: &str,
    utilisation: f64,
    dir: &Path,
    on_fitted: &Path,
    on_start: &Path,
    work: &Path,
) -> Verdict {
    let measured = headline(&summary(dir));
    let fitted = predict(on_fitted, 8, work);
    let start = predict(on_start, 4, work);
    let (miss, figure) = worst_miss(&fitted, &measured);
    let (start_miss, _) = worst_miss(&start, &measured);
    let line = format!(
        "{name} ({:.0}% utilisation): measured {measured:?}, fitted {fitted:?} \
         (worst {figure} {:.1}%), start {start:?} (worst {:.1}%)",
        utilisation * 100.0,
        miss * 100.0,
        start_miss * 100.0
    );
    Verdict {
        miss,
        start_miss,
        line,
    }
}
