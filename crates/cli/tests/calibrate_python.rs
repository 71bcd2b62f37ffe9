//! Validation 2 of `surge calibrate`: a chatbot surge did not write.
//!
//! `tests/fixtures/pool_chatbot.py` is a WebSocket chatbot in Python that shares neither
//! surge's model nor its code: a fixed pool of workers (service times from Python's own
//! gamma generator), then a streamer with its own log-normal time to first token and
//! exponential gaps between tokens, speaking a frame shape of its own, with none of the
//! layers surge's model has around them (gateway, classifier, memory). Like a service in
//! production it publishes its pool's busy worker-seconds on `/metrics`, which the runs
//! scrape. Its numbers stay in this test. The calibrator sees a start model a user would
//! write for it (a guess) and two measured runs, at about 30 % and 65 % of its workers'
//! capacity; the fitted model must then predict a three-minute run at about 78 % within
//! 15 % on p50 and p99 of e2e and TTFT, where the guess misses.
//!
//! Why four workers and three minutes: the p99 of one run near saturation is itself a
//! noisy figure. Eight seeds of one model, simulating three minutes at 79 % of a pool of
//! three 75-ms workers, gave an e2e p99 of 1.08 to 1.29 s, and runs of the chatbot so
//! set measured 0.95 to 1.25 s; four workers of 60 ms answer two thirds more messages in
//! the same time. And why the busy time: fitted from latencies alone, the service time
//! came out at 63 ms for 75 in one CI run, 82 ms in the next, and the run at 79 % was
//! missed by 16 % and 38 %; with the utilisation law it is within a few percent. Python's
//! own event loop makes the service a little slower as the load grows (busy time per
//! message 8 % above the fit at the low level, 6 % below at the mid one), which the
//! model does not describe and the fit splits. And why gamma's shape is 1 (exponential
//! service): with shape 1.5 the pool waits less than an exponential pool of the same mean;
//! fitted at 65 %, the model then puts the capacity 9 % too high and under-predicts the
//! 85 % run by 12 % (p50) to 24 % (p99): a model-form error, recorded in
//! results/BENCHMARKS.md.
//!
//! Python comes from $SURGE_WS_PYTHON or `.venv/ws` (scripts/test.sh installs the
//! `websockets` package there); without one the test says so and passes, except under
//! CI=true, where it fails.
//!
//! Its own test binary, so no other test competes for the cores while it measures.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::calibration::{
    Verdict, judge, only_run, repo, summary, surge, work_dir, write_profile,
};

/// The chatbot's numbers: hidden from the calibrator.
struct Hidden {
    workers: u32,
    service_mean_s: f64,
    service_shape: f64,
    ttft_p50_s: f64,
    ttft_sigma: f64,
    token_rate: f64,
}

const HIDDEN: Hidden = Hidden {
    workers: 4,
    service_mean_s: 0.060,
    service_shape: 1.0,
    ttft_p50_s: 0.2,
    ttft_sigma: 0.3,
    token_rate: 140.0,
};

impl Hidden {
    fn capacity(&self) -> f64 {
        f64::from(self.workers) / self.service_mean_s
    }
}

/// What a user who knows the chatbot's architecture, but not its numbers, would start
/// from: no RAG, guardrails, caches or burst workers; one model, streamed; a pool of the
/// workers the deployment has, their service time a guess.
fn start_model(fitted: Option<&Path>) -> String {
    let protocol = r#"[protocol]
send = '{"op":"say","chat":"{session}","seq":"{message}","text":"{text}"}'
correlate = "id"
message_id = "/seq"
token_text = "/piece"
model = "/engine"
token = { pointer = "/kind", equals = "chunk" }
done = { pointer = "/kind", equals = "finished" }
error = { pointer = "/kind", equals = "refused" }
"#;
    if let Some(f) = fitted {
        return format!("[system]\nfile = \"{}\"\n{protocol}", f.display());
    }
    let mangaassist = repo()
        .join("profiles/system/mangaassist.toml")
        .canonicalize()
        .unwrap();
    format!(
        r#"[system]
file = "{}"
bedrock.streaming = true
bedrock.tiering = false
burst.enabled = false
rag.enabled = false
guardrails.enabled = false
format.enabled = false
cache.enabled = false
orchestrator.initial_tasks = {workers}
orchestrator.min_tasks = 1
orchestrator.max_tasks = 50
orchestrator.autoscaling.enabled = false
orchestrator.cpu_per_message = "exp(mean=50ms)"
bedrock.models.sonnet.ttft = "lognormal(p50=300ms, p99=800ms)"
bedrock.models.sonnet.output_rate = "250/s"
bedrock.models.sonnet.requests_per_minute = 1000000
bedrock.models.sonnet.tokens_per_minute = 1000000000
memory.previous_peak_writes = "1000000/min"
memory.previous_peak_reads = "1000000/min"
intents.complex_product_question.output_tokens = "uniform(8, 22)"
{protocol}"#,
        mangaassist.display(),
        workers = HIDDEN.workers,
    )
}

fn write(path: &Path, fitted: Option<&Path>, sessions: u32, rate: f64, duration: &str) {
    write_profile(
        path,
        &start_model(fitted),
        "complex_product_question = \"100%\"\n",
        sessions,
        rate,
        duration,
    );
}

/// The chatbot, serving on a loopback port.
struct Chatbot(support::python::Fixture);

impl Chatbot {
    fn start(py: &Path, h: &Hidden) -> Self {
        let mut cmd = Command::new(py);
        cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pool_chatbot.py"))
            .args(["--workers", &h.workers.to_string()])
            .args(["--service-mean", &h.service_mean_s.to_string()])
            .args(["--service-shape", &h.service_shape.to_string()])
            .args(["--ttft-p50", &h.ttft_p50_s.to_string()])
            .args(["--ttft-sigma", &h.ttft_sigma.to_string()])
            .args(["--token-rate", &h.token_rate.to_string()])
            .args(["--lifetime", "900"]);
        Self(support::python::Fixture::start(cmd))
    }
}

/// What is fitted: every latency and rate of the chatbot. Not its worker count, which a
/// team knows from its deployment (the start model states it): two levels of a few
/// hundred to a thousand answers each tell the pool's capacity well, but not how it
/// splits into workers and service time. Fitted here too (from latencies alone, with the
/// chatbot at three workers of 75 ms), three workers of 74 ms and one of 23 ms (40 and 44
/// messages/s) matched the two runs within half a point of each other, and the one-worker
/// pool predicted the third level 7 % (p50) to 19 % (p99) short.
const FIT: &str = "orchestrator.cpu_per_message,classifier.latency,memory.read_latency,\
                   bedrock.models.sonnet.ttft,bedrock.models.sonnet.output_rate";

/// Each user sends about one message every four seconds.
const PER_SESSION: f64 = 0.23;

#[test]
fn calibrated_on_two_load_levels_the_model_predicts_a_third() {
    let Some(py) = support::python::or_skip(&support::python::WEBSOCKETS) else {
        return;
    };
    let work = work_dir("python");
    let work = work.path.as_path();
    let bot = Chatbot::start(&py, &HIDDEN);
    let target = format!("ws://127.0.0.1:{}/", bot.0.port);
    let metrics = format!("http://127.0.0.1:{}/metrics", bot.0.port);

    // (name, offered utilisation, seconds): users wait for their answers before sending
    // again, so what they send comes out about 8 % lower.
    let levels = [("low", 0.32, 45), ("mid", 0.72, 45), ("high", 0.80, 180)];
    let mut runs = Vec::new();
    for (name, utilisation, seconds) in levels {
        let rate = HIDDEN.capacity() * utilisation;
        let sessions = (rate / PER_SESSION).round() as u32;
        let p = work.join(format!("{name}.toml"));
        write(&p, None, sessions, rate, &format!("{seconds}s"));
        let out = work.join(format!("measured-{name}"));
        surge(
            &[
                "run",
                p.to_str().unwrap(),
                "--target",
                &target,
                "--scrape",
                &metrics,
                "--out",
                out.to_str().unwrap(),
            ],
            Duration::from_secs(seconds + 120),
        );
        runs.push((name, sessions, rate, seconds, only_run(&out)));
    }
    drop(bot);

    // The levels are where they were meant to be, by what was actually sent.
    let utilisation: Vec<f64> = runs
        .iter()
        .map(|(.., dir)| {
            let s = summary(dir);
            assert_eq!(
                s["counts"]["completed"], s["counts"]["sent"],
                "every message answered"
            );
            s["rates"]["sent_per_s"].as_f64().unwrap() / HIDDEN.capacity()
        })
        .collect();
    assert!(
        utilisation[0] <= 0.35,
        "low level at {:.0}%",
        utilisation[0] * 100.0
    );
    assert!(
        (0.5..=0.7).contains(&utilisation[1]),
        "mid level at {:.0}%",
        utilisation[1] * 100.0
    );
    assert!(
        utilisation[2] >= 0.72,
        "high level at {:.0}%",
        utilisation[2] * 100.0
    );

    let start = work.join("start.toml");
    write(&start, None, 100, 10.0, "40s");
    let fitted = work.join("fitted.toml");
    let report = surge(
        &[
            "calibrate",
            runs[0].4.to_str().unwrap(),
            runs[1].4.to_str().unwrap(),
            "--profile",
            start.to_str().unwrap(),
            "--fit",
            FIT,
            "--out",
            fitted.to_str().unwrap(),
        ],
        Duration::from_secs(600),
    );
    eprintln!("{report}");

    let (name, sessions, rate, seconds, dir) = &runs[2];
    let on_fitted = work.join("predict-fitted.toml");
    write(
        &on_fitted,
        Some(&fitted),
        *sessions,
        *rate,
        &format!("{seconds}s"),
    );
    let on_start = work.join("predict-start.toml");
    write(&on_start, None, *sessions, *rate, &format!("{seconds}s"));
    let Verdict {
        miss,
        start_miss,
        line,
    } = judge(name, utilisation[2], dir, &on_fitted, &on_start, work);
    eprintln!("{line}");
    assert!(
        start_miss > 0.15,
        "the start model must miss for the test to mean anything:\n{line}"
    );
    assert!(miss <= 0.15, "prediction off by more than 15 %:\n{line}");
}
