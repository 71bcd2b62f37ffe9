//! Validation 1 of `surge calibrate`: the mock with hidden numbers.
//!
//! `surge mock` serves a system whose numbers are the shipped ones times seeded random
//! factors (eight keys: both models' TTFT and output rate, the orchestrator's service
//! time and task count, classifier and memory latency). The factors stay in this test:
//! the calibrator sees only the shipped profile and two measured runs, at ≤ 40 % and
//! ≈ 60 % orchestrator utilisation, scraping the mock's `/metrics`. The fitted model must
//! then predict two runs it has not seen — one at about 85 % utilisation, one with twice
//! the sessions of the first — to within 10 % on p50 and p99 of e2e and TTFT, where the
//! shipped model misses by more.
//!
//! Near saturation a 10 % error in the service time is a factor in the wait: fitted from
//! latencies and a busy-workers gauge sampled once a second, two fits gave 29.5 and
//! 31.9 ms against 28 ms hidden, and the second missed an 83 % run by 83 %. The mock's
//! counter of busy worker-seconds (`surge_mock_orchestrator_busy_seconds_total`) gives
//! the calibrator the utilisation law exactly, which pins the service time's mean. And
//! the mock's workers keep the model's schedule, not their wake-ups' (`surge_mock`'s
//! pool): before they did, the host's scheduling jitter made every service a little
//! longer the busier the two cores were, and two 85 % runs of one system measured an e2e
//! p50 of 428 and 630 ms. The 85 % run lasts two minutes: over one, its p99 alone moves
//! by ±5 % from run to run, half the limit.
//!
//! Its own test binary, so no other test competes for the cores while it measures.

mod support;

use std::path::Path;
use std::time::Duration;

use support::calibration::{
    Mock, Numbers, SHIPPED, Verdict, judge, only_run, profile, summary, surge, work_dir,
};

/// A factor in [0.75, 1.4) from a seeded generator (splitmix64).
fn factors(seed: u64, n: usize) -> Vec<f64> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            0.75 + 0.65 * (z >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect()
}

fn hidden() -> Numbers {
    let f = factors(20_261_203, 8);
    Numbers {
        tasks: ((f64::from(SHIPPED.tasks) * f[0]).round() as u32).max(2),
        cpu_ms: (SHIPPED.cpu_ms * f[1]).round(),
        classifier_ms: (SHIPPED.classifier_ms * f[2]).round(),
        memory_ms: (SHIPPED.memory_ms * f[3]).round(),
        sonnet_ttft_ms: (SHIPPED.sonnet_ttft_ms * f[4]).round(),
        haiku_ttft_ms: (SHIPPED.haiku_ttft_ms * f[5]).round(),
        sonnet_rate: (SHIPPED.sonnet_rate * f[6]).round(),
        haiku_rate: (SHIPPED.haiku_rate * f[7]).round(),
    }
}

/// Each user sends about one message every four seconds.
const PER_SESSION: f64 = 0.23;

struct Level {
    name: &'static str,
    /// Offered orchestrator utilisation on the hidden system.
    utilisation: f64,
    sessions_of: Option<&'static str>,
    /// How long the level is measured.
    duration: &'static str,
}

fn measure(
    mock: &Mock,
    work: &Path,
    level: &Level,
    sessions: u32,
    rate: f64,
) -> std::path::PathBuf {
    let name = level.name;
    let p = work.join(format!("{name}.toml"));
    profile(&p, &SHIPPED, None, sessions, rate, level.duration);
    let out = work.join(format!("measured-{name}"));
    let target = format!("ws://{}/chat", mock.addr);
    let scrape = format!("http://{}/metrics", mock.addr);
    surge(
        &[
            "run",
            p.to_str().unwrap(),
            "--target",
            &target,
            "--scrape",
            &scrape,
            "--out",
            out.to_str().unwrap(),
        ],
        Duration::from_secs(240),
    );
    only_run(&out)
}

#[test]
fn calibrated_on_two_load_levels_the_model_predicts_a_third_and_twice_the_sessions() {
    let work = work_dir("mock");
    let work = work.path.as_path();
    let truth = hidden();
    assert_ne!(truth, SHIPPED);
    let capacity = truth.capacity();
    let hidden_profile = work.join("hidden.toml");
    profile(&hidden_profile, &truth, None, 100, 10.0, "40s");
    let mock = Mock::start(&hidden_profile);

    let levels = [
        Level {
            name: "low",
            utilisation: 0.40,
            sessions_of: None,
            duration: "40s",
        },
        Level {
            name: "mid",
            utilisation: 0.62,
            sessions_of: None,
            duration: "40s",
        },
        Level {
            name: "high",
            utilisation: 0.90,
            sessions_of: None,
            // A p99 near saturation over 60 s moves ±5 % from run to run; over 120 s, ±3.5 %.
            duration: "120s",
        },
        Level {
            name: "twice",
            utilisation: 0.80,
            sessions_of: Some("low"),
            duration: "60s",
        },
    ];
    let mut runs = Vec::new();
    for level in &levels {
        // Offered load; the users' waiting for answers sends a little less.
        let rate = capacity * level.utilisation;
        let sessions = match level.sessions_of {
            Some(of) => {
                2 * runs
                    .iter()
                    .find(|(n, _, _)| *n == of)
                    .map(|(_, s, _)| *s)
                    .unwrap()
            }
            None => (rate / PER_SESSION).round() as u32,
        };
        let dir = measure(&mock, work, level, sessions, rate);
        runs.push((level.name, sessions, dir));
    }
    drop(mock);
    let sent_utilisation = |dir: &Path| {
        summary(dir)["rates"]["sent_per_s"].as_f64().unwrap() * truth.cpu_ms
            / 1000.0
            / f64::from(truth.tasks)
    };
    let utilisation: Vec<f64> = runs.iter().map(|(_, _, d)| sent_utilisation(d)).collect();
    assert!(
        utilisation[0] <= 0.40,
        "low level at {:.0}%",
        utilisation[0] * 100.0
    );
    assert!(
        (0.5..=0.7).contains(&utilisation[1]),
        "mid level at {:.0}%",
        utilisation[1] * 100.0
    );
    assert!(
        utilisation[2] >= 0.83,
        "high level at {:.0}%",
        utilisation[2] * 100.0
    );

    let fitted = work.join("fitted.toml");
    let shipped = work.join("shipped.toml");
    profile(&shipped, &SHIPPED, None, 100, 10.0, "40s");
    let report = surge(
        &[
            "calibrate",
            runs[0].2.to_str().unwrap(),
            runs[1].2.to_str().unwrap(),
            "--profile",
            shipped.to_str().unwrap(),
            "--out",
            fitted.to_str().unwrap(),
            "--json",
        ],
        Duration::from_secs(600),
    );
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let tasks = report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == "orchestrator.initial_tasks")
        .unwrap_or_else(|| panic!("the task count is fitted or observed: {report:#}"));
    assert_eq!(tasks["fitted"], truth.tasks.to_string(), "{tasks}");

    let fitted_keys: Vec<String> = report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| format!("{} {} -> {}", k["key"], k["start"], k["fitted"]))
        .collect();
    let mut lines = vec![format!(
        "truth {truth:?}; fitted {}",
        fitted_keys.join(", ")
    )];
    for (i, (name, sessions, dir)) in runs.iter().enumerate().skip(2) {
        let traffic_rate = capacity * levels[i].utilisation;
        let on_fitted = work.join(format!("predict-{name}.toml"));
        profile(
            &on_fitted,
            &SHIPPED,
            Some(&fitted),
            *sessions,
            traffic_rate,
            levels[i].duration,
        );
        let on_shipped = work.join(format!("shipped-{name}.toml"));
        profile(
            &on_shipped,
            &SHIPPED,
            None,
            *sessions,
            traffic_rate,
            levels[i].duration,
        );
        let Verdict {
            miss,
            start_miss: shipped_miss,
            line,
        } = judge(name, utilisation[i], dir, &on_fitted, &on_shipped, work);
        lines.push(line);
        // For the test to mean anything the shipped model must miss the 85 % run by more
        // than the limit (it does by 15–21 %), and do worse than the fitted one on both.
        // Not the limit at 75 %: there it misses by 8.7–12.1 % (six runs), too close to it.
        assert!(
            shipped_miss > miss && (*name != "high" || shipped_miss > 0.10),
            "the shipped model must miss for the test to mean anything:\n{}",
            lines.join("\n")
        );
        assert!(
            miss <= 0.10,
            "prediction off by more than 10 %:\n{}",
            lines.join("\n")
        );
    }
    eprintln!("{}", lines.join("\n"));
}
