//! Interval-log round trips, the foreign (Python-written) fixture, and damaged files.

use std::path::Path;
use std::time::Duration;

use surge_record::hlog::{self, IntervalTag};
use surge_record::{Histogram, HlogWriter, IntervalRecorder, Metric, Tag, UtcTime, new_histogram};

const BASE_MS: i64 = 1_795_871_100_250; // 2026-11-28T13:05:00.250Z

/// Deterministic pseudo-random values (bounded, platform independent).
fn lcg_values(seed: u64, n: usize, lo: u64, span: u64) -> Vec<u64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            lo + (s >> 33) % span
        })
        .collect()
}

fn hist_of(values: &[u64]) -> Histogram<u64> {
    let mut h = new_histogram();
    for &v in values {
        h.record(v).unwrap();
    }
    h
}

#[test]
fn round_trip_counts_values_percentiles_tags_and_start_times() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shard-000.hlog");
    let base = UtcTime::from_unix_millis(BASE_MS);
    let mut log = HlogWriter::create(&path, base).unwrap();

    let e2e = Tag::from(Metric::E2e);
    let ttft_jp = Tag::qualified(Metric::Ttft, "manga_jp").unwrap();
    let mut rec = IntervalRecorder::new(Duration::ZERO);
    let id_e2e = rec.register(&e2e);
    let id_ttft = rec.register(&ttft_jp);

    let mut expected: Vec<(Option<Tag>, f64, Histogram<u64>)> = Vec::new();
    for second in 0..5u64 {
        let a = lcg_values(second, 1000, 100_000, 3_000_000);
        let b = lcg_values(100 + second, 400, 2_000, 500_000);
        for &v in &a {
            rec.record(id_e2e, v);
        }
        // ttft only in odd seconds: empty tags are not written.
        if second % 2 == 1 {
            for &v in &b {
                rec.record(id_ttft, v);
            }
        }
        let start = Duration::from_secs(second);
        let n = rec
            .close_interval(start + Duration::from_secs(1), &mut log)
            .unwrap();
        assert_eq!(n, if second % 2 == 1 { 2 } else { 1 });
        expected.push((Some(e2e.clone()), second as f64, hist_of(&a)));
        if second % 2 == 1 {
            expected.push((Some(ttft_jp.clone()), second as f64, hist_of(&b)));
        }
    }
    // An untagged interval with a sub-second start and odd length.
    let untagged = hist_of(&[1, 2, 3, 4_000_000_000]);
    log.write_interval(
        None,
        Duration::from_millis(5_500),
        Duration::from_millis(250),
        &untagged,
    )
    .unwrap();
    expected.push((None, 5.5, untagged));
    log.finish().unwrap();

    let read = hlog::read_file(&path).unwrap();
    assert!(read.warnings.is_empty(), "{:?}", read.warnings);
    assert_eq!(read.format_version.as_deref(), Some("1.3"));
    assert_eq!(read.start_time_s, Some(BASE_MS as f64 / 1000.0));
    assert_eq!(read.base_time_s, Some(BASE_MS as f64 / 1000.0));
    assert_eq!(read.intervals.len(), expected.len());
    for (got, (tag, offset, hist)) in read.intervals.iter().zip(&expected) {
        match tag {
            Some(t) => assert_eq!(got.tag, IntervalTag::Surge(t.clone())),
            None => assert_eq!(got.tag, IntervalTag::Untagged),
        }
        assert!(
            (got.offset_s - offset).abs() < 1e-6,
            "{} vs {offset}",
            got.offset_s
        );
        assert!((got.start_s - (BASE_MS as f64 / 1000.0 + offset)).abs() < 1e-6);
        let want_len = if tag.is_some() { 1.0 } else { 0.25 };
        assert!((got.length_s - want_len).abs() < 1e-9);
        // Identical counts and values, bucket by bucket.
        assert_eq!(got.histogram.len(), hist.len());
        let a: Vec<(u64, u64)> = got
            .histogram
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
        let b: Vec<(u64, u64)> = hist
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
        assert_eq!(a, b);
        assert_eq!(got.histogram.max(), hist.max());
        assert_eq!(got.histogram.min(), hist.min());
        for q in [0.5, 0.9, 0.99, 0.999] {
            assert_eq!(
                got.histogram.value_at_quantile(q),
                hist.value_at_quantile(q)
            );
        }
        // Interval_Max column is in seconds (max µs / 1e6), 3 decimals.
        assert!((got.logged_max - hist.max() as f64 / 1e6).abs() <= 0.0005 + 1e-9);
    }

    // Totals kept by the recorder equal the merge of what was written.
    let mut merged = new_histogram();
    for i in read
        .intervals
        .iter()
        .filter(|i| i.tag.surge() == Some(&e2e))
    {
        merged.add(&i.histogram).unwrap();
    }
    assert_eq!(&merged, rec.total(&e2e).unwrap());
    assert_eq!(rec.latency_ms()[&e2e].count, 5000);
}

#[derive(serde::Deserialize)]
struct Expected {
    start_time_s: f64,
    intervals: usize,
    tags: std::collections::BTreeMap<String, ExpectedStats>,
}

#[derive(serde::Deserialize)]
struct ExpectedStats {
    count: u64,
    p50: u64,
    p90: u64,
    p99: u64,
    p999: u64,
    max: u64,
}

#[test]
fn reads_log_written_by_python_hdrhistogram() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let expected: Expected = serde_json::from_str(
        &std::fs::read_to_string(fixtures.join("python_hdrh.expected.json")).unwrap(),
    )
    .unwrap();
    let read = hlog::read_file(&fixtures.join("python_hdrh.hlog")).unwrap();
    assert!(read.warnings.is_empty(), "{:?}", read.warnings);
    assert_eq!(read.format_version.as_deref(), Some("1.2"));
    assert_eq!(read.intervals.len(), expected.intervals);
    // StartTime only + small timestamps: Java's rule makes them relative to StartTime.
    assert_eq!(read.start_time_s, Some(expected.start_time_s));
    assert_eq!(read.intervals[0].start_s, expected.start_time_s);
    assert_eq!(read.intervals[2].start_s, expected.start_time_s + 1.0);
    assert_eq!(read.intervals[6].tag, IntervalTag::Untagged);
    assert_eq!(
        read.intervals[1].tag,
        IntervalTag::Surge("ttft:manga_jp".parse().unwrap())
    );

    for (tag, want) in &expected.tags {
        let mut total = new_histogram();
        for i in &read.intervals {
            if i.tag.to_string() == *tag {
                total.add(&i.histogram).unwrap();
            }
        }
        assert_eq!(total.len(), want.count, "count of {tag:?}");
        assert_eq!(total.max(), want.max, "max of {tag:?}");
        for (pct, want_v) in [
            (50.0, want.p50),
            (90.0, want.p90),
            (99.0, want.p99),
            (99.9, want.p999),
        ] {
            // Same buckets, same rank rule as Python => identical value.
            assert_eq!(
                value_at_percentile_python_rule(&total, pct),
                want_v,
                "p{pct} of {tag:?}"
            );
            // Our own percentile (rank = ceil(q·N), like Java) agrees whenever the two rank
            // rules pick the same rank, which is every case here except the 7-value untagged
            // series (p90: Python rank round(6.3) = 6, ceil gives 7).
            if !(tag.is_empty() && pct == 90.0) {
                assert_eq!(total.value_at_percentile(pct), want_v, "p{pct} of {tag:?}");
            }
        }
    }
}

/// hdrh (Python) rank rule: count = max(1, int(p/100·N + 0.5)), then the highest equivalent
/// value of the bucket where the running count reaches it.
fn value_at_percentile_python_rule(h: &Histogram<u64>, pct: f64) -> u64 {
    let target = ((pct * h.len() as f64 / 100.0) + 0.5).floor().max(1.0) as u64;
    let mut running = 0;
    for v in h.iter_recorded() {
        running += v.count_at_value();
        if running >= target {
            return h.highest_equivalent(v.value_iterated_to());
        }
    }
    0
}

fn write_sample_log(path: &Path, intervals: u64) {
    let mut log = HlogWriter::create(path, UtcTime::from_unix_millis(BASE_MS)).unwrap();
    for s in 0..intervals {
        let h = hist_of(&lcg_values(s, 200, 1_000, 900_000));
        log.write_interval(
            Some(&Metric::E2e.into()),
            Duration::from_secs(s),
            Duration::from_secs(1),
            &h,
        )
        .unwrap();
    }
    log.finish().unwrap();
}

#[test]
fn truncated_last_line_is_a_warning_and_earlier_intervals_survive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shard-001.hlog");
    write_sample_log(&path, 4);
    let bytes = std::fs::read(&path).unwrap();
    // Cut the file in the middle of the last interval line, as a crash mid-write would.
    let last_line_start = bytes[..bytes.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    for cut in [last_line_start + 5, last_line_start + 40, bytes.len() - 3] {
        let read = hlog::read_bytes(&path, &bytes[..cut]).unwrap();
        assert_eq!(read.intervals.len(), 3, "cut at {cut}");
        assert_eq!(read.warnings.len(), 1, "cut at {cut}: {:?}", read.warnings);
        let w = read.warnings[0].to_string();
        // Header is 4 lines, so the 4th interval is line 8.
        assert!(w.starts_with(&format!("{}:8: ", path.display())), "{w}");
    }
}

#[test]
fn corrupted_middle_lines_are_warnings_and_the_rest_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shard-002.hlog");
    write_sample_log(&path, 5);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    // line 6 (2nd interval): damage the base64 payload's compressed bytes.
    let l = &mut lines[5];
    let cut = l.len() - 30;
    l.replace_range(cut..cut + 8, "AAAAAAAA");
    // line 7 (3rd interval): not a number in the timestamp.
    lines[6] = lines[6].replacen("Tag=e2e,2.000", "Tag=e2e,2.x00", 1);
    // an extra garbage line between intervals.
    lines.insert(7, "garbage here".to_string());
    let damaged = lines.join("\n") + "\n";
    std::fs::write(&path, &damaged).unwrap();

    let read = hlog::read_file(&path).unwrap();
    let starts: Vec<f64> = read.intervals.iter().map(|i| i.offset_s).collect();
    assert_eq!(starts, vec![0.0, 3.0, 4.0]);
    let lines_warned: Vec<usize> = read.warnings.iter().map(|w| w.line).collect();
    assert_eq!(lines_warned, vec![6, 7, 8], "{:?}", read.warnings);
    for w in &read.warnings {
        assert_eq!(w.path, path);
    }
    assert!(
        read.warnings[1].message.contains("not a number"),
        "{}",
        read.warnings[1]
    );
}

#[test]
fn file_without_header_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bogus.hlog");
    std::fs::write(&path, "just some text\nanother line\n").unwrap();
    let err = hlog::read_file(&path).unwrap_err().to_string();
    assert!(err.contains("bogus.hlog:1:"), "{err}");
    assert!(err.contains("not an HdrHistogram interval log"), "{err}");
    std::fs::write(&path, "").unwrap();
    assert!(hlog::read_file(&path).is_err());
    let err = hlog::read_file(&dir.path().join("missing.hlog"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.hlog"), "{err}");
}

#[test]
fn uncompressed_v2_payloads_are_decoded_too() {
    use base64::Engine as _;
    use hdrhistogram::serialization::{Serializer as _, V2Serializer};
    let h = hist_of(&[10, 20, 30_000]);
    let mut buf = Vec::new();
    V2Serializer::new().serialize(&h, &mut buf).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&buf);
    let log = format!(
        "#[Histogram log format version 1.3]\n#[BaseTime: 1000.000 (seconds since epoch)]\n\
         Tag=itl,1.000,1.000,0.030,{b64}\n"
    );
    let read = hlog::read_bytes(Path::new("v2.hlog"), log.as_bytes()).unwrap();
    assert!(read.warnings.is_empty(), "{:?}", read.warnings);
    assert_eq!(read.intervals[0].histogram, h);
    assert_eq!(read.intervals[0].start_s, 1001.0);
}

#[test]
fn foreign_tags_are_kept_verbatim() {
    let h = hlog::encode_histogram(&hist_of(&[5])).unwrap();
    let log = format!("#[BaseTime: 0.000 (x)]\nTag=GC-pauses,1.0,1.0,0.0,{h}\n");
    let read = hlog::read_bytes(Path::new("x.hlog"), log.as_bytes()).unwrap();
    assert_eq!(
        read.intervals[0].tag,
        IntervalTag::Other("GC-pauses".into())
    );
}
