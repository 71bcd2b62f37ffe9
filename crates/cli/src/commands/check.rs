//! `surge check PROFILE`: validate a profile and print the resolved scenario.

use std::fmt::Write;
use std::path::PathBuf;

use surge_model::preflight::{BurstDemand, Preflight, Reconnects};
use surge_profile::overview::Overview;
use surge_profile::{Profile, SystemModel};

use crate::format::{Table, thousands};
use crate::{Failure, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The profile to check (a TOML file, e.g. profiles/local.toml).
    pub profile: PathBuf,
    /// Print the resolved profile as JSON instead of the human summary.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &Args) -> Result<Outcome, Failure> {
    let profile = Profile::load(&args.profile)?;
    if args.json {
        let json = serde_json::to_string_pretty(&profile)
            .map_err(|e| Failure::could_not_run(format!("cannot encode the profile: {e}")))?;
        println!("{json}");
    } else {
        print!("{}", render(&profile));
    }
    Ok(Outcome::Success)
}

/// The human summary of a resolved profile.
pub fn render(profile: &Profile) -> String {
    let ov = Overview::of(profile);
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "profile   {}  ({})",
        profile.name,
        profile.files.profile.display()
    );
    let _ = writeln!(w, "          {}", profile.description);
    let _ = writeln!(
        w,
        "system    {}  ({})",
        profile.system.name,
        profile.files.system.display()
    );
    let arrival = profile.traffic.arrival.to_string();
    let _ = writeln!(
        w,
        "duration  {}   seed {}   arrival {arrival}\n",
        profile.duration, profile.seed
    );

    let mut t = Table::new(&[
        "stage",
        "start",
        "end",
        "sessions",
        "messages/min",
        "messages",
        "LLM calls",
    ]);
    for s in &ov.stages {
        t.row(vec![
            s.name.clone(),
            s.start.to_string(),
            s.end.to_string(),
            span(s.sessions_from, s.sessions_to),
            span(s.per_minute_from, s.per_minute_to),
            thousands(s.messages),
            thousands(s.llm_calls),
        ]);
    }
    out.push_str(&t.render());
    let w = &mut out;
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "peak sessions        {}   (admitted in ≥ {:.0} s at the connection rate)",
        thousands(ov.peak_sessions),
        ov.connect_time_at_peak
    );
    let _ = writeln!(w, "peak messages/min    {}", thousands(ov.peak_per_minute));
    let _ = writeln!(w, "total messages       {}", thousands(ov.total_messages));
    let _ = writeln!(
        w,
        "LLM calls            {}   ({:.1}% of messages need the LLM; {:.1}% of those pass the caches)",
        thousands(ov.llm_calls),
        ov.llm_share * 100.0,
        ov.llm_pass_through * 100.0
    );
    let _ = writeln!(w, "\nsystem model in effect");
    out.push_str(&render_system(&profile.system));
    out.push_str(&render_preflight(&Preflight::of(profile)));
    if !profile.thresholds.is_empty() {
        out.push_str("\nthresholds\n");
        for t in &profile.thresholds {
            match t.abort {
                Some(a) => {
                    let _ = writeln!(
                        out,
                        "  {t}   aborts the run when broken over {} (judged from {} on)",
                        a.window, a.after
                    );
                }
                None => {
                    let _ = writeln!(out, "  {t}");
                }
            }
        }
    }
    out
}

fn span(from: f64, to: f64) -> String {
    if (from - to).abs() < 0.5 {
        thousands(to)
    } else {
        format!("{} → {}", thousands(from), thousands(to))
    }
}

fn on(enabled: bool) -> &'static str {
    if enabled { "on " } else { "off" }
}

fn render_system(s: &SystemModel) -> String {
    let mut t = Table::new(&["  layer", "", "settings"])
        .left_aligned(1)
        .left_aligned(2);
    let mut row = |layer: &str, enabled: bool, settings: String| {
        t.row(vec![format!("  {layer}"), on(enabled).into(), settings]);
    };
    let g = &s.gateway;
    row(
        "gateway",
        g.enabled,
        format!(
            "{} per user, {} account (burst {}), {} connects, auth {}, network {}",
            g.per_user_rate, g.account_rate, g.account_burst, g.connect_rate, g.auth, g.network
        ),
    );
    let o = &s.orchestrator;
    row(
        "orchestrator",
        o.enabled,
        format!(
            "{}..{} tasks (start {}), {} worker(s) × {} vCPU, cpu/message {}, task start {}",
            o.min_tasks,
            o.max_tasks,
            o.initial_tasks,
            o.workers_per_task,
            o.vcpu_per_task,
            o.cpu_per_message,
            o.task_start
        ),
    );
    let a = &o.autoscaling;
    row(
        "autoscaling",
        a.enabled,
        format!(
            "target {} CPU; out after {}×{}, in after {}×{} below {} of target; cooldowns {}/{}",
            a.target_cpu,
            a.scale_out_datapoints,
            a.period,
            a.scale_in_datapoints,
            a.period,
            a.scale_in_ratio,
            a.scale_out_cooldown,
            a.scale_in_cooldown
        ),
    );
    let b = &s.burst;
    row(
        "burst workers",
        b.enabled,
        format!(
            "queue > {}, cap {} = min(10 × {}, {}), +{} per {}, cold {} / warm {}, provisioned {}",
            b.queue_threshold,
            b.concurrency_cap(),
            b.spike_factor,
            b.account_concurrency,
            b.scale_step,
            b.scale_interval,
            b.cold_start,
            b.warm_start,
            b.provisioned
        ),
    );
    row(
        "classifier",
        s.classifier.enabled,
        s.classifier.latency.to_string(),
    );
    let m = &s.memory;
    row(
        "memory",
        m.enabled,
        format!(
            "read {}, {} write(s) of {} per turn, previous peak {} writes, table max {}, {} retries",
            m.read_latency,
            m.writes_per_turn,
            m.item_size,
            m.previous_peak_writes,
            m.table_max_writes,
            m.max_retries
        ),
    );
    let c = &s.cache;
    let hit = if c.prewarm {
        format!("hit {} (pre-warmed)", c.prewarmed_hit_ratio)
    } else {
        format!("hit {}", c.hit_ratio)
    };
    row(
        "cache",
        c.enabled,
        format!("{hit}, {} hit / {} miss", c.hit_latency, c.miss_latency),
    );
    let sc = &s.semantic_cache;
    row(
        "semantic cache",
        sc.enabled,
        format!(
            "hit {} at similarity ≥ {}, {}",
            sc.hit_ratio, sc.threshold, sc.latency
        ),
    );
    let p = &s.precomputed;
    row(
        "precomputed",
        p.enabled,
        format!("{} of traffic, {}", p.share, p.latency),
    );
    row(
        "rag",
        s.rag.enabled,
        format!(
            "{}, speculative {}",
            s.rag.latency,
            on(s.rag.speculative).trim()
        ),
    );
    let br = &s.bedrock;
    row(
        "bedrock",
        br.enabled,
        format!(
            "tiering {} ({} / {}), streaming {}, on throttle {:?}",
            on(br.tiering).trim(),
            br.fast_model,
            br.smart_model,
            on(br.streaming).trim(),
            br.on_throttle
        )
        .to_lowercase(),
    );
    for (name, model) in &br.models {
        row(
            &format!("  {name}"),
            br.enabled,
            format!(
                "ttft {}, {} tokens, {} TPM / {} RPM on demand, {} provisioned unit(s), {} in / {} out per 1M",
                model.ttft,
                model.output_rate,
                thousands(model.tokens_per_minute as f64),
                thousands(model.requests_per_minute as f64),
                model.provisioned_units,
                model.input_price_per_million,
                model.output_price_per_million
            ),
        );
    }
    row(
        "guardrails",
        s.guardrails.enabled,
        s.guardrails.latency.to_string(),
    );
    row("format", s.format.enabled, s.format.latency.to_string());
    t.render()
}

fn percent(share: f64) -> String {
    if share.is_finite() {
        format!("{:.0}%", share * 100.0)
    } else {
        "no quota".into()
    }
}

/// The quota pre-flight: the peak against every quota, Bedrock's in the terms of a
/// quota-increase request.
fn render_preflight(p: &Preflight) -> String {
    let mut out = format!(
        "\nquota pre-flight at the peak ({} messages/min; means, no queueing)\n",
        thousands(p.peak_messages_per_second * 60.0)
    );
    if !p.models.is_empty() {
        let mut t = Table::new(&[
            "  model",
            "RPM peak",
            "RPM steady",
            "in/call",
            "cached",
            "out/call",
            "burndown",
            "TPM peak",
            "TPM steady",
            "held",
            "TPM quota",
            "RPM quota",
            "uses",
        ])
        .left_aligned(0);
        for m in &p.models {
            let capacity = m.provisioned_tokens_per_minute + m.quota_tokens_per_minute;
            t.row(vec![
                format!("  {}", m.name),
                thousands(m.calls_per_minute),
                thousands(m.steady_calls_per_minute),
                thousands(m.input_tokens),
                thousands(m.cached_tokens),
                thousands(m.output_tokens),
                format!("{}×", m.output_burndown),
                thousands(m.tokens_per_minute),
                thousands(m.steady_tokens_per_minute),
                thousands(m.held_in_flight),
                thousands(capacity),
                thousands(m.quota_requests_per_minute),
                format!(
                    "{} TPM, {} RPM",
                    percent(m.token_use()),
                    percent(m.request_use())
                ),
            ]);
        }
        out.push_str(&t.render());
    }
    let mut t = Table::new(&["  quota", "peak", "quota", "uses", "key"])
        .left_aligned(0)
        .left_aligned(4);
    for l in &p.lines {
        t.row(vec![
            format!("  {}", l.what),
            thousands(l.peak),
            thousands(l.quota),
            percent(l.share()),
            l.key.to_string(),
        ]);
    }
    out.push_str(&t.render());
    let mut warnings = String::new();
    render_burst(&mut out, &mut warnings, p);
    if let Some(r) = &p.reconnects {
        render_reconnects(&mut out, &mut warnings, r);
    }
    let over = p.over();
    if over.is_empty() {
        out.push_str("  every quota holds the peak\n");
    } else {
        let _ = writeln!(
            out,
            "  warning: the peak needs more than the system model has of: {}\n  \
             (the simulation will throttle there; ask AWS for a quota increase or buy \
             provisioned throughput before the day)",
            over.join(", ")
        );
    }
    out.push_str(&warnings);
    out
}

fn per_second(rate: f64) -> String {
    format!("{}/s", thousands(rate))
}

/// The Lambda burst workers' line: the concurrency the orchestrator's overflow needs.
fn render_burst(out: &mut String, warnings: &mut String, p: &Preflight) {
    let peak = per_second(p.peak_messages_per_second);
    match &p.burst {
        BurstDemand::NoOrchestrator => {
            out.push_str("  Lambda burst workers: no orchestrator, so nothing overflows to them\n");
        }
        BurstDemand::Off(o) if o.overflow > 0.0 => {
            let _ = writeln!(
                out,
                "  Lambda burst workers: off (burst.enabled = false); the {} messages/s beyond \
                 the orchestrator's {} at {} {} wait in its queue",
                thousands(o.overflow),
                per_second(o.capacity),
                o.tasks_key,
                o.tasks
            );
        }
        BurstDemand::Off(o) => {
            let _ = writeln!(
                out,
                "  Lambda burst workers: off (burst.enabled = false); the orchestrator's {} \
                 messages/s at {} {} hold the peak's {peak}",
                thousands(o.capacity),
                o.tasks_key,
                o.tasks
            );
        }
        BurstDemand::On(b) => {
            let o = &b.orchestration;
            let ms = |s: f64| format!("{:.0} ms", s * 1000.0);
            if o.overflow > 0.0 {
                let mut scale = String::new();
                if b.concurrency.min(f64::from(b.cap)) > f64::from(b.scale_step) {
                    scale = format!(
                        "; Lambda adds {} per {}: {} to get there",
                        thousands(f64::from(b.scale_step)),
                        b.scale_interval,
                        b.scale_time
                    );
                }
                let _ = writeln!(
                    out,
                    "  Lambda burst workers: the peak's {peak} is {} messages/s beyond the \
                     orchestrator's {} at {} {}; held {} each (cold start and service; {} \
                     warm): {} environments at the onset, {} warm, of the cap of {} ({}){scale}",
                    thousands(o.overflow),
                    per_second(o.capacity),
                    o.tasks_key,
                    o.tasks,
                    ms(b.cold_hold),
                    ms(b.warm_hold),
                    thousands(b.concurrency),
                    thousands(b.warm_concurrency),
                    thousands(f64::from(b.cap)),
                    b.cap_key
                );
            } else {
                let _ = writeln!(
                    out,
                    "  Lambda burst workers: the orchestrator's {} messages/s at {} {} hold the \
                     peak's {peak}; nothing overflows (cap {}, {})",
                    thousands(o.capacity),
                    o.tasks_key,
                    o.tasks,
                    thousands(f64::from(b.cap)),
                    b.cap_key
                );
            }
            if let Some(first) = b.before_scale_out.as_ref().filter(|f| f.overflow > 0.0) {
                let beyond = if first.concurrency > f64::from(b.cap) {
                    ", over the cap: the rest wait in the queue while tasks start"
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    "    until autoscaling adds tasks, at orchestrator.initial_tasks {} ({}): \
                     {} messages/s overflow, {} environments{beyond}",
                    first.tasks,
                    per_second(first.capacity),
                    thousands(first.overflow),
                    thousands(first.concurrency)
                );
            }
            if b.share() > 1.0 {
                let cap = if b.cap_key == "burst.spike_factor" {
                    "burst.spike_factor (up to burst.account_concurrency)"
                } else {
                    b.cap_key
                };
                let _ = writeln!(
                    warnings,
                    "  warning: the burst workers need {} environments at the peak, over their \
                     cap of {}: raise {cap} or {}; beyond the cap messages wait in the \
                     orchestrator's queue",
                    thousands(b.concurrency),
                    thousands(f64::from(b.cap)),
                    o.tasks_key
                );
            }
        }
    }
}

/// The reconnect wave `gateway.max_connection` forces.
fn render_reconnects(out: &mut String, warnings: &mut String, r: &Reconnects) {
    let Some(w) = &r.fastest else {
        let _ = writeln!(
            out,
            "  reconnect wave: none; no connection reaches gateway.max_connection ({}) in this \
             {} run",
            r.max_connection, r.duration
        );
        return;
    };
    let wave = |w: &surge_model::preflight::ReconnectWave| {
        let mut also = String::new();
        if w.new > 0.0 {
            let _ = write!(also, ", {} new", per_second(w.new));
        }
        if w.leaving > 0.0 {
            let _ = write!(also, ", {} leaving", per_second(w.leaving));
        }
        let opened = if w.opened == surge_profile::Duration::ZERO {
            "at the start".to_string()
        } else {
            format!("from {}", w.opened)
        };
        format!(
            "the {} sessions opened {opened} reconnect at {}{also}: {} connections/s of \
             gateway.connect_rate {} ({})",
            thousands(w.sessions),
            per_second(w.reconnects),
            thousands(w.rate()),
            per_second(w.quota),
            percent(w.share())
        )
    };
    let of = if r.waves > 1 {
        format!(" (the fastest of {} waves in the run)", r.waves)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "  reconnect wave at {}{of}: gateway.max_connection ({}) closes every connection; {}",
        w.at,
        r.max_connection,
        wave(w)
    );
    if let Some(l) = &r.largest {
        let _ = writeln!(out, "    largest wave, at {}: {}", l.at, wave(l));
    }
    if w.share() > 1.0 {
        let _ = writeln!(
            warnings,
            "  warning: the reconnect wave at {} asks gateway.connect_rate for {} connections/s \
             of {}: raise gateway.connect_rate, or spread the reconnects (clients reconnecting \
             at a jittered time before max_connection, or a gentler ramp)",
            w.at,
            thousands(w.rate()),
            per_second(w.quota)
        );
    }
}
