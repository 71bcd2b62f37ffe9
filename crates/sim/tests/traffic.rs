//! Traffic shapes in the simulator: a flash crowd at a step, a replayed trace.
//!
//! Known answers, by hand. Flash crowd: 100 sessions for a minute, then `ramp = "0s"` to
//! 3,000: all 2,900 newcomers want to connect at 60 s and the gateway admits 100 a second,
//! so they wait in the backlog for 29 s (about 2,900² / 2 / 100 = 42,050 session-seconds)
//! and are all connected by the end of the second minute. Trace: every message of the
//! trace is sent, in the minute the trace puts it.

mod common;

use common::{layers_off_except, profile, system_file};
use surge_profile::Profile;
use surge_record::Timeline;
use surge_sim::{SimOptions, SimOutcome, simulate};

fn simulate_to_timeline(p: &Profile) -> (SimOutcome, Timeline) {
    let root = tempfile::tempdir().unwrap();
    let out = simulate(
        p,
        &SimOptions {
            out_root: Some(root.path().to_path_buf()),
            ..SimOptions::default()
        },
    )
    .unwrap();
    let dir = out.run_dir.clone().expect("a run directory");
    let timeline = Timeline::read(&dir.join("timeline.csv")).unwrap();
    (out, timeline)
}

#[test]
fn a_flash_crowd_wants_in_at_once_and_is_admitted_at_the_connect_rate() {
    let system = format!(
        "{}gateway.connect_rate = \"100/s\"\n",
        layers_off_except(&["gateway"])
    );
    let stages = r#"[[traffic.stages]]
name = "base"
duration = "1m"
sessions = 100
message_rate = "10/s"

[[traffic.stages]]
name = "release"
duration = "2m"
ramp = "0s"
sessions = 3000
message_rate = "300/s"
"#;
    let p = profile(&system, "poisson", r#"chitchat = "100%""#, stages);
    let (out, timeline) = simulate_to_timeline(&p);
    let c = out.report.connections.expect("the gateway counts");
    // The whole crowd waits at the step instant (less the tick's first 100 admitted).
    assert!((2_800..=2_900).contains(&c.peak_backlog), "{c:?}");
    assert!(
        (38_000..=46_000).contains(&c.backlog_session_seconds),
        "{c:?}"
    );
    let open = timeline.column("sessions_open").unwrap();
    let opened = timeline.column("connections_opened").unwrap();
    let sent = timeline.column("sent").unwrap();
    // A row counts up to and including its end: the tick at the step instant (60 s)
    // already admitted the crowd's first 100, the rest come in the second minute.
    assert_eq!(open[0], 200.0, "{open:?}");
    assert_eq!(open[1], 3_000.0, "{open:?}");
    assert_eq!(opened[0], 200.0, "{opened:?}");
    assert_eq!(opened[1], 2_800.0, "{opened:?}");
    // The message rate jumps with the connected sessions: 10/s before, up to 300/s after.
    assert!(sent[0] < 800.0 && sent[1] > 10_000.0, "{sent:?}");
}

#[test]
fn a_trace_is_simulated_message_for_message_in_its_minutes() {
    let dir = tempfile::tempdir().unwrap();
    // 30 messages in the first minute, 120 in the second, 12 in the third; half of them
    // named by session, the rest dealt over conversations.
    let mut rows = String::from("offset,session,intent\n");
    let per_minute = [30u32, 120, 12];
    for (minute, n) in per_minute.iter().enumerate() {
        for i in 0..*n {
            let offset = minute as f64 * 60.0 + 60.0 * f64::from(i) / f64::from(*n);
            let session = if i % 2 == 0 {
                format!("u{}", i % 7)
            } else {
                String::new()
            };
            rows.push_str(&format!("{offset:.3},{session},chitchat\n"));
        }
    }
    std::fs::write(dir.path().join("trace.csv"), rows).unwrap();
    let text = format!(
        r#"description = "trace"
seed = 7
[system]
file = "{file}"
{layers}
[traffic]
arrival = {{ trace = "trace.csv" }}
conversation_turns = 5
reply_timeout = "30s"
connect_rate = "500/s"
[traffic.stores]
manga_jp = "100%"
[traffic.intents]
chitchat = "100%"
"#,
        file = system_file(),
        layers = layers_off_except(&["gateway"]),
    );
    let path = dir.path().join("p.toml");
    std::fs::write(&path, text).unwrap();
    let p = Profile::load(&path).unwrap_or_else(|e| panic!("{e}"));
    // No stages: one "trace" stage labels the run, which lasts until the last reply.
    assert_eq!(p.traffic.stages.len(), 1);
    assert_eq!(p.traffic.stages[0].name, "trace");
    // The last message at 175 s, its reply timeout 30 s.
    assert_eq!(p.duration.to_string(), "205s");
    let (out, timeline) = simulate_to_timeline(&p);
    assert_eq!(out.report.sent, 162);
    let sent = timeline.column("sent").unwrap();
    assert_eq!(&sent[..3], &[30.0, 120.0, 12.0], "{sent:?}");
    assert_eq!(sent.iter().sum::<f64>(), 162.0);
}
