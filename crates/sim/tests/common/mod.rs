//! Test profiles, built from text the way a person writes them.

#![allow(dead_code)]

use std::path::Path;

use surge_profile::Profile;

pub fn system_file() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../profiles/system/mangaassist.toml")
        .canonicalize()
        .unwrap()
        .display()
        .to_string()
}

/// `<layer>.enabled = false` for every layer not named in `on`.
pub fn layers_off_except(on: &[&str]) -> String {
    [
        "gateway",
        "orchestrator",
        "burst",
        "classifier",
        "memory",
        "cache",
        "semantic_cache",
        "precomputed",
        "rag",
        "bedrock",
        "guardrails",
        "format",
    ]
    .iter()
    .filter(|l| !on.contains(l))
    .map(|l| format!("{l}.enabled = false\n"))
    .collect()
}

/// A profile with the given system overrides (TOML lines under `[system]`), arrival
/// kind, intent mix and stages (TOML `[[traffic.stages]]` blocks).
pub fn profile(system: &str, arrival: &str, intents: &str, stages: &str) -> Profile {
    let text = format!(
        r#"description = "test"
seed = 7

[system]
file = "{file}"
{system}

[traffic]
arrival = "{arrival}"
conversation_turns = 5
reply_timeout = "30s"
connect_rate = "500/s"

[traffic.stores]
manga_jp = "100%"

[traffic.intents]
{intents}

{stages}
"#,
        file = system_file()
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test-profile.toml");
    std::fs::write(&path, text).unwrap();
    Profile::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// One stage block.
pub fn stage(name: &str, duration: &str, sessions: u64, rate: &str) -> String {
    format!(
        "[[traffic.stages]]\nname = \"{name}\"\nduration = \"{duration}\"\nsessions = {sessions}\nmessage_rate = \"{rate}\"\n"
    )
}
