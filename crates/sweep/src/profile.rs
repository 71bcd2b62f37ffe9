//! Each step's profile: the user's profile with its stages replaced by one stage held at
//! the step's rate.
//!
//! Why a file: worker processes (`--shards N`) read their profile from disk, and loading
//! the written file validates the step exactly as `surge run` would validate it. Paths the
//! profile names relative to itself (the system model, a tokens file) are made absolute,
//! since the step file lives in the sweep directory.

use std::path::Path;

use surge_profile::{Duration, Profile};

/// Writes the step profile to `path` and loads it back.
pub fn write_step(
    base: &Profile,
    rate_per_min: f64,
    sessions: u64,
    hold: Duration,
    path: &Path,
) -> Result<Profile, String> {
    let source = &base.files.profile;
    let text = std::fs::read_to_string(source)
        .map_err(|e| format!("cannot read {}: {e}", source.display()))?;
    let mut table: toml::Table = text
        .parse()
        .map_err(|e| format!("{}: {e}", source.display()))?;
    let here = source.parent().unwrap_or(Path::new("."));
    let system = std::path::absolute(&base.files.system)
        .map_err(|e| format!("{}: {e}", base.files.system.display()))?;
    if let Some(sys) = table.get_mut("system").and_then(|v| v.as_table_mut()) {
        sys.insert("file".into(), system.to_string_lossy().into_owned().into());
    }
    if let Some(file) = table
        .get_mut("target")
        .and_then(|v| v.as_table_mut())
        .and_then(|t| t.get_mut("auth"))
        .and_then(|v| v.as_table_mut())
        .and_then(|a| a.get_mut("tokens_file"))
    {
        if let Some(rel) = file.as_str() {
            *file = here.join(rel).to_string_lossy().into_owned().into();
        }
    }
    table.insert("name".into(), base.name.clone().into());
    table.insert("duration".into(), hold.to_string().into());
    let ramp = ramp(sessions, base.traffic.connect_rate.per_second(), hold);
    let mut stage = toml::Table::new();
    stage.insert(
        "name".into(),
        format!("{}/min", rate_label(rate_per_min)).into(),
    );
    stage.insert("duration".into(), hold.to_string().into());
    stage.insert("ramp".into(), ramp.to_string().into());
    stage.insert("sessions".into(), toml::Value::Integer(sessions as i64));
    stage.insert("message_rate".into(), format!("{rate_per_min}/min").into());
    let traffic = table
        .get_mut("traffic")
        .and_then(|v| v.as_table_mut())
        .ok_or_else(|| format!("{} has no [traffic] table", source.display()))?;
    traffic.insert(
        "stages".into(),
        toml::Value::Array(vec![toml::Value::Table(stage)]),
    );
    let written = toml::to_string(&table).map_err(|e| format!("step profile: {e}"))?;
    std::fs::write(path, written).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Profile::load(path).map_err(|e| format!("the step at {rate_per_min}/min: {e}"))
}

/// A step's ramp: the time `connect_rate` needs to open its sessions (at most half the
/// hold), so that sessions and rate rise together and no message waits for a connection.
/// Sessions that open within a second start at full rate instead: the simulator admits
/// connections once a simulated second, so a sub-second ramp from zero would hand the whole
/// first second's messages to one session (one question at a time) and predict a tail the
/// generator never sees.
fn ramp(sessions: u64, connect_per_s: f64, hold: Duration) -> Duration {
    let opening = sessions as f64 / connect_per_s.max(1e-9);
    if opening <= 1.0 {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(opening.min(hold.as_secs_f64() / 2.0))
    }
}

/// A rate for names and labels: whole numbers without decimals.
pub fn rate_label(rate_per_min: f64) -> String {
    crate::steps::Figure(rate_per_min).to_string()
}
