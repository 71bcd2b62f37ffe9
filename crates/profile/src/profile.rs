//! A profile: one scenario that drives `simulate`, `mock`, `run` and `bench` alike.
//!
//! Loading is strict: the TOML must parse, every key must be known, every value must have
//! the expected unit, and the scenario must make sense (stages inside the duration, mixes
//! adding up to 100 %, intents and stores known to the system model, thresholds naming
//! real figures). All problems found are reported together, each with file, line, column
//! and key. The system model lives in its own file (`system = { file = … }`); keys next to
//! `file` override it, and an error in an overridden key points at the profile.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize, Serializer};

use crate::diag::{Diagnostic, KeyPath, SourceFile};
use crate::goodput::Slos;
use crate::metric::{Abort, MetricRef, RatioMetric, Threshold};
use crate::prewarm::Prewarm;
use crate::protocol::{Protocol, ProtocolTable};
use crate::system::SystemModel;
use crate::target::{Target, parse_ws_url};
use crate::traffic::{MessageRate, Schedule, Stage, Traffic};
use crate::units::{Duration, Money, Percent, Rate};

/// A loaded, validated profile.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub name: String,
    pub description: String,
    pub seed: u64,
    /// How long the scenario runs (defaults to the sum of the stages).
    pub duration: Duration,
    pub traffic: Traffic,
    pub system: SystemModel,
    pub target: Target,
    /// The `[protocol]` table: the frame shape (default or the chatbot's own), frames to
    /// ignore, unsolicited frames, keepalive.
    pub protocol: Protocol,
    #[serde(serialize_with = "serialize_thresholds")]
    pub thresholds: Vec<Threshold>,
    /// Per-answer SLOs of `[goodput]` (none: no goodput figures).
    #[serde(skip_serializing_if = "is_default")]
    pub goodput: Slos,
    pub cost: Option<CostSpec>,
    /// HTTP calls that warm the system's caches before a spike (`surge prewarm`).
    pub prewarm: Option<Prewarm>,
    /// Where the profile and its system model were read from.
    #[serde(skip)]
    pub files: ProfileFiles,
}

#[derive(Debug, Clone, Default)]
pub struct ProfileFiles {
    pub profile: PathBuf,
    pub system: PathBuf,
}

/// Inputs of the analytic cost model (Q35 reasons per day).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostSpec {
    pub conversations_per_day: f64,
    pub days_per_month: f64,
    /// What one interaction with a human support agent costs, low and high (Q35: $3–7).
    pub human_agent_low: Money,
    pub human_agent_high: Money,
    /// WebSocket connection minutes per conversation (Q35: ~5 min average).
    pub connection_minutes: f64,
    /// Lambda burst workers on overflow only, as a flat monthly amount (Q35: ~$50/month);
    /// simulated runs price the invocations they actually made instead.
    pub lambda_overflow_monthly: Money,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

fn serialize_thresholds<S: Serializer>(t: &[Threshold], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(t.iter().map(|t| {
        let condition = format!("{} {}", t.comparison.symbol(), t.limit);
        let value = match t.abort {
            None => serde_json::Value::String(condition),
            Some(a) => serde_json::json!({
                "limit": condition,
                "abort": true,
                "window": a.window.to_string(),
                "after": a.after.to_string(),
            }),
        };
        (t.metric.to_string(), value)
    }))
}

/// A threshold as written: `"< 2%"`, or a table that may also stop the run,
/// `{ limit = "< 2%", abort = true, window = "30s", after = "1m" }`. Gives the condition and
/// the abort rule.
fn threshold_entry(entry: &toml::Value) -> Result<(String, Option<Abort>), String> {
    let table = match entry {
        toml::Value::String(condition) => return Ok((condition.clone(), None)),
        toml::Value::Table(t) => t,
        other => {
            return Err(format!(
                "expected a condition such as \"< 800ms\" or a table \
                 {{ limit = \"< 2%\", abort = true, window = \"30s\", after = \"1m\" }}, found {}",
                other.type_str()
            ));
        }
    };
    if let Some(k) = table
        .keys()
        .find(|k| !matches!(k.as_str(), "limit" | "abort" | "window" | "after"))
    {
        return Err(format!(
            "unknown key \"{k}\": a threshold table has limit, abort, window and after"
        ));
    }
    let condition = match table.get("limit") {
        Some(toml::Value::String(c)) => c.clone(),
        _ => return Err("a threshold table needs limit = \"< 2%\" (a condition string)".into()),
    };
    let abort = match table.get("abort") {
        None => false,
        Some(toml::Value::Boolean(b)) => *b,
        Some(_) => return Err("abort must be true or false".into()),
    };
    let duration = |name: &str| -> Result<Option<Duration>, String> {
        match table.get(name) {
            None => Ok(None),
            Some(toml::Value::String(d)) => d
                .parse::<Duration>()
                .map(Some)
                .map_err(|e| format!("{name}: {e}")),
            Some(_) => Err(format!("{name} must be a duration such as \"30s\"")),
        }
    };
    let (window, after) = (duration("window")?, duration("after")?);
    if !abort {
        if window.is_some() || after.is_some() {
            return Err("window and after only apply with abort = true".into());
        }
        return Ok((condition, None));
    }
    let window = window.unwrap_or(Abort::DEFAULT_WINDOW);
    if window < Duration::from_millis(1000) {
        return Err(format!(
            "window = \"{window}\": the run is judged once a second, so the window must be at least 1s"
        ));
    }
    Ok((
        condition,
        Some(Abort {
            window,
            after: after.unwrap_or(Duration::ZERO),
        }),
    ))
}

/// The file as written, before the system model is attached.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    #[serde(default)]
    name: Option<String>,
    description: String,
    system: toml::Table,
    seed: u64,
    #[serde(default)]
    duration: Option<Duration>,
    traffic: Traffic,
    #[serde(default)]
    target: Target,
    #[serde(default)]
    protocol: Option<ProtocolTable>,
    #[serde(default)]
    thresholds: BTreeMap<String, toml::Value>,
    #[serde(default)]
    goodput: Slos,
    #[serde(default)]
    cost: Option<CostSpec>,
    #[serde(default)]
    prewarm: Option<Prewarm>,
}

/// Why a profile could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", render(.0))]
    Invalid(Vec<Diagnostic>),
}

fn render(diags: &[Diagnostic]) -> String {
    let mut s = format!(
        "invalid profile ({} problem{}):",
        diags.len(),
        if diags.len() == 1 { "" } else { "s" }
    );
    for d in diags {
        s.push_str("\n  ");
        s.push_str(&d.to_string());
    }
    s
}

impl ProfileError {
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            Self::Invalid(d) => d,
            Self::Read { .. } => &[],
        }
    }
}

fn read(path: &Path) -> Result<SourceFile, ProfileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(SourceFile::new(path, text))
}

fn parse_table(file: &SourceFile) -> Result<toml::Table, Diagnostic> {
    file.text.parse::<toml::Table>().map_err(|e| {
        file.diagnostic_at(
            e.span().map(|s| s.start),
            format!("not valid TOML: {}", e.message().trim()),
        )
    })
}

/// Deserializes `table` into `T`, turning the first error into a diagnostic with its key.
fn typed<T: serde::de::DeserializeOwned>(table: toml::Table) -> Result<T, (KeyPath, String)> {
    serde_path_to_error::deserialize(table).map_err(|e| {
        let path = KeyPath::from(e.path());
        humanize(path, e.inner().message())
    })
}

/// Rewrites serde's messages into what a profile author needs to read.
fn humanize(path: KeyPath, message: &str) -> (KeyPath, String) {
    let message = message.trim();
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.trim_end_matches('`');
        return (path.key(field), "required key is missing".into());
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let expected = expected
            .trim_start_matches(", expected ")
            .trim_start_matches("one of ")
            .replace('`', "");
        let key = match path.segments().last() {
            Some(crate::diag::KeySeg::Key(k)) if k == field => path,
            _ => path.key(field),
        };
        let msg = if expected.is_empty() {
            "unknown key".to_string()
        } else {
            format!("unknown key; expected one of {expected}")
        };
        return (key, msg);
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        if let Some((found, expected)) = rest.split_once(", expected ") {
            let expected = match expected {
                "u64" | "u32" | "u16" | "usize" | "i64" => "a whole number",
                "f64" | "f32" => "a number",
                "a boolean" => "true or false",
                other => other,
            };
            let found = found
                .strip_prefix("string ")
                .map(str::to_string)
                .unwrap_or_else(|| found.to_string());
            return (path, format!("expected {expected}, found {found}"));
        }
    }
    if let Some(rest) = message.strip_prefix("invalid value: integer `") {
        let (value, _) = rest.split_once('`').unwrap_or((rest, ""));
        return (
            path,
            format!("expected a whole number that is not negative, found {value}"),
        );
    }
    (path, message.to_string())
}

/// Merges `overrides` into `base`, recording the path of every replaced leaf.
fn merge(base: &mut toml::Table, overrides: toml::Table, at: &KeyPath, touched: &mut Vec<KeyPath>) {
    for (key, value) in overrides {
        let path = at.key(key.clone());
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o, &path, touched),
            (_, value) => {
                base.insert(key, value);
                touched.push(path);
            }
        }
    }
}

impl Profile {
    /// Reads and validates a profile and the system model it names.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ProfileError> {
        let profile_src = read(path.as_ref())?;
        let mut table = parse_table(&profile_src).map_err(|d| ProfileError::Invalid(vec![d]))?;
        resolve_trace_path(
            &mut table,
            profile_src.path.parent().unwrap_or(Path::new(".")),
        );
        let file: ProfileFile = typed(table)
            .map_err(|(key, msg)| ProfileError::Invalid(vec![profile_src.diagnostic(key, msg)]))?;
        let ProfileFile {
            name,
            description,
            mut system,
            seed,
            duration,
            mut traffic,
            target,
            protocol,
            thresholds,
            goodput,
            cost,
            prewarm,
        } = file;

        // The system model: its own file, with the profile's overrides on top.
        let system_key = KeyPath::root().key("system");
        let system_path = match system.remove("file") {
            Some(toml::Value::String(rel)) => profile_src
                .path
                .parent()
                .unwrap_or(Path::new("."))
                .join(rel),
            Some(other) => {
                return Err(ProfileError::Invalid(vec![profile_src.diagnostic(
                    system_key.key("file"),
                    format!(
                        "expected the path of a system model file, found {}",
                        other.type_str()
                    ),
                )]));
            }
            None => {
                return Err(ProfileError::Invalid(vec![profile_src.diagnostic(
                    system_key.key("file"),
                    "required key is missing (the system model file, e.g. \"system/mangaassist.toml\")",
                )]));
            }
        };
        let system_src = read(&system_path)?;
        let mut system_table =
            parse_table(&system_src).map_err(|d| ProfileError::Invalid(vec![d]))?;
        let mut overridden = Vec::new();
        merge(&mut system_table, system, &KeyPath::root(), &mut overridden);
        let locate_system = |key: KeyPath, msg: String| -> Diagnostic {
            let from_profile = overridden
                .iter()
                .any(|o| key.starts_with(o) || o.starts_with(&key) && !key.is_root());
            if from_profile {
                profile_src.diagnostic(key.under(&system_key), msg)
            } else {
                system_src.diagnostic(key, msg)
            }
        };
        let system: SystemModel = typed(system_table)
            .map_err(|(key, msg)| ProfileError::Invalid(vec![locate_system(key, msg)]))?;

        let mut problems: Vec<Diagnostic> = Vec::new();
        let mut report = |key: &str, msg: String| {
            problems.push(profile_src.diagnostic(KeyPath::parse(key), msg));
        };

        let stage_total = traffic
            .stages
            .iter()
            .fold(Duration::ZERO, |acc, s| acc + s.duration);
        let duration = duration.unwrap_or_else(|| stage_total.max(trace_end(&traffic)));
        label_trace(&mut traffic, duration);
        check_traffic(&traffic, &system, duration, &mut report);

        let mut parsed_thresholds = Vec::new();
        for (metric, entry) in &thresholds {
            let key = format!("thresholds.{metric}");
            let parsed = threshold_entry(entry).and_then(|(condition, abort)| {
                let mut t = metric
                    .parse::<MetricRef>()
                    .and_then(|m| Threshold::parse(m, &condition))
                    .map_err(|e| e.to_string())?;
                t.abort = abort;
                if t.metric == MetricRef::Ratio(RatioMetric::Goodput) && !goodput.any() {
                    return Err(
                        "goodput.ratio needs a [goodput] table saying what a good answer is \
                         (ttft = \"1s\", e2e = \"5s\", tpot = \"50ms\")"
                            .to_string(),
                    );
                }
                Ok(t)
            });
            match parsed {
                Ok(t) => {
                    if let MetricRef::Latency {
                        qualifier: Some(q), ..
                    } = &t.metric
                    {
                        if !system.stores.contains_key(q) && !system.bedrock.models.contains_key(q)
                        {
                            report(
                                &key,
                                format!(
                                    "\"{q}\" is neither a store nor a model of the system model"
                                ),
                            );
                        }
                    }
                    parsed_thresholds.push(t);
                }
                Err(e) => report(&key, e),
            }
        }

        if let Some(url) = &target.url {
            match parse_ws_url(url) {
                Ok((_, host)) if !target.allows(host) => report(
                    "target.url",
                    format!(
                        "host \"{host}\" is not loopback and matches no pattern in target.allowed"
                    ),
                ),
                Ok(_) => {}
                Err(e) => report("target.url", e),
            }
        }
        for (key, msg) in target.auth_problems() {
            report(key, msg);
        }
        let protocol = match protocol.unwrap_or_default().resolve() {
            Ok(p) => p,
            Err(found) => {
                for (key, msg) in found {
                    report(&format!("protocol.{key}"), msg);
                }
                Protocol::default()
            }
        };
        if let Some(k) = &protocol.keepalive {
            let idle = system.gateway.idle_timeout;
            if system.gateway.enabled && idle > Duration::ZERO && k.every >= idle {
                report(
                    "protocol.keepalive.every",
                    format!(
                        "{} is not shorter than the gateway's idle timeout (gateway.idle_timeout \
                         = {idle}): idle connections would be closed before a keepalive; write \
                         every = \"{}\"",
                        k.every,
                        Duration::from_secs_f64(idle.as_secs_f64() / 2.0)
                    ),
                );
            }
        }
        if let Some(p) = &prewarm {
            for (key, msg) in p.problems(&target) {
                report(&format!("prewarm.{key}"), msg);
            }
        }
        if let Some(c) = &cost {
            if c.conversations_per_day <= 0.0 {
                report(
                    "cost.conversations_per_day",
                    "must be greater than zero".into(),
                );
            }
            if c.days_per_month <= 0.0 {
                report("cost.days_per_month", "must be greater than zero".into());
            }
            if c.connection_minutes < 0.0 {
                report("cost.connection_minutes", "must not be negative".into());
            }
            if c.human_agent_high.dollars() < c.human_agent_low.dollars() {
                report(
                    "cost.human_agent_high",
                    "must not be below human_agent_low".into(),
                );
            }
        }

        for (key, msg) in crate::validate::system_problems(&system) {
            problems.push(locate_system(KeyPath::parse(&key), msg));
        }

        if !problems.is_empty() {
            return Err(ProfileError::Invalid(problems));
        }
        let name = name.unwrap_or_else(|| {
            profile_src
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "profile".into())
        });
        Ok(Self {
            name,
            description,
            seed,
            duration,
            traffic,
            system,
            target,
            protocol,
            thresholds: parsed_thresholds,
            goodput,
            cost,
            prewarm,
            files: ProfileFiles {
                profile: profile_src.path,
                system: system_src.path,
            },
        })
    }

    /// The traffic of a run that has happened, on another system model: `resolved` is a
    /// run directory's `resolved_profile` (name, seed, duration and traffic are taken from
    /// it; its own system model, target and thresholds are not). Calibration replays each
    /// measured run this way on every candidate model.
    ///
    /// # Errors
    /// What is missing or invalid in `resolved`, or what the traffic asks of `system`
    /// that it does not have (an intent or store it lacks), as one line each.
    pub fn replay(resolved: &serde_json::Value, system: SystemModel) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Replayed {
            name: String,
            #[serde(default)]
            description: String,
            seed: u64,
            duration: Duration,
            traffic: Traffic,
        }
        let r: Replayed = serde_json::from_value(resolved.clone())
            .map_err(|e| format!("the resolved profile cannot be read back: {e}"))?;
        let mut problems = Vec::new();
        check_traffic(
            &r.traffic,
            &system,
            r.duration,
            &mut |key: &str, msg: String| {
                problems.push(format!("{key}: {msg}"));
            },
        );
        problems.extend(
            crate::validate::system_problems(&system)
                .into_iter()
                .map(|(key, msg)| format!("system.{key}: {msg}")),
        );
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        Ok(Self {
            name: r.name,
            description: r.description,
            seed: r.seed,
            duration: r.duration,
            traffic: r.traffic,
            system,
            target: Target::default(),
            protocol: Protocol::default(),
            thresholds: Vec::new(),
            goodput: Slos::default(),
            cost: None,
            prewarm: None,
            files: ProfileFiles::default(),
        })
    }

    /// sessions(t) and rate(t) of this profile.
    pub fn schedule(&self) -> Schedule {
        self.traffic.schedule(self.duration)
    }

    /// Share of messages whose intent needs the LLM (before any cache).
    pub fn llm_share(&self) -> f64 {
        self.traffic
            .intents
            .iter()
            .filter(|(name, _)| self.system.intents.get(*name).is_some_and(|i| i.llm))
            .map(|(_, share)| share.fraction())
            .sum()
    }
}

/// A trace's file is written relative to the profile: made absolute before the trace is
/// read (and so in the resolved profile of a run).
fn resolve_trace_path(table: &mut toml::Table, dir: &Path) {
    let file = table
        .get_mut("traffic")
        .and_then(|t| t.as_table_mut())
        .and_then(|t| t.get_mut("arrival"))
        .and_then(|a| a.as_table_mut())
        .and_then(|a| a.get_mut("trace"));
    if let Some(toml::Value::String(rel)) = file {
        *rel = dir.join(&*rel).to_string_lossy().into_owned();
    }
}

/// When a trace's run ends by default: its last message's reply timeout, to the second.
fn trace_end(traffic: &Traffic) -> Duration {
    traffic.arrival.trace().map_or(Duration::ZERO, |t| {
        let end = (t.last() + traffic.reply_timeout).as_secs_f64().ceil();
        Duration::from_secs_f64(end)
    })
}

/// A trace without stages gets one stage, "trace", over the whole run: reports name their
/// time windows by stage.
fn label_trace(traffic: &mut Traffic, duration: Duration) {
    let Some(trace) = traffic.arrival.trace() else {
        return;
    };
    if !traffic.stages.is_empty() || duration == Duration::ZERO {
        return;
    }
    let rate = Rate::from_per_second(trace.len() as f64 / duration.as_secs_f64());
    let peak = traffic.schedule(duration).peak_sessions();
    traffic.stages.push(Stage {
        name: "trace".into(),
        duration,
        ramp: Duration::ZERO,
        sessions: peak.ceil() as u64,
        rate: MessageRate::Total(rate),
    });
}

fn mix_sum<'a>(shares: impl Iterator<Item = &'a Percent>) -> f64 {
    shares.map(|p| p.fraction()).sum()
}

fn check_traffic(
    traffic: &Traffic,
    system: &SystemModel,
    duration: Duration,
    report: &mut impl FnMut(&str, String),
) {
    if traffic.stages.is_empty() {
        report(
            "traffic.stages",
            "at least one stage is needed ([[traffic.stages]])".into(),
        );
    }
    let mut end = Duration::ZERO;
    for (i, stage) in traffic.stages.iter().enumerate() {
        let key = format!("traffic.stages[{i}]");
        end += stage.duration;
        if stage.duration == Duration::ZERO {
            report(
                &format!("{key}.duration"),
                "must be longer than zero".into(),
            );
        }
        if stage.ramp > stage.duration {
            report(
                &format!("{key}.ramp"),
                format!(
                    "the ramp ({}) is longer than the stage ({})",
                    stage.ramp, stage.duration
                ),
            );
        }
        let (rate_key, rate) = match stage.rate {
            MessageRate::Total(r) => ("message_rate", r),
            MessageRate::PerSession(r) => ("session_rate", r),
        };
        if stage.sessions > 0 && rate.per_second() <= 0.0 {
            report(
                &format!("{key}.{rate_key}"),
                format!("must be greater than zero while sessions are open, found \"{rate}\""),
            );
        }
        if stage.sessions == 0 && rate.per_second() > 0.0 {
            report(
                &format!("{key}.{rate_key}"),
                "messages need sessions: this stage has sessions = 0".into(),
            );
        }
        if end > duration {
            report(
                &format!("{key}.duration"),
                format!(
                    "stage \"{}\" ends at {end}, after the profile duration {duration}",
                    stage.name
                ),
            );
        }
    }
    if let Some(trace) = traffic.arrival.trace() {
        let shown = trace.file().display();
        if trace.last() > duration {
            report(
                "duration",
                format!(
                    "the trace {shown} runs until {} (at speed {}); a duration of {duration} \
                     would cut it: leave duration out or make it at least that",
                    trace.last(),
                    trace.speed()
                ),
            );
        }
        for (intents, table) in [(true, &traffic.intents), (false, &traffic.stores)] {
            let known: Vec<&str> = table.keys().map(String::as_str).collect();
            let (what, key) = if intents {
                ("intent", "traffic.intents")
            } else {
                ("store", "traffic.stores")
            };
            for (line, name) in trace.unknown(intents, &known) {
                report(
                    "traffic.arrival",
                    format!(
                        "trace {shown} line {line}: unknown {what} \"{name}\"; the trace may \
                         name those of [{key}]: {} (add it there or fix the trace)",
                        known.join(", ")
                    ),
                );
            }
        }
    }
    if traffic.conversation_turns <= 0.0 {
        report(
            "traffic.conversation_turns",
            format!(
                "must be greater than zero, found {}",
                traffic.conversation_turns
            ),
        );
    }
    if traffic.reply_timeout == Duration::ZERO {
        report("traffic.reply_timeout", "must be longer than zero".into());
    }
    match traffic.abandon_after {
        Some(a) if a == Duration::ZERO => report(
            "traffic.abandon_after",
            "must be longer than zero (leave it out if users never give up)".into(),
        ),
        Some(a) if a > traffic.reply_timeout => report(
            "traffic.abandon_after",
            format!(
                "users giving up after {a} would never do so: the reply timeout ({}) ends \
                 the wait first; make abandon_after at most reply_timeout",
                traffic.reply_timeout
            ),
        ),
        _ => {}
    }
    if traffic.connect_rate.per_second() <= 0.0 {
        report(
            "traffic.connect_rate",
            format!(
                "must be greater than zero, found \"{}\"",
                traffic.connect_rate
            ),
        );
    }
    let stores = mix_sum(traffic.stores.values());
    if (stores - 1.0).abs() > 1e-4 {
        report(
            "traffic.stores",
            format!(
                "store shares must add up to 100%, they add up to {:.4}%",
                stores * 100.0
            ),
        );
    }
    for store in traffic.stores.keys() {
        if !system.stores.contains_key(store) {
            report(
                &format!("traffic.stores.{store}"),
                format!(
                    "unknown store; the system model has {}",
                    system.stores.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            );
        }
    }
    let intents = mix_sum(traffic.intents.values());
    if (intents - 1.0).abs() > 1e-4 {
        report(
            "traffic.intents",
            format!(
                "intent shares must add up to 100%, they add up to {:.4}%",
                intents * 100.0
            ),
        );
    }
    for name in traffic.intents.keys() {
        if !system.intents.contains_key(name) {
            report(
                &format!("traffic.intents.{name}"),
                format!(
                    "unknown intent; the system model has {}",
                    system
                        .intents
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.files.profile.display())
    }
}
