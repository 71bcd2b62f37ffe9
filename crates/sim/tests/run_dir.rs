//! The run directory of a full-system simulation: readable, tagged, reproducible.

mod common;

use common::{profile, stage};
use surge_record::{RunDir, RunKind, RunStatus, Tag, hlog};
use surge_sim::{SimOptions, simulate};

fn full_system() -> surge_profile::Profile {
    let intents = r#"product_info = "55%"
order_tracking = "25%"
recommendation = "8%"
complex_product_question = "4%"
simple_faq = "4%"
chitchat = "4%""#;
    let system = "bedrock.tiering = true\nbedrock.streaming = true\nsemantic_cache.enabled = true";
    profile(
        system,
        "poisson",
        intents,
        &stage("steady", "2m", 200, "2000/min"),
    )
}

fn writing(root: &tempfile::TempDir) -> SimOptions {
    SimOptions {
        out_root: Some(root.path().to_path_buf()),
        ..SimOptions::default()
    }
}

#[test]
fn same_profile_and_seed_give_byte_identical_summaries() {
    let p = full_system();
    let root = tempfile::tempdir().unwrap();
    // Minute intervals: the hlog is not what this test is about, and debug builds are slow
    // at closing many intervals.
    let opts = SimOptions {
        hlog_interval: Some("1m".parse().unwrap()),
        ..writing(&root)
    };
    let a = simulate(&p, &opts).unwrap().run_dir.unwrap();
    let b = simulate(&p, &opts).unwrap().run_dir.unwrap();
    assert_ne!(a, b, "a run directory is never reused");
    let read = |d: &std::path::Path| std::fs::read(d.join("summary.json")).unwrap();
    assert_eq!(read(&a), read(&b));

    let other = simulate(
        &p,
        &SimOptions {
            seed: Some(8),
            ..SimOptions::default()
        },
    )
    .unwrap();
    let other = serde_json::to_vec_pretty(&other.summary).unwrap();
    assert_ne!(read(&a), other, "another seed, another run");
}

#[test]
fn run_directory_has_every_tag_per_second_and_a_timeline_per_minute() {
    let root = tempfile::tempdir().unwrap();
    let out = simulate(&full_system(), &writing(&root)).unwrap();
    let dir = RunDir::open(&out.run_dir.unwrap()).unwrap();
    let info = dir.read_run_info().unwrap();
    assert_eq!(
        (info.kind, info.status, info.seed),
        (RunKind::Simulated, RunStatus::Complete, Some(7))
    );
    let summary = dir.read_summary().unwrap();
    // (Floats in `extra` may differ in the last digit after a JSON round trip.)
    assert_eq!(
        (summary.counts, &summary.latency_ms),
        (out.summary.counts, &out.summary.latency_ms)
    );
    assert!(summary.counts.sent > 3_500, "{:?}", summary.counts);
    assert!(summary.extra.contains_key("peaks") && summary.extra.contains_key("queue"));
    let log = hlog::read_file(&dir.hlog_path(0).unwrap()).unwrap();
    let tags: std::collections::BTreeSet<String> = log
        .intervals
        .iter()
        .filter_map(|i| i.tag.surge().map(Tag::to_string))
        .collect();
    for tag in [
        "e2e",
        "ttft",
        "itl",
        "e2e:manga_jp",
        "ttft:manga_jp",
        "e2e:haiku",
        "ttft:sonnet",
    ] {
        assert!(tags.contains(tag), "{tag} missing from {tags:?}");
    }
    // One interval per simulated second: 2 minutes and the last answers' few seconds.
    let e2e_intervals = log
        .intervals
        .iter()
        .filter(|i| i.tag.to_string() == "e2e")
        .count();
    assert!((118..=130).contains(&e2e_intervals), "{e2e_intervals}");
    let timeline = dir.read_timeline().unwrap();
    assert_eq!(timeline.len(), 3, "two minutes and the drain");
    assert!(timeline.column("bedrock_tokens_per_min:sonnet").unwrap()[1] > 0.0);
    println!("{}", out.report);
}

#[test]
fn replications_report_confidence_intervals() {
    let opts = SimOptions {
        replications: 3,
        ..SimOptions::default()
    };
    let out = simulate(&full_system(), &opts).unwrap();
    let reps = out.replications.unwrap();
    assert_eq!(reps.seeds, [7, 8, 9]);
    let e2e = reps.figure("e2e.p50_ms").unwrap();
    assert!(e2e.half_width.is_finite());
    assert_eq!(e2e.values[0], out.report.latency("all", "e2e").unwrap().p50);
    println!("{reps}");
}
