//! Round trips through moto's S3 server (see [`crate::testkit`]): keys, bytes, paginated
//! listings, refusals. Skipped without moto, except under `CI=true`.

use super::*;
use crate::testkit::{self, Moto};

fn s3(s: &str) -> S3Url {
    s.parse().unwrap()
}

/// A run directory of a few files, one nested, one empty, one of binary bytes.
fn run_dir(root: &Path) -> PathBuf {
    let dir = root.join("2026-11-28T13-05-00Z");
    std::fs::create_dir_all(dir.join("errors")).unwrap();
    std::fs::write(dir.join("run.json"), br#"{"status":"complete"}"#).unwrap();
    std::fs::write(dir.join("summary.json"), b"{}").unwrap();
    std::fs::write(dir.join("timeline.csv"), b"t,sent\n0,1\n").unwrap();
    std::fs::write(dir.join("errors/samples-000.jsonl"), b"").unwrap();
    let binary: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.join("shard-000.hlog"), binary).unwrap();
    dir
}

#[test]
fn a_run_directory_goes_up_and_comes_back_byte_for_byte() {
    let Some(python) = testkit::python_or_skip() else {
        return;
    };
    let moto = Moto::start(&python);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = moto.client();
        testkit::create_bucket(&client, "runs").await;
        let tmp = tempfile::tempdir().unwrap();
        let dir = run_dir(tmp.path());

        let up = upload_with(&client, &dir, &s3("s3://runs/nightly/run1/"))
            .await
            .unwrap();
        let local = testkit::files(&dir);
        assert_eq!(up.files, local.len());
        assert_eq!(
            up.bytes,
            local.iter().map(|f| f.1.len() as u64).sum::<u64>()
        );
        let stored = testkit::objects(&client, "runs", "").await;
        let expected: Vec<_> = local
            .iter()
            .map(|(k, b)| (format!("nightly/run1/{k}"), b.clone()))
            .collect();
        assert_eq!(stored, expected, "keys PREFIX/relative, bytes identical");

        // A neighbour whose name starts with the same characters is not part of the run.
        upload_with(&client, &dir, &s3("s3://runs/nightly/run10"))
            .await
            .unwrap();
        // Two keys per page: the listing takes several requests.
        let back = tmp.path().join("back");
        let got = download_with(&client, &s3("s3://runs/nightly/run1"), &back, Some(2))
            .await
            .unwrap();
        assert_eq!(got, back);
        assert_eq!(testkit::files(&back), local);

        // Into the bucket's top: no leading slash in the keys.
        testkit::create_bucket(&client, "whole").await;
        upload_with(&client, &dir, &s3("s3://whole")).await.unwrap();
        let keys: Vec<_> = testkit::objects(&client, "whole", "")
            .await
            .into_iter()
            .map(|o| o.0)
            .collect();
        let names: Vec<_> = local.iter().map(|f| f.0.clone()).collect();
        assert_eq!(keys, names);
        let whole = tmp.path().join("whole");
        download_with(&client, &s3("s3://whole/"), &whole, None)
            .await
            .unwrap();
        assert_eq!(testkit::files(&whole), local);
    });
}

#[test]
fn refusals_name_what_is_wrong() {
    let Some(python) = testkit::python_or_skip() else {
        return;
    };
    let moto = Moto::start(&python);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = moto.client();
        testkit::create_bucket(&client, "runs").await;
        let tmp = tempfile::tempdir().unwrap();
        let dir = run_dir(tmp.path());

        // A prefix that holds a run is never overwritten.
        upload_with(&client, &dir, &s3("s3://runs/a"))
            .await
            .unwrap();
        let e = upload_with(&client, &dir, &s3("s3://runs/a"))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Occupied { .. }), "{e}");
        assert!(
            e.to_string().contains("s3://runs/a already holds objects"),
            "{e}"
        );

        // A rendezvous run's shards keep their own directories below its prefix, before or
        // after the run's own files arrive; reading the run leaves them out.
        upload_with(&client, &dir, &s3("s3://runs/b/shard-001"))
            .await
            .unwrap();
        upload_with(&client, &dir, &s3("s3://runs/b"))
            .await
            .unwrap();
        upload_with(&client, &dir, &s3("s3://runs/b/shard-002"))
            .await
            .unwrap();
        let back = download_with(&client, &s3("s3://runs/b"), &tmp.path().join("b"), None)
            .await
            .unwrap();
        assert!(back.join("run.json").is_file());
        assert!(!back.join("shard-001").exists() && !back.join("shard-002").exists());

        // Nothing there.
        let e = download_with(
            &client,
            &s3("s3://runs/missing"),
            &tmp.path().join("m"),
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "no run directory at s3://runs/missing: no object has a key under s3://runs/missing/"
        );
        assert!(!tmp.path().join("m").exists());

        // A multi-machine run whose own files never arrived (its coordinator was lost):
        // the error names the shard directories to merge instead.
        for shard in ["shard-000", "shard-001"] {
            upload_with(&client, &dir, &s3(&format!("s3://runs/c/{shard}")))
                .await
                .unwrap();
        }
        let e = download_with(&client, &s3("s3://runs/c"), &tmp.path().join("c"), None)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::OnlyShards { .. }), "{e}");
        assert!(
            e.to_string()
                .contains("surge run --merge s3://runs/c/shard-000 s3://runs/c/shard-001"),
            "{e}"
        );

        // An upload that stopped before its run.json: refused before anything is fetched.
        client
            .put_object()
            .bucket("runs")
            .key("half/summary.json")
            .body(ByteStream::from_static(b"{}"))
            .send()
            .await
            .unwrap();
        let e = download_with(&client, &s3("s3://runs/half"), &tmp.path().join("h"), None)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::NoRunInfo { .. }), "{e}");
        assert!(!tmp.path().join("h").exists());

        // A bucket of runs is not a run (no run.json at its top): nothing is fetched.
        let e = download_with(&client, &s3("s3://runs/"), &tmp.path().join("w"), None)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::NoRunInfo { .. }), "{e}");
        assert!(!tmp.path().join("w").exists());

        // A bucket that does not exist: the service's own words and what to check.
        let e = upload_with(&client, &dir, &s3("s3://no-such-bucket/x"))
            .await
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("NoSuchBucket"), "{msg}");
        assert!(msg.contains("AWS_ENDPOINT_URL_S3"), "{msg}");

        // A key that would climb out of the destination: nothing is written.
        client
            .put_object()
            .bucket("runs")
            .key("evil/../../escaped")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
        client
            .put_object()
            .bucket("runs")
            .key("evil/run.json")
            .body(ByteStream::from_static(b"{}"))
            .send()
            .await
            .unwrap();
        let dest = tmp.path().join("d/e");
        let e = download_with(&client, &s3("s3://runs/evil"), &dest, Some(1))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::UnsafeKey { .. }), "{e}");
        assert!(e.to_string().contains("'..'"), "{e}");
        assert!(!dest.exists());
        assert!(!tmp.path().join("escaped").exists());
    });
}

#[test]
fn an_unreachable_endpoint_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = run_dir(tmp.path());
    let port = testkit::free_port();
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .force_path_style(true)
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "k", "s", None, None, "test",
        ))
        .build();
    let client = Client::from_conf(config);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let e = rt
        .block_on(upload_with(&client, &dir, &s3("s3://runs/x")))
        .unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("cannot list s3://runs/x: "), "{msg}");
    assert!(msg.contains("onnection refused"), "{msg}");
    assert!(
        !msg.contains('{'),
        "the chain of messages, no Debug dump: {msg}"
    );
    assert!(msg.contains("AWS_ENDPOINT_URL_S3"), "{msg}");
}
