//! What a sweep leaves behind: `sweep.json` (the steps and the answer, for machines),
//! the step table (for people, printed and in `sweep.html`) and the curves of latency and
//! throughput against the offered rate, where the knee shows.

use std::path::Path;

use serde_json::json;
use surge_analyze::fmt;
use surge_analyze::render::{html, text};
use surge_analyze::svg::{Line, LineChart, Mark, XAxis};
use surge_analyze::tables::{Table, mark};

use crate::profile::rate_label;
use crate::steps::Sessions;
use crate::sweep::{Ending, Step, Sweep};

/// The value of the `schema` field of sweep.json.
pub const SWEEP_SCHEMA: &str = "surge.sweep/v1";

/// `sweep.json` of a sweep so far.
pub fn to_json(sweep: &Sweep) -> serde_json::Value {
    let steps: Vec<_> = sweep
        .steps
        .iter()
        .map(|s| {
            let mut row = json!({
                "index": s.index,
                "rate_per_min": s.rate_per_min,
                "sessions": s.sessions,
                "passed": s.verdict.passed(),
                "verdict": s.verdict.name(),
                "reasons": s.verdict.reasons(),
                "dir": relative(&s.dir, &sweep.dir),
            });
            if let (Some(obj), Ok(serde_json::Value::Object(figures))) =
                (row.as_object_mut(), serde_json::to_value(&s.figures))
            {
                obj.extend(figures);
            }
            row
        })
        .collect();
    json!({
        "schema": SWEEP_SCHEMA,
        "profile": sweep.profile,
        "target": sweep.target,
        "hold_s": sweep.hold.as_secs_f64(),
        "sessions": match sweep.sessions {
            Sessions::Scaled { per_session_per_min } =>
                json!({ "scaled": { "per_session_per_min": per_session_per_min } }),
            Sessions::Fixed(n) => json!({ "fixed": n }),
        },
        "rates_per_min": sweep.asked,
        "steps": steps,
        "ending": sweep.ending.name(),
        "ending_reason": match &sweep.ending {
            Ending::CouldNotRun(why) => Some(why.as_str()),
            _ => None,
        },
        "max_sustainable_rate_per_min": sweep.max_sustainable_rate_per_min(),
        "predictions": sweep.predicted,
        "predicted_max_sustainable_rate_per_min": sweep.predicted_max_sustainable_rate_per_min(),
    })
}

fn relative(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// Writes `sweep.json` and `sweep.html` into the sweep directory.
pub fn write(sweep: &Sweep) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(&to_json(sweep)).map_err(std::io::Error::other)?;
    text.push('\n');
    write_atomically(&sweep.dir.join("sweep.json"), &text)?;
    write_atomically(&sweep.dir.join("sweep.html"), &page(sweep))
}

/// A reader never sees half a file, even after Ctrl-C.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

fn opt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), fmt::ms)
}

/// The step table: one row per step that ran.
pub fn table(sweep: &Sweep) -> Table {
    let mut t = Table::new(
        "steps",
        format!(
            "Sweep of {} against {} ({} held per step)",
            sweep.profile, sweep.target, sweep.hold
        ),
        &[
            "step", "verdict", "rate/min", "sessions", "sent/min", "good/min", "good", "e2e p50",
            "e2e p99", "ttft p50", "ttft p99", "errors", "lag p99",
        ],
        2,
    );
    let predicted = !sweep.predicted.is_empty();
    if predicted {
        t.header
            .extend(["sim".to_string(), "sim e2e p99".to_string()]);
    }
    for s in &sweep.steps {
        let f = &s.figures;
        let mut row = vec![
            format!("{:02}", s.index),
            s.verdict.name().to_string(),
            rate_label(s.rate_per_min),
            fmt::count(s.sessions),
            fmt::num(f.sent_per_s * 60.0),
            f.goodput_per_s
                .map_or_else(|| "—".into(), |g| fmt::num(g * 60.0)),
            f.goodput_ratio.map_or_else(|| "—".into(), fmt::pct),
            opt_ms(f.e2e_p50_ms),
            opt_ms(f.e2e_p99_ms),
            opt_ms(f.ttft_p50_ms),
            opt_ms(f.ttft_p99_ms),
            fmt::pct(f.error_ratio),
            opt_ms(f.lag_p99_ms),
        ];
        if predicted {
            let p = sweep.prediction(s.rate_per_min);
            row.push(p.map_or_else(|| "—".into(), |p| mark(p.passed).into()));
            row.push(opt_ms(p.and_then(|p| p.figures.e2e_p99_ms)));
        }
        t.rows.push(row);
    }
    t.note = Some(match predicted_answer(sweep) {
        Some(p) => format!("{}\n{p}", answer(sweep)),
        None => answer(sweep),
    });
    t
}

/// The sentence that answers the sweep's question.
pub fn answer(sweep: &Sweep) -> String {
    let best = sweep.max_sustainable_rate_per_min();
    let stopped_at = sweep.steps.last();
    let sustain = |r: f64| format!("maximum sustainable rate: {}/min", rate_label(r));
    match (&sweep.ending, best, stopped_at) {
        (Ending::AllPassed, Some(r), _) => format!(
            "{} (every step passed: the target sustains at least the highest rate asked; sweep \
             higher to find its knee)",
            sustain(r)
        ),
        (Ending::FailedStep, Some(r), Some(s)) => format!(
            "{} (the step at {}/min failed: the knee lies between)",
            sustain(r),
            rate_label(s.rate_per_min)
        ),
        (Ending::FailedStep, None, Some(s)) => format!(
            "no sustainable rate: the first step, {}/min, already failed; sweep lower",
            rate_label(s.rate_per_min)
        ),
        (Ending::GeneratorBound, r, Some(s)) => format!(
            "the load generator saturated at {}/min before the target did{}: use more --shards \
             or machines",
            rate_label(s.rate_per_min),
            r.map_or_else(String::new, |r| format!(" ({} so far)", sustain(r)))
        ),
        (Ending::Interrupted, r, _) => format!(
            "interrupted{}",
            r.map_or_else(String::new, |r| format!(": {} so far", sustain(r)))
        ),
        (Ending::CouldNotRun(why), r, _) => format!(
            "stopped, a step could not run ({why}){}",
            r.map_or_else(String::new, |r| format!(": {} so far", sustain(r)))
        ),
        _ => "no step ran".into(),
    }
}

/// What the simulator said beforehand, when it was asked.
pub fn predicted_answer(sweep: &Sweep) -> Option<String> {
    if sweep.predicted.is_empty() {
        return None;
    }
    Some(match sweep.predicted_max_sustainable_rate_per_min() {
        Some(r) => format!(
            "the simulator predicted: maximum sustainable rate {}/min{}",
            rate_label(r),
            if sweep.predicted.iter().all(|p| p.passed) {
                " (every step passes)"
            } else {
                ""
            }
        ),
        None => "the simulator predicted: the first step already fails".into(),
    })
}

/// The table as aligned text, with the reasons of the step that stopped the sweep.
pub fn render_text(sweep: &Sweep) -> String {
    let mut out = String::new();
    text::table(&table(sweep), &mut out);
    if let Some(last) = sweep.steps.last() {
        for r in last.verdict.reasons() {
            out.push_str(&format!(
                "step {:02} ({}/min): {r}\n",
                last.index,
                rate_label(last.rate_per_min)
            ));
        }
    }
    out
}

fn curve(name: &str, steps: &[Step], y: impl Fn(&Step) -> Option<f64>) -> Line {
    Line {
        name: name.into(),
        points: steps
            .iter()
            .filter_map(|s| y(s).map(|v| (s.rate_per_min, v)))
            .collect(),
    }
}

/// Latency and throughput against the offered rate.
pub fn charts(sweep: &Sweep) -> Vec<String> {
    let steps = &sweep.steps;
    let knee: Vec<Mark> = sweep
        .max_sustainable_rate_per_min()
        .and_then(|r| steps.iter().find(|s| s.rate_per_min == r))
        .and_then(|s| {
            s.figures.e2e_p99_ms.map(|p99| Mark {
                x: s.rate_per_min,
                y: p99,
                label: format!("max sustainable {}/min", rate_label(s.rate_per_min)),
            })
        })
        .into_iter()
        .collect();
    let latency = LineChart {
        id: "latency-vs-rate".into(),
        title: "Latency against offered rate (p50 and p99)".into(),
        y_unit: "ms".into(),
        x_axis: XAxis::RatePerMinute,
        lines: vec![
            curve("e2e p50", steps, |s| s.figures.e2e_p50_ms),
            curve("e2e p99", steps, |s| s.figures.e2e_p99_ms),
            curve("ttft p50", steps, |s| s.figures.ttft_p50_ms),
            curve("ttft p99", steps, |s| s.figures.ttft_p99_ms),
            Line {
                name: "e2e p99 predicted".into(),
                points: sweep
                    .predicted
                    .iter()
                    .filter_map(|p| p.figures.e2e_p99_ms.map(|v| (p.rate_per_min, v)))
                    .collect(),
            },
        ],
        marks: knee,
        x_range: None,
    };
    let mut lines = vec![
        curve("offered", steps, |s| Some(s.rate_per_min)),
        curve("completed", steps, |s| {
            Some(s.figures.completed_per_s * 60.0)
        }),
    ];
    if steps.iter().any(|s| s.figures.goodput_per_s.is_some()) {
        lines.push(curve("goodput", steps, |s| {
            s.figures.goodput_per_s.map(|g| g * 60.0)
        }));
    }
    let throughput = LineChart {
        id: "throughput-vs-rate".into(),
        title: "Completed and good answers against offered rate".into(),
        y_unit: "messages per minute".into(),
        x_axis: XAxis::RatePerMinute,
        lines,
        marks: Vec::new(),
        x_range: None,
    };
    vec![latency.render(), throughput.render()]
}

fn page(sweep: &Sweep) -> String {
    html::tables_and_charts(
        &format!("surge sweep: {}", sweep.profile),
        &[table(sweep)],
        &charts(sweep),
    )
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::predict::Prediction;
    use crate::sweep::{Figures, Verdict};

    fn step(index: usize, rate: f64, verdict: Verdict) -> Step {
        Step {
            index,
            rate_per_min: rate,
            sessions: 100,
            dir: PathBuf::from(format!("/sweep/step-{index:02}")),
            verdict,
            figures: Figures {
                e2e_p99_ms: Some(rate),
                ..Figures::default()
            },
        }
    }

    fn sweep(steps: Vec<Step>, ending: Ending) -> Sweep {
        Sweep {
            dir: PathBuf::from("/sweep"),
            profile: "p".into(),
            target: "ws://127.0.0.1:1/chat".into(),
            hold: "10s".parse().unwrap(),
            sessions: Sessions::Fixed(std::num::NonZeroU64::new(100).unwrap()),
            asked: vec![600.0, 1200.0, 1800.0],
            steps,
            ending,
            predicted: vec![600.0, 1200.0, 1800.0]
                .into_iter()
                .map(|r| Prediction {
                    rate_per_min: r,
                    passed: r < 1500.0,
                    figures: Figures::default(),
                })
                .collect(),
        }
    }

    #[test]
    fn the_answer_is_the_last_passing_step_before_the_stop() {
        let s = sweep(
            vec![
                step(1, 600.0, Verdict::Passed),
                step(2, 1200.0, Verdict::Passed),
                step(3, 1800.0, Verdict::Failed(vec!["e2e.p99 < 1s".into()])),
            ],
            Ending::FailedStep,
        );
        assert_eq!(s.max_sustainable_rate_per_min(), Some(1200.0));
        assert_eq!(s.predicted_max_sustainable_rate_per_min(), Some(1200.0));
        let j = to_json(&s);
        assert_eq!(j["max_sustainable_rate_per_min"], 1200.0);
        assert_eq!(j["steps"][2]["passed"], false);
        assert_eq!(j["steps"][2]["verdict"], "failed");
        assert_eq!(j["steps"][2]["dir"], "step-03");
        assert_eq!(j["steps"][0]["e2e_p99_ms"], 600.0);
        assert_eq!(j["ending"], "failed_step");
        assert!(answer(&s).contains("1200/min"), "{}", answer(&s));
        let text = render_text(&s);
        assert!(text.contains("step 03 (1800/min): e2e.p99 < 1s"), "{text}");
    }

    #[test]
    fn a_saturated_generator_is_no_answer_about_the_target() {
        let s = sweep(
            vec![
                step(1, 600.0, Verdict::Passed),
                step(2, 1200.0, Verdict::GeneratorBound("lag".into())),
            ],
            Ending::GeneratorBound,
        );
        assert_eq!(s.max_sustainable_rate_per_min(), Some(600.0));
        let a = answer(&s);
        assert!(a.contains("generator saturated at 1200/min"), "{a}");
        assert_eq!(to_json(&s)["steps"][1]["passed"], false);
        let none = sweep(
            vec![step(1, 600.0, Verdict::Aborted("guard".into()))],
            Ending::FailedStep,
        );
        assert_eq!(none.max_sustainable_rate_per_min(), None);
        assert!(answer(&none).contains("sweep lower"));
        assert!(to_json(&none)["max_sustainable_rate_per_min"].is_null());
    }

    #[test]
    fn the_page_has_both_curves() {
        let s = sweep(vec![step(1, 600.0, Verdict::Passed)], Ending::AllPassed);
        let html = page(&s);
        assert!(html.contains("latency-vs-rate") && html.contains("throughput-vs-rate"));
        assert!(html.contains("offered messages per minute"));
        assert_eq!(table(&s).header.last().unwrap(), "sim e2e p99");
        let unpredicted = Sweep {
            predicted: Vec::new(),
            ..s
        };
        assert_eq!(table(&unpredicted).header.last().unwrap(), "lag p99");
    }
}
