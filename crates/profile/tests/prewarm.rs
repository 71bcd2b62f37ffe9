//! The `[prewarm]` table: typed, strict, and every mistake named with its key.

use std::path::Path;

use surge_profile::{Profile, ProfileError};

fn base() -> String {
    let system = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../profiles/system/mangaassist.toml")
        .canonicalize()
        .unwrap();
    format!(
        r#"description = "prewarm test"
seed = 1

[system]
file = "{}"

[target]
allowed = ["*.staging.example.com"]

[traffic]
arrival = "poisson"
conversation_turns = 5
reply_timeout = "30s"
connect_rate = "500/s"

[traffic.stores]
manga_jp = "100%"

[traffic.intents]
product_info = "100%"

[[traffic.stages]]
name = "a"
duration = "1m"
sessions = 10
message_rate = "100/min"
"#,
        system.display()
    )
}

fn load(prewarm: &str) -> Result<Profile, ProfileError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, format!("{}\n{prewarm}", base())).unwrap();
    Profile::load(&path)
}

/// Every problem, rendered as `key: message`.
fn problems(prewarm: &str) -> Vec<String> {
    let err = load(prewarm).expect_err("profile should be rejected");
    err.diagnostics()
        .iter()
        .map(|d| {
            assert!(d.position.is_some(), "{d}");
            format!("{}: {}", d.key, d.message)
        })
        .collect()
}

const GOOD: &str = r#"
[prewarm]
timeout = "5s"

[[prewarm.calls]]
name = "One Piece vol. 110"
method = "POST"
path = "/admin/prewarm"
body = { asin = "B0DFGT5L9Q", ttl = "2h", release = "2026-12-04T00:00:00+09:00" }
headers = { "X-Surge-Run" = "rehearsal" }
expect = 200

[[prewarm.calls]]
method = "GET"
url = "https://admin.staging.example.com/cache/stats"
"#;

#[test]
fn a_prewarm_table_loads_typed() {
    let p = load(GOOD).unwrap();
    let pw = p.prewarm.expect("[prewarm] is kept");
    assert_eq!(pw.timeout.as_secs_f64(), 5.0);
    assert_eq!(pw.calls.len(), 2);
    let c = &pw.calls[0];
    assert_eq!(c.label(), "One Piece vol. 110");
    assert_eq!(c.body.as_ref().unwrap()["asin"], "B0DFGT5L9Q");
    assert_eq!(c.body.as_ref().unwrap()["ttl"], "2h");
    assert_eq!(c.headers["X-Surge-Run"], "rehearsal");
    assert_eq!(
        c.url_on("http://127.0.0.1:8787"),
        "http://127.0.0.1:8787/admin/prewarm"
    );
    assert_eq!(pw.calls[1].expect, None);
    assert!(pw.calls[1].accepts(204));
    assert_eq!(pw.timeout.as_secs_f64(), 5.0);
    // Optional: a profile without it has none.
    assert!(load("").unwrap().prewarm.is_none());
}

#[test]
fn unknown_keys_are_rejected_with_their_path() {
    let text = GOOD.replace("expect = 200", "expect = 200\nexpected = 201");
    let p = problems(&text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("prewarm.calls[0].expected: unknown key; expected one of"),
        "{p:?}"
    );
    let p = problems("[prewarm]\ncals = []\n");
    assert!(p[0].starts_with("prewarm.cals: unknown key"), "{p:?}");
}

#[test]
fn wrong_types_name_the_key() {
    let p = problems(&GOOD.replace("expect = 200", "expect = \"ok\""));
    assert!(
        p[0].starts_with("prewarm.calls[0].expect: expected"),
        "{p:?}"
    );
    let p = problems(&GOOD.replace("timeout = \"5s\"", "timeout = \"soon\""));
    assert!(p[0].starts_with("prewarm.timeout:"), "{p:?}");
    let p = problems("[prewarm]\n[[prewarm.calls]]\npath = \"/x\"\n");
    assert!(
        p[0].starts_with("prewarm.calls[0].method: required key is missing"),
        "{p:?}"
    );
}

#[test]
fn every_bad_call_is_reported_at_once() {
    let text = r#"
[prewarm]
timeout = "0"

[[prewarm.calls]]
method = "FETCH"
path = "admin/prewarm"

[[prewarm.calls]]
method = "GET"
url = "https://prod.example.com/warm"
body = { asin = "x" }

[[prewarm.calls]]
method = "POST"
path = "/a"
url = "http://127.0.0.1/a"
headers = { Authorization = "Bearer abc" }
expect = 999

[[prewarm.calls]]
method = "POST"
body = { asin = "x" }
"#;
    let p = problems(text).join("\n");
    for expected in [
        "prewarm.timeout: must be longer than zero",
        "prewarm.calls[0].method: expected one of GET, POST",
        "prewarm.calls[0].path: expected a path starting with \"/\"",
        "prewarm.calls[1].url: host \"prod.example.com\" is not loopback and matches no pattern in target.allowed",
        "prewarm.calls[1].body: a GET request has no body",
        "prewarm.calls[2].url: give either path",
        "prewarm.calls[2].headers.Authorization: credentials never live in a profile",
        "prewarm.calls[2].expect: expected an HTTP status between 100 and 599, found 999",
        "prewarm.calls[3].path: required key is missing",
    ] {
        assert!(p.contains(expected), "missing {expected:?} in:\n{p}");
    }
    let p = problems("[prewarm]\ncalls = []\n").join("\n");
    assert!(
        p.contains("prewarm.calls: at least one call is needed"),
        "{p}"
    );
}

#[test]
fn toml_datetimes_in_a_body_are_sent_as_strings() {
    let p = load("[prewarm]\n[[prewarm.calls]]\nmethod = \"POST\"\npath = \"/x\"\nbody = { release = 2026-12-04T00:00:00Z }\n").unwrap();
    let body = p.prewarm.unwrap().calls[0].body.clone().unwrap();
    assert_eq!(body["release"], "2026-12-04T00:00:00Z");
}
