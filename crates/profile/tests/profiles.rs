//! Every shipped profile loads, and every class of mistake is reported with file, line,
//! column and key.

use std::path::{Path, PathBuf};

use surge_profile::overview::Overview;
use surge_profile::{Profile, ProfileError};

fn profiles_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles")
}

fn system_file() -> String {
    profiles_dir()
        .join("system/mangaassist.toml")
        .canonicalize()
        .unwrap()
        .display()
        .to_string()
}

/// A small valid profile; tests break one thing in it at a time.
fn valid_profile() -> String {
    format!(
        r#"description = "test"
seed = 1
duration = "10m"

[system]
file = "{}"

[traffic]
arrival = "poisson"
conversation_turns = 5
reply_timeout = "30s"
connect_rate = "500/s"

[traffic.stores]
manga_jp = "100%"

[traffic.intents]
product_info = "90%"
recommendation = "10%"

[[traffic.stages]]
name = "a"
duration = "5m"
sessions = 100
message_rate = "1000/min"

[[traffic.stages]]
name = "b"
duration = "5m"
ramp = "1m"
sessions = 200
session_rate = "10/min"

[thresholds]
"ttft.p99" = "< 1s"
"#,
        system_file()
    )
}

fn load_text(text: &str) -> Result<Profile, ProfileError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, text).unwrap();
    Profile::load(&path)
}

/// Loads `text` and returns its one diagnostic rendered as `line:col: key: message`.
fn only_problem(text: &str) -> String {
    let err = load_text(text).expect_err("profile should be rejected");
    let diags = err.diagnostics();
    assert_eq!(diags.len(), 1, "expected one problem, got: {err}");
    let d = &diags[0];
    let pos = d.position.expect("problem should have a position");
    format!("{}:{}: {}: {}", pos.line, pos.column, d.key, d.message)
}

#[test]
fn every_shipped_profile_loads() {
    let mut count = 0;
    for entry in std::fs::read_dir(profiles_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let p = Profile::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!p.description.is_empty());
            assert!(p.schedule().total_messages() > 0.0, "{}", path.display());
            count += 1;
        }
    }
    assert_eq!(
        count, 16,
        "the nine profiles of DESIGN.md, the 100,000-session rehearsal, the two everyday levels \
         of the README, the two \
         staging examples of \"Against API Gateway\" (IAM and query-token auth), the \
         trace replay example and the midnight release"
    );
}

#[test]
fn one_piece_spike_reaches_the_seed_peak() {
    let p = Profile::load(profiles_dir().join("one-piece-spike.toml")).unwrap();
    let ov = Overview::of(&p);
    assert_eq!(ov.peak_sessions, 25_000.0);
    let spike = ov.stages.iter().find(|s| s.name == "spike").unwrap();
    assert!((spike.per_minute_to - 250_000.0).abs() < 1e-6);
    assert_eq!(spike.sessions_to, 25_000.0);
    // ~30 million messages in the two-hour spike stage (one minute of it is the ramp).
    assert!((spike.messages - (127_500.0 + 119.0 * 250_000.0)).abs() < 1.0);
    // The gateway admits 24,500 new users in no less than 49 s.
    assert!(ov.connect_time_at_peak >= 50.0);
    // Q19's stated 10% of messages need the LLM.
    assert!((ov.llm_share - 0.10).abs() < 1e-9);
}

#[test]
fn cost_profile_has_q35_assumptions() {
    let p = Profile::load(profiles_dir().join("cost-100k.toml")).unwrap();
    assert!((p.llm_share() - 0.40).abs() < 1e-9);
    let per_day = p.schedule().total_messages();
    assert!((per_day - 500_000.0).abs() < 1.0, "{per_day}");
    let store = &p.system.stores["manga_jp"];
    assert_eq!(p.system.prompt_tokens(store), 0.0);
}

#[test]
fn overrides_replace_system_values() {
    let p = Profile::load(profiles_dir().join("latency-optimizations.toml")).unwrap();
    assert!(p.system.bedrock.tiering);
    assert!(p.system.semantic_cache.enabled);
    assert_eq!(p.system.burst.provisioned, 50);
    // Untouched values come from the system file.
    assert_eq!(p.system.orchestrator.max_tasks, 200);
}

#[test]
fn valid_profile_loads_with_per_session_rates() {
    let p = load_text(&valid_profile()).unwrap();
    let s = p.schedule();
    assert_eq!(s.peak_sessions(), 200.0);
    // 200 sessions × 10/min = 2,000/min at the end.
    assert!((s.peak_rate() * 60.0 - 2000.0).abs() < 1e-6);
}

#[test]
fn bad_unit_names_the_key_and_what_was_expected() {
    let text = valid_profile().replace("reply_timeout = \"30s\"", "reply_timeout = \"30 parsecs\"");
    let msg = only_problem(&text);
    assert!(
        msg.starts_with("11:1: traffic.reply_timeout: expected a duration"),
        "{msg}"
    );
}

#[test]
fn whole_number_expected() {
    let text = valid_profile().replace("sessions = 200", "sessions = \"25k\"");
    let msg = only_problem(&text);
    assert_eq!(
        msg,
        "31:1: traffic.stages[1].sessions: expected a whole number, found \"25k\""
    );
}

#[test]
fn unknown_key_is_an_error() {
    let text =
        valid_profile().replace("arrival = \"poisson\"", "arrival = \"poisson\"\narival = 3");
    let msg = only_problem(&text);
    assert!(
        msg.contains("traffic.arival: unknown key; expected one of"),
        "{msg}"
    );
    assert!(msg.starts_with("10:1:"), "{msg}");
}

#[test]
fn unknown_key_in_system_override_points_at_the_profile() {
    let text = valid_profile().replace("[traffic]\n", "bedrock.tierring = true\n\n[traffic]\n");
    let err = load_text(&text).unwrap_err();
    let d = &err.diagnostics()[0];
    assert!(d.file.ends_with("p.toml"), "{err}");
    assert_eq!(d.key.to_string(), "system.bedrock.tierring", "{err}");
    assert!(d.message.starts_with("unknown key"), "{err}");
}

#[test]
fn bad_override_value_points_at_the_profile_line() {
    let text =
        valid_profile().replace("[traffic]\n", "orchestrator.min_tasks = 500\n\n[traffic]\n");
    let err = load_text(&text).unwrap_err();
    let d = &err.diagnostics()[0];
    assert!(d.file.ends_with("p.toml"), "{err}");
    assert_eq!(d.key.to_string(), "system.orchestrator.min_tasks");
    assert_eq!(d.position.unwrap().line, 8);
    assert!(d.message.contains("above max_tasks"), "{err}");
}

#[test]
fn unknown_metric_in_threshold() {
    let text = valid_profile().replace("\"ttft.p99\" = \"< 1s\"", "\"latency.p99\" = \"< 1s\"");
    let msg = only_problem(&text);
    assert!(
        msg.contains("thresholds.latency.p99: unknown metric"),
        "{msg}"
    );
    let text = valid_profile().replace("\"ttft.p99\" = \"< 1s\"", "\"ttft:mars.p99\" = \"< 1s\"");
    let msg = only_problem(&text);
    assert!(msg.contains("neither a store nor a model"), "{msg}");
    let text = valid_profile().replace("\"ttft.p99\" = \"< 1s\"", "\"ttft.p99\" = \"< 1%\"");
    let msg = only_problem(&text);
    assert!(msg.contains("is a duration"), "{msg}");
}

#[test]
fn missing_field_is_named() {
    let text = valid_profile().replace("conversation_turns = 5\n", "");
    let msg = only_problem(&text);
    assert!(
        msg.ends_with("traffic.conversation_turns: required key is missing"),
        "{msg}"
    );
    let text = valid_profile().replace("session_rate = \"10/min\"\n", "");
    let msg = only_problem(&text);
    assert!(
        msg.contains("traffic.stages[1]: a stage needs message_rate"),
        "{msg}"
    );
}

#[test]
fn zero_and_negative_rates_are_rejected() {
    let text = valid_profile().replace("message_rate = \"1000/min\"", "message_rate = \"0/min\"");
    let msg = only_problem(&text);
    assert!(
        msg.contains("traffic.stages[0].message_rate: must be greater than zero"),
        "{msg}"
    );
    let text = valid_profile().replace("message_rate = \"1000/min\"", "message_rate = \"-5/min\"");
    let msg = only_problem(&text);
    assert!(msg.contains("traffic.stages[0].message_rate"), "{msg}");
    let text = valid_profile().replace("connect_rate = \"500/s\"", "connect_rate = \"0/s\"");
    let msg = only_problem(&text);
    assert!(
        msg.contains("traffic.connect_rate: must be greater than zero"),
        "{msg}"
    );
}

#[test]
fn the_gateway_closes_connections_after_a_time_a_profile_may_shorten_but_not_zero() {
    let short = valid_profile().replace(
        "file = \"",
        "gateway.max_connection = \"3s\"\ngateway.idle_timeout = \"500ms\"\nfile = \"",
    );
    let g = load_text(&short).unwrap().system.gateway;
    assert_eq!(g.max_connection.to_std(), std::time::Duration::from_secs(3));
    assert_eq!(
        g.idle_timeout.to_std(),
        std::time::Duration::from_millis(500)
    );
    let zero = valid_profile().replace("file = \"", "gateway.idle_timeout = \"0\"\nfile = \"");
    let msg = only_problem(&zero);
    assert!(
        msg.contains("gateway.idle_timeout: must be longer than zero"),
        "{msg}"
    );
}

#[test]
fn stage_ending_after_the_duration() {
    let text = valid_profile().replace("duration = \"10m\"", "duration = \"8m\"");
    let msg = only_problem(&text);
    assert_eq!(
        msg,
        "29:1: traffic.stages[1].duration: stage \"b\" ends at 10m, after the profile duration 8m"
    );
}

#[test]
fn mixes_must_add_up_and_name_known_things() {
    let text = valid_profile().replace("recommendation = \"10%\"", "recommendation = \"20%\"");
    let msg = only_problem(&text);
    assert!(
        msg.contains("traffic.intents: intent shares must add up to 100%"),
        "{msg}"
    );
    let text = valid_profile().replace("manga_jp = \"100%\"", "manga_fr = \"100%\"");
    let msg = only_problem(&text);
    assert!(
        msg.contains("traffic.stores.manga_fr: unknown store"),
        "{msg}"
    );
}

#[test]
fn several_problems_are_reported_together() {
    let text = valid_profile()
        .replace("duration = \"10m\"", "duration = \"8m\"")
        .replace("manga_jp = \"100%\"", "manga_jp = \"90%\"");
    let err = load_text(&text).unwrap_err();
    assert_eq!(err.diagnostics().len(), 2, "{err}");
    assert!(err.to_string().starts_with("invalid profile (2 problems):"));
}

#[test]
fn toml_syntax_error_has_a_position() {
    let err = load_text("seed = = 1\n").unwrap_err();
    let d = &err.diagnostics()[0];
    assert_eq!(d.position.unwrap().line, 1);
    assert!(d.message.starts_with("not valid TOML"), "{err}");
}

#[test]
fn missing_system_file_is_a_read_error() {
    let text = valid_profile().replace(&system_file(), "/nonexistent/system.toml");
    let err = load_text(&text).unwrap_err();
    assert!(matches!(err, ProfileError::Read { .. }));
    assert!(err.to_string().contains("/nonexistent/system.toml"));
}

#[test]
fn resolved_profile_serializes() {
    let p = load_text(&valid_profile()).unwrap();
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["traffic"]["stages"][1]["session_rate"], "10/min");
    assert_eq!(json["thresholds"]["ttft.p99"], "< 1s");
    assert_eq!(json["system"]["orchestrator"]["max_tasks"], 200);
}

#[test]
fn protocol_policy_keys_without_a_frame_shape_keep_the_default_shape() {
    let text = format!(
        "{}\n[protocol]\nignore = [ {{ pointer = \"/type\", equals = \"typing\" }} ]\n\
         unsolicited = \"error\"\nkeepalive = {{ every = \"5m\", ping = true }}\n",
        valid_profile()
    );
    let p = load_text(&text).unwrap();
    assert!(p.protocol.mapping.is_none());
    assert_eq!(p.protocol.unsolicited, surge_profile::Unsolicited::Error);
    assert_eq!(
        p.protocol.keepalive.unwrap().action,
        surge_profile::KeepaliveAction::Ping
    );
    let json = serde_json::to_value(load_text(&valid_profile()).unwrap()).unwrap();
    assert_eq!(json["protocol"]["unsolicited"], "count");
}

#[test]
fn protocol_problems_name_the_key_and_say_what_to_write() {
    let base = valid_profile();
    let msg = only_problem(&format!(
        "{base}\n[protocol]\nkeepalive = {{ every = \"0\", send = '{{\"action\":\"ping\"}}' }}\n"
    ));
    assert!(
        msg.contains("protocol.keepalive.every: must be longer than zero: write every = \"5m\""),
        "{msg}"
    );
    let msg = only_problem(&format!(
        "{base}\n[protocol]\nkeepalive = {{ every = \"10m\", ping = true }}\n"
    ));
    assert!(
        msg.contains(
            "protocol.keepalive.every: 10m is not shorter than the gateway's idle timeout"
        ),
        "{msg}"
    );
    assert!(msg.contains("write every = \"5m\""), "{msg}");
    let msg = only_problem(&format!("{base}\n[protocol]\nunsolicited = \"warn\"\n"));
    assert!(msg.contains("protocol.unsolicited"), "{msg}");
    let msg = only_problem(&format!("{base}\n[protocol]\nignroe = []\n"));
    assert!(
        msg.contains("protocol.ignroe: unknown key; expected one of") && msg.contains("keepalive"),
        "{msg}"
    );
    let err = load_text(&format!(
        "{base}\n[protocol]\nsend = '{{\"q\":\"{{text}}\"}}'\ncorrelate = \"order\"\n"
    ))
    .unwrap_err();
    let keys: Vec<String> = err
        .diagnostics()
        .iter()
        .map(|d| d.key.to_string())
        .collect();
    assert_eq!(keys, ["protocol.token", "protocol.done"], "{err}");
}

/// `[target.auth]` says where credentials come from, never what they are; each kind checks
/// what it needs, and the bearer short form and the table do not mix.
#[test]
fn target_auth_kinds_and_their_mistakes() {
    let with_target =
        |target: &str| valid_profile().replace("[traffic]\n", &format!("{target}\n[traffic]\n"));
    let p = load_text(&with_target(
        "[target.auth]\nkind = \"sigv4\"\nsign = \"query\"\nregion = \"eu-west-1\"",
    ))
    .unwrap();
    assert_eq!(
        p.target.auth,
        Some(surge_profile::target::Auth::Sigv4 {
            sign: surge_profile::target::SignAt::Query,
            region: Some("eu-west-1".into()),
        })
    );
    let p = load_text(&with_target(
        "[target.auth]\nkind = \"bearer\"\ntoken_env = \"STAGING_TOKEN\"",
    ))
    .unwrap();
    assert_eq!(p.target.token_var(None), Some("STAGING_TOKEN"));
    load_text(&with_target(
        "[target.auth]\nkind = \"query\"\nparam = \"token\"\ntokens_file = \"tokens.txt\"",
    ))
    .unwrap();

    for (target, wanted) in [
        (
            "[target]\ntoken_env = \"A\"\n[target.auth]\nkind = \"bearer\"\ntoken_env = \"B\"",
            "give either token_env",
        ),
        (
            "[target.auth]\nkind = \"query\"\nparam = \"to ken\"\ntokens_file = \"t.txt\"",
            "target.auth.param: expected a query parameter name",
        ),
        (
            "[target.auth]\nkind = \"sigv4\"\nregion = \"EU West\"",
            "target.auth.region: expected an AWS region",
        ),
        ("[target.auth]\nkind = \"password\"", "password"),
        ("[target.auth]\nkind = \"sigv4\"\nsecret = \"x\"", "secret"),
    ] {
        let err = load_text(&with_target(target))
            .expect_err(target)
            .to_string();
        assert!(err.contains(wanted), "{target}: {err}");
    }
}

#[test]
fn a_threshold_table_may_abort_the_run() {
    let with = |entry: &str| {
        valid_profile().replace(
            "\"ttft.p99\" = \"< 1s\"",
            &format!("\"errors.rate\" = {entry}"),
        )
    };
    let p = load_text(&with(
        r#"{ limit = "< 2%", abort = true, window = "30s", after = "1m" }"#,
    ))
    .unwrap();
    let t = &p.thresholds[0];
    assert_eq!(t.to_string(), "errors.rate < 2%");
    let a = t.abort.expect("an abort rule");
    assert_eq!(
        (a.window.to_string(), a.after.to_string()),
        ("30s".into(), "60s".into())
    );
    // The resolved profile keeps the rule, and reads back the same.
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["thresholds"]["errors.rate"]["abort"], true);
    assert_eq!(json["thresholds"]["errors.rate"]["window"], "30s");
    // Defaults: a 10-s window judged from the start; a table without abort is a plain limit.
    let p = load_text(&with(r#"{ limit = "< 2%", abort = true }"#)).unwrap();
    let a = p.thresholds[0].abort.unwrap();
    assert_eq!(
        (a.window.to_string(), a.after.to_string()),
        ("10s".into(), "0".into())
    );
    let p = load_text(&with(r#"{ limit = "< 2%" }"#)).unwrap();
    assert_eq!(p.thresholds[0].abort, None);

    for (entry, says) in [
        (r#"{ abort = true }"#, "needs limit"),
        (
            r#"{ limit = "< 2%", abort = true, windw = "3s" }"#,
            "unknown key \"windw\"",
        ),
        (
            r#"{ limit = "< 2%", window = "3s" }"#,
            "only apply with abort = true",
        ),
        (
            r#"{ limit = "< 2%", abort = true, window = "500ms" }"#,
            "at least 1s",
        ),
        (r#"{ limit = "< 2%", abort = "yes" }"#, "true or false"),
        (
            r#"{ limit = "< 2%", abort = true, after = "soon" }"#,
            "after:",
        ),
        ("42", "found integer"),
        (r#"{ limit = "< 2s", abort = true }"#, "is a percentage"),
    ] {
        let msg = only_problem(&with(entry));
        assert!(msg.contains("thresholds.errors.rate"), "{entry}: {msg}");
        assert!(msg.contains(says), "{entry}: {msg}");
    }
}

#[test]
fn arrivals_are_poisson_constant_gamma_or_a_trace() {
    let with = |arrival: &str| valid_profile().replace(r#"arrival = "poisson""#, arrival);
    let p = load_text(&with(r#"arrival = "gamma(cv=3)""#)).unwrap();
    assert_eq!(p.traffic.arrival.to_string(), "gamma(cv=3)");
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["traffic"]["arrival"], "gamma(cv=3)");
    for (arrival, expected) in [
        (
            r#"arrival = "gamma(cv=0)""#,
            "a number above zero such as 3",
        ),
        (r#"arrival = "gamma(3)""#, "gamma is written gamma(cv=…)"),
        (r#"arrival = "gamma(cv=lots)""#, "a number such as 3"),
        (
            r#"arrival = "bursty""#,
            r#"expected "poisson", "constant", "gamma(cv=…)""#,
        ),
        (
            r#"arrival = { file = "t.csv" }"#,
            r#"unknown key "file" in the trace"#,
        ),
        (
            r#"arrival = { trace = "missing.csv" }"#,
            "cannot read the trace",
        ),
    ] {
        let problem = only_problem(&with(arrival));
        assert!(problem.contains("traffic.arrival"), "{problem}");
        assert!(problem.contains(expected), "{arrival}: {problem}");
    }
}

/// A trace is read relative to the profile; what it names must be in the traffic's mixes,
/// and the run must be long enough for it.
#[test]
fn a_trace_is_checked_against_the_profile() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("traces")).unwrap();
    std::fs::write(
        dir.path().join("traces/t.csv"),
        "offset,session,intent,store\n1,a,product_info,manga_jp\n1400,b,chitchat,kindle\n",
    )
    .unwrap();
    let text = valid_profile().replace(
        r#"arrival = "poisson""#,
        r#"arrival = { trace = "traces/t.csv", speed = 2 }"#,
    );
    let path = dir.path().join("p.toml");
    std::fs::write(&path, &text).unwrap();
    let err = Profile::load(&path).unwrap_err().to_string();
    assert!(err.contains("p.toml"), "{err}");
    assert!(
        err.contains(r#"t.csv line 3: unknown intent "chitchat""#)
            && err.contains("[traffic.intents]: product_info, recommendation"),
        "{err}"
    );
    assert!(err.contains(r#"unknown store "kindle""#), "{err}");
    assert!(
        err.contains("duration") && err.contains("runs until 700s"),
        "{err}"
    );

    std::fs::write(
        dir.path().join("traces/t.csv"),
        "offset,session,intent\n1,a,product_info\n500,b,\n",
    )
    .unwrap();
    let p = Profile::load(&path).unwrap();
    assert_eq!(
        p.traffic.arrival.trace().unwrap().last().to_string(),
        "250s"
    );
    // The schedule is the trace's: two messages, stage names as labels.
    assert!((p.schedule().total_messages() - 2.0).abs() < 1e-9);
    assert_eq!(p.schedule().stage_at("6m".parse().unwrap()), Some(1));
    // A run's resolved profile names the file absolutely and reads back.
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["traffic"]["arrival"]["speed"], 2.0);
    let back = Profile::replay(&json, p.system.clone()).unwrap();
    assert_eq!(back.traffic.arrival, p.traffic.arrival);
}

/// Users who give up and retry: both keys are optional, parsed as a duration and a
/// distribution, and checked against the reply timeout.
#[test]
fn users_give_up_and_retry_within_the_reply_timeout() {
    let with = |keys: &str| {
        valid_profile().replace(
            "reply_timeout = \"30s\"",
            &format!("reply_timeout = \"30s\"\n{keys}"),
        )
    };
    let plain = load_text(&valid_profile()).unwrap();
    assert_eq!(plain.traffic.abandon_after, None);
    assert_eq!(plain.traffic.retry_after_error, None);
    let p = load_text(&with(
        "abandon_after = \"20s\"\nretry_after_error = \"exp(mean=5s)\"",
    ))
    .unwrap();
    assert_eq!(p.traffic.abandon_after, Some("20s".parse().unwrap()));
    let retry = p.traffic.retry_after_error.as_ref().unwrap();
    assert!((retry.mean() - 5e9).abs() < 1.0, "{}", retry.mean());
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["traffic"]["abandon_after"], "20s");
    assert_eq!(json["traffic"]["retry_after_error"], "exp(mean=5s)");
    // Equal to the reply timeout is allowed: the user gives up as the timeout would fire.
    load_text(&with("abandon_after = \"30s\"")).unwrap();
    for (keys, key, says) in [
        (
            "abandon_after = \"31s\"",
            "traffic.abandon_after",
            "make abandon_after at most reply_timeout",
        ),
        (
            "abandon_after = \"0s\"",
            "traffic.abandon_after",
            "must be longer than zero",
        ),
        (
            "abandon_after = \"soon\"",
            "traffic.abandon_after",
            "expected a duration",
        ),
        (
            "retry_after_error = \"exp(5s)\"",
            "traffic.retry_after_error",
            "exp(mean=…)",
        ),
        (
            "retry_after_error = \"poisson(mean=5s)\"",
            "traffic.retry_after_error",
            "poisson",
        ),
        (
            "retry_after_error = \"exp(mean=5)\"",
            "traffic.retry_after_error",
            "",
        ),
    ] {
        let problem = only_problem(&with(keys));
        assert!(problem.contains(key), "{keys}: {problem}");
        assert!(problem.contains(says), "{keys}: {problem}");
    }
}
