//! Quota pre-flight: what the profile's peak asks of every quota of the system model, before
//! anything runs.
//!
//! At the peak message rate the route of a turn ([`crate::turn`]) says which messages reach
//! which layer. This module multiplies those shares out by the rules of each layer: Bedrock
//! tokens and requests per minute per model ([`crate::bedrock`], output tokens burned down),
//! API Gateway's new connections and account requests per second ([`crate::gateway`]),
//! DynamoDB read and write units per second ([`crate::dynamodb`]), and the orchestrator's
//! CPU at its task maximum. The figures are in the terms AWS's quota-increase requests ask
//! for: steady and peak tokens and requests per minute, average input and output tokens per
//! call. The arithmetic is means, with no queueing. A line over its quota will throttle in
//! the simulation and on the day. A line under it can still throttle in bursts.
//!
//! Two lines look past the peak's rates. [`BurstDemand`]: the Lambda environments the
//! messages beyond the orchestrator's capacity at its task maximum hold (Little's law, cold
//! starts included) against the cap of [`crate::burst`]. [`Reconnects`]: API Gateway closes
//! every connection after `gateway.max_connection`, so the sessions a ramp opened reconnect
//! together one `max_connection` later, on top of the connections then new.

use surge_profile::overview::Overview;
use surge_profile::{Duration, Profile, Schedule, SystemModel};

use crate::bedrock::{charge, prefill};
use crate::burst::scale_time;
use crate::dynamodb::Table;
use crate::gateway;
use crate::orchestrator::WorkerShare;
use crate::time::{SECOND, secs, truncate};
use crate::turn;

/// One model's demand at the peak.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelDemand {
    /// The system model's name for it (`sonnet`).
    pub name: String,
    /// Calls per minute at the peak (requests per minute).
    pub calls_per_minute: f64,
    /// Calls per minute outside the peak, at the profile's average rate.
    pub steady_calls_per_minute: f64,
    /// Average input tokens per call read and charged (the store's prompt and the
    /// conversation context, less what the prompt cache serves).
    pub input_tokens: f64,
    /// Average input tokens per call read from the prompt cache (not charged).
    pub cached_tokens: f64,
    /// Average output tokens per call.
    pub output_tokens: f64,
    pub output_burndown: f64,
    /// Tokens per minute settled against the quota at the peak (output burned down).
    pub tokens_per_minute: f64,
    /// The same at the profile's average rate.
    pub steady_tokens_per_minute: f64,
    /// Tokens held by calls in flight beyond what they will settle at (their unused
    /// `max_tokens`): the reservation's cost on top of the settled rate.
    pub held_in_flight: f64,
    /// Provisioned tokens per minute (model units × tokens per unit).
    pub provisioned_tokens_per_minute: f64,
    /// On-demand quotas.
    pub quota_tokens_per_minute: f64,
    pub quota_requests_per_minute: f64,
    /// Calls per minute left to the on-demand quota after provisioned throughput.
    pub on_demand_calls_per_minute: f64,
}

impl ModelDemand {
    /// Share of its token capacity (provisioned and on demand) the peak needs.
    pub fn token_use(&self) -> f64 {
        ratio(
            self.tokens_per_minute + self.held_in_flight,
            self.provisioned_tokens_per_minute + self.quota_tokens_per_minute,
        )
    }

    /// Share of the on-demand requests-per-minute quota the peak needs.
    pub fn request_use(&self) -> f64 {
        ratio(
            self.on_demand_calls_per_minute,
            self.quota_requests_per_minute,
        )
    }
}

/// One quota of another layer: demand at the peak against the quota in force.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// What is counted, in the quota's unit (`new connections/s`).
    pub what: &'static str,
    /// The system-model key that holds the quota.
    pub key: &'static str,
    pub peak: f64,
    pub quota: f64,
}

impl Line {
    pub fn share(&self) -> f64 {
        ratio(self.peak, self.quota)
    }
}

/// The Lambda burst workers at the peak.
#[derive(Debug, Clone, PartialEq)]
pub enum BurstDemand {
    /// `orchestrator.enabled = false`: no queue, so nothing overflows to Lambda.
    NoOrchestrator,
    /// `burst.enabled = false`: the messages beyond the orchestrator wait in its queue.
    Off(Orchestration),
    On(BurstNeed),
}

/// What the orchestrator serves at its task maximum, and what it leaves at the peak.
#[derive(Debug, Clone, PartialEq)]
pub struct Orchestration {
    /// Tasks at most: `max_tasks`, or `initial_tasks` without autoscaling.
    pub tasks: u32,
    /// The key that holds them (`orchestrator.max_tasks`).
    pub tasks_key: &'static str,
    /// Messages per second with every worker of those tasks busy.
    pub capacity: f64,
    /// Messages per second of the peak beyond that.
    pub overflow: f64,
}

/// The concurrency the burst workers need for the orchestrator's overflow.
#[derive(Debug, Clone, PartialEq)]
pub struct BurstNeed {
    pub orchestration: Orchestration,
    /// Mean seconds an invocation holds its environment: start (cold or warm) + service.
    pub cold_hold: f64,
    pub warm_hold: f64,
    /// Environments in use as the overflow sets in (Little's law: cold starts beyond the
    /// provisioned environments).
    pub concurrency: f64,
    /// The same once environments are reused warm (within `keep_warm`).
    pub warm_concurrency: f64,
    /// `burst.concurrency_cap()`, and the key of the limit that sets it.
    pub cap: u32,
    pub cap_key: &'static str,
    /// Lambda's scaling: `scale_step` more environments per `scale_interval` while
    /// invocations hit the limit; `scale_time` is how long it takes to allow the need
    /// (up to the cap).
    pub scale_step: u32,
    pub scale_interval: Duration,
    pub scale_time: Duration,
    /// The same arithmetic at `initial_tasks`, before autoscaling adds tasks (when it may).
    pub before_scale_out: Option<BeforeScaleOut>,
}

impl BurstNeed {
    pub fn share(&self) -> f64 {
        ratio(self.concurrency, f64::from(self.cap))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BeforeScaleOut {
    pub tasks: u32,
    pub capacity: f64,
    pub overflow: f64,
    pub concurrency: f64,
}

/// The reconnections `gateway.max_connection` forces over the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Reconnects {
    pub max_connection: Duration,
    pub duration: Duration,
    /// The wave of the highest connection rate; `None` when no connection reaches
    /// `max_connection` in the run.
    pub fastest: Option<ReconnectWave>,
    /// The wave of the most sessions, when it is not the fastest.
    pub largest: Option<ReconnectWave>,
    /// Waves in the run: every opening of sessions, every `max_connection`.
    pub waves: usize,
}

/// Connections asked of the gateway while sessions opened `max_connection` (or a multiple)
/// earlier reconnect.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconnectWave {
    /// When the wave starts.
    pub at: Duration,
    /// When the sessions reconnecting were first opened.
    pub opened: Duration,
    /// Sessions reconnecting, and at what rate (per second): the rate they were admitted at.
    pub sessions: f64,
    pub reconnects: f64,
    /// New connections per second the schedule opens meanwhile.
    pub new: f64,
    /// Sessions per second the schedule closes meanwhile (they do not reconnect).
    pub leaving: f64,
    /// `gateway.connect_rate`, per second.
    pub quota: f64,
}

impl ReconnectWave {
    /// Connections per second the gateway is asked to admit.
    pub fn rate(&self) -> f64 {
        (self.reconnects + self.new - self.leaving).max(0.0)
    }

    pub fn share(&self) -> f64 {
        ratio(self.rate(), self.quota)
    }
}

/// The profile's peak against every quota.
#[derive(Debug, Clone, PartialEq)]
pub struct Preflight {
    /// Messages per second at the peak.
    pub peak_messages_per_second: f64,
    pub models: Vec<ModelDemand>,
    pub lines: Vec<Line>,
    pub burst: BurstDemand,
    /// `None` without a gateway.
    pub reconnects: Option<Reconnects>,
}

fn ratio(demand: f64, quota: f64) -> f64 {
    if demand <= 0.0 {
        0.0
    } else if quota <= 0.0 {
        f64::INFINITY
    } else {
        demand / quota
    }
}

impl Preflight {
    pub fn of(profile: &Profile) -> Self {
        let sys = &profile.system;
        let schedule = profile.schedule();
        let peak = schedule.peak_rate();
        let seconds = profile.duration.as_secs_f64().max(1e-9);
        let average = schedule.total_messages() / seconds;
        let pass = Overview::of(profile).llm_pass_through;
        let reaching_memory = if sys.precomputed.enabled {
            1.0 - sys.precomputed.share.fraction()
        } else {
            1.0
        };
        let stores: f64 = profile.traffic.stores.values().map(|s| s.fraction()).sum();
        let prompt: f64 = profile
            .traffic
            .stores
            .iter()
            .filter_map(|(name, share)| {
                let store = sys.stores.get(name)?;
                Some(share.fraction() * sys.prompt_tokens(store))
            })
            .sum::<f64>()
            / stores.max(1e-12);
        let cached = prompt * sys.prompt.cache_hit_ratio.fraction();
        let per_session = schedule.total_messages() / schedule.peak_sessions().max(1.0);
        let history = turn::mean_history_tokens(sys, per_session);
        let input = prompt + sys.prompt.context_tokens.mean() + history - cached;

        let models = sys
            .bedrock
            .models
            .iter()
            .filter(|_| sys.bedrock.enabled)
            .map(|(name, model)| {
                // Per message at the rate: calls, output tokens and unused reservation.
                let (mut calls, mut output, mut unused, mut seconds_per_call) =
                    (0.0, 0.0, 0.0, 0.0);
                for (intent, share) in &profile.traffic.intents {
                    let Some(i) = sys.intents.get(intent) else {
                        continue;
                    };
                    if !turn::generates(sys, i.llm) || sys.model_for(i) != name {
                        continue;
                    }
                    let c = share.fraction() * pass;
                    let out = i.output_tokens.mean().min(f64::from(i.max_tokens));
                    calls += c;
                    output += c * out;
                    unused += c * (f64::from(i.max_tokens) - out) * model.output_burndown;
                    let call = model.ttft.mean() / SECOND as f64
                        + prefill(model, input) as f64 / SECOND as f64
                        + out / model.output_rate.per_second();
                    seconds_per_call += c * call;
                }
                let per_call = |x: f64| if calls > 0.0 { x / calls } else { 0.0 };
                let output_tokens = per_call(output);
                let per_minute = |rate: f64| rate * 60.0 * calls;
                let tokens = charge(model, input, output_tokens);
                let provisioned =
                    f64::from(model.provisioned_units) * model.unit_tokens_per_minute as f64;
                let tokens_per_minute = per_minute(peak) * tokens;
                // Provisioned throughput serves first; the rest of the calls, in proportion,
                // take on-demand requests.
                let on_demand_share = if tokens_per_minute > 0.0 {
                    ((tokens_per_minute - provisioned) / tokens_per_minute).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                ModelDemand {
                    name: name.clone(),
                    calls_per_minute: per_minute(peak),
                    steady_calls_per_minute: per_minute(average),
                    input_tokens: if calls > 0.0 { input } else { 0.0 },
                    cached_tokens: if calls > 0.0 { cached } else { 0.0 },
                    output_tokens,
                    output_burndown: model.output_burndown,
                    tokens_per_minute,
                    steady_tokens_per_minute: per_minute(average) * tokens,
                    // Little's law: calls in flight × what each holds beyond its charge.
                    held_in_flight: peak * per_call(seconds_per_call) * calls * per_call(unused),
                    provisioned_tokens_per_minute: provisioned,
                    quota_tokens_per_minute: model.tokens_per_minute as f64,
                    quota_requests_per_minute: model.requests_per_minute as f64,
                    on_demand_calls_per_minute: per_minute(peak) * on_demand_share,
                }
            })
            .collect();

        let mut lines = Vec::new();
        let mut reconnect = None;
        let g = &sys.gateway;
        if g.enabled {
            // Sessions per second the schedule asks to connect: over a ramp, its slope; at a
            // step (a stage without a ramp, or the start), as fast as the users may connect.
            let mut level = 0.0;
            let mut ramp = 0.0_f64;
            for s in schedule.segments() {
                let len = (s.end - s.start).as_secs_f64();
                if s.sessions_from > level {
                    ramp = f64::INFINITY;
                }
                if s.sessions_to > s.sessions_from {
                    let slope = (s.sessions_to - s.sessions_from) / len.max(1e-9);
                    ramp = ramp.max(slope);
                }
                level = s.sessions_to;
            }
            let ramp = ramp.min(profile.traffic.connect_rate.per_second());
            lines.push(Line {
                what: "new connections/s",
                key: "gateway.connect_rate",
                peak: ramp,
                quota: g.connect_rate.per_second(),
            });
            let r = reconnects(profile, &schedule);
            if let Some(w) = &r.fastest {
                lines.push(Line {
                    what: "connections/s in the reconnect wave (at +max_connection)",
                    key: "gateway.connect_rate",
                    peak: w.rate(),
                    quota: w.quota,
                });
            }
            reconnect = Some(r);
            if !gateway::keepalive_holds(g, profile.protocol.keepalive.as_ref()) {
                let idle = schedule
                    .segments()
                    .iter()
                    .flat_map(|s| [(s.sessions_from, s.rate_from), (s.sessions_to, s.rate_to)])
                    .map(|(sessions, rate)| gateway::idle_closes_per_second(g, sessions, rate))
                    .fold(0.0, f64::max);
                // Worth a line once it shows as at least one a second.
                if idle >= 0.5 {
                    lines.push(Line {
                        what: "connections/s reopened after the idle timeout (steady)",
                        key: "gateway.connect_rate",
                        peak: idle,
                        quota: g.connect_rate.per_second(),
                    });
                }
            }
            let (mut generated, mut tokens) = (0.0, 0.0);
            for (intent, share) in &profile.traffic.intents {
                if let Some(i) = sys
                    .intents
                    .get(intent)
                    .filter(|i| turn::generates(sys, i.llm))
                {
                    generated += share.fraction() * pass;
                    tokens += share.fraction()
                        * pass
                        * i.output_tokens.mean().min(f64::from(i.max_tokens));
                }
            }
            let mean_tokens = if generated > 0.0 {
                tokens / generated
            } else {
                0.0
            };
            let per_message = gateway::requests_per_message(
                g,
                sys.bedrock.streaming,
                generated.min(1.0),
                mean_tokens,
            );
            lines.push(Line {
                what: "account requests/s (message and callback posts)",
                key: "gateway.account_rate",
                peak: peak * per_message,
                quota: g.account_rate.per_second(),
            });
        }
        let m = &sys.memory;
        if m.enabled {
            let table = Table::new(m);
            let reads = turn::memory_reads(sys);
            let writes = turn::memory_writes(sys);
            lines.push(Line {
                what: "DynamoDB read units/s (capacity at the start)",
                key: "memory.previous_peak_reads",
                peak: peak * reaching_memory * f64::from(reads) * table.read_units,
                quota: table.reads.capacity(),
            });
            lines.push(Line {
                what: "DynamoDB write units/s (capacity at the start)",
                key: "memory.previous_peak_writes",
                peak: peak * f64::from(writes) * table.write_units,
                quota: table.writes.capacity(),
            });
        }
        let o = &sys.orchestrator;
        if o.enabled {
            lines.push(Line {
                what: "orchestrator vCPUs busy (at max_tasks, target CPU)",
                key: "orchestrator.max_tasks",
                peak: peak * o.cpu_per_message.mean() / SECOND as f64,
                quota: f64::from(o.max_tasks)
                    * o.vcpu_per_task
                    * o.autoscaling.target_cpu.fraction(),
            });
        }
        let burst = burst_demand(sys, peak);
        if let BurstDemand::On(b) = &burst {
            lines.push(Line {
                what: "Lambda burst concurrency (overflow beyond the task maximum)",
                key: b.cap_key,
                peak: b.concurrency,
                quota: f64::from(b.cap),
            });
        }
        Self {
            peak_messages_per_second: peak,
            models,
            lines,
            burst,
            reconnects: reconnect,
        }
    }

    /// The quotas the peak needs more of than the system model has, by key.
    pub fn over(&self) -> Vec<String> {
        let mut over = Vec::new();
        for m in &self.models {
            if m.token_use() > 1.0 {
                over.push(format!("bedrock.models.{}.tokens_per_minute", m.name));
            }
            if m.request_use() > 1.0 {
                over.push(format!("bedrock.models.{}.requests_per_minute", m.name));
            }
        }
        for l in self.lines.iter().filter(|l| l.share() > 1.0) {
            // Two lines hold gateway.connect_rate: the ramp and the reconnect wave.
            if !over.iter().any(|k| k == l.key) {
                over.push(l.key.to_string());
            }
        }
        over
    }
}

/// The orchestrator's capacity at `tasks` and what the peak leaves beyond it.
fn orchestration(
    sys: &SystemModel,
    tasks: u32,
    tasks_key: &'static str,
    peak: f64,
) -> Orchestration {
    let o = &sys.orchestrator;
    // A worker is busy with a message for its mean CPU over the worker's share of a vCPU.
    let cpu = truncate(o.cpu_per_message.mean());
    let service = secs(WorkerShare::new(o).service_time(cpu));
    let workers = f64::from(tasks) * f64::from(o.workers_per_task);
    let capacity = if service > 0.0 {
        workers / service
    } else {
        f64::INFINITY
    };
    Orchestration {
        tasks,
        tasks_key,
        capacity,
        overflow: (peak - capacity).max(0.0),
    }
}

/// The Lambda concurrency the peak's overflow beyond the orchestrator needs.
fn burst_demand(sys: &SystemModel, peak: f64) -> BurstDemand {
    let o = &sys.orchestrator;
    if !o.enabled {
        return BurstDemand::NoOrchestrator;
    }
    let scales = o.autoscaling.enabled;
    let most = if scales {
        orchestration(
            sys,
            o.max_tasks.max(o.initial_tasks),
            "orchestrator.max_tasks",
            peak,
        )
    } else {
        orchestration(sys, o.initial_tasks, "orchestrator.initial_tasks", peak)
    };
    let b = &sys.burst;
    if !b.enabled {
        return BurstDemand::Off(most);
    }
    let seconds = |d: &surge_profile::Dist<Duration>| d.mean() / SECOND as f64;
    let warm_hold = seconds(&b.warm_start) + seconds(&b.service);
    let cold_hold = seconds(&b.cold_start) + seconds(&b.service);
    // Little's law: the provisioned environments take what they can warm, the rest of the
    // overflow starts cold.
    let provisioned = f64::from(b.provisioned);
    let environments = |overflow: f64| {
        let warm = if warm_hold > 0.0 {
            overflow.min(provisioned / warm_hold)
        } else if provisioned > 0.0 {
            overflow
        } else {
            0.0
        };
        warm * warm_hold + (overflow - warm) * cold_hold
    };
    let concurrency = environments(most.overflow);
    let cap = b.concurrency_cap();
    let before_scale_out = (scales && o.initial_tasks < most.tasks).then(|| {
        let first = orchestration(sys, o.initial_tasks, "orchestrator.initial_tasks", peak);
        BeforeScaleOut {
            tasks: first.tasks,
            capacity: first.capacity,
            overflow: first.overflow,
            concurrency: environments(first.overflow),
        }
    });
    BurstDemand::On(BurstNeed {
        cold_hold,
        warm_hold,
        concurrency,
        warm_concurrency: most.overflow * warm_hold,
        cap,
        cap_key: if cap == b.account_concurrency {
            "burst.account_concurrency"
        } else {
            "burst.spike_factor"
        },
        scale_step: b.scale_step,
        scale_interval: b.scale_interval,
        scale_time: Duration::from_nanos(scale_time(b, concurrency.min(f64::from(cap)))),
        before_scale_out,
        orchestration: most,
    })
}

/// Sessions the schedule opens from `lo` to `hi` sessions, from `start` (seconds), at
/// `rate` per second.
#[derive(Debug, Clone, Copy)]
struct Opening {
    start: f64,
    lo: f64,
    hi: f64,
    rate: f64,
}

impl Opening {
    fn end(&self) -> f64 {
        self.start + (self.hi - self.lo) / self.rate
    }
}

/// The fewest sessions the schedule wants over `[from, to]` (seconds).
fn fewest(schedule: &Schedule, from: f64, to: f64) -> f64 {
    let at = |t: f64| schedule.sessions_at(Duration::from_secs_f64(t.max(0.0)));
    let mut low = at(from).min(at(to));
    for s in schedule.segments() {
        let (a, b) = (s.start.as_secs_f64(), s.end.as_secs_f64());
        if (from..=to).contains(&a) {
            low = low.min(s.sessions_from);
        }
        if (from..=to).contains(&b) {
            low = low.min(s.sessions_to);
        }
    }
    low
}

/// The waves of reconnections `gateway.max_connection` forces: each opening of sessions
/// (a ramp at its slope, a step at the connection rate, neither faster than the gateway and
/// the load generator admit) repeats every `max_connection` for the sessions still wanted,
/// on top of the sessions then opening and less those then leaving.
fn reconnects(profile: &Profile, schedule: &Schedule) -> Reconnects {
    let g = &profile.system.gateway;
    let quota = g.connect_rate.per_second();
    let admit = quota.min(profile.traffic.connect_rate.per_second());
    let max = g.max_connection.as_secs_f64();
    let end = profile.duration.as_secs_f64();
    let mut openings = Vec::new();
    let mut level = 0.0;
    for s in schedule.segments() {
        let start = s.start.as_secs_f64();
        if s.sessions_from > level && admit > 0.0 {
            let (lo, hi, rate) = (level, s.sessions_from, admit);
            openings.push(Opening {
                start,
                lo,
                hi,
                rate,
            });
        }
        if s.sessions_to > s.sessions_from {
            let len = (s.end - s.start).as_secs_f64().max(1e-9);
            let rate = ((s.sessions_to - s.sessions_from) / len).min(admit);
            if rate > 0.0 {
                let (lo, hi) = (s.sessions_from, s.sessions_to);
                openings.push(Opening {
                    start,
                    lo,
                    hi,
                    rate,
                });
            }
        }
        level = s.sessions_to;
    }
    let leaving = |t: f64| {
        schedule
            .segments()
            .iter()
            .find(|s| s.start.as_secs_f64() <= t && t < s.end.as_secs_f64())
            .filter(|s| s.sessions_to < s.sessions_from)
            .map_or(0.0, |s| {
                (s.sessions_from - s.sessions_to) / (s.end - s.start).as_secs_f64().max(1e-9)
            })
    };
    // Every generation of every opening that starts within the run.
    let mut waves = Vec::new();
    if max > 0.0 {
        for (i, o) in openings.iter().enumerate() {
            let mut k = 1.0;
            while o.start + k * max < end {
                waves.push((i, o.start + k * max));
                k += 1.0;
            }
        }
    }
    // The asked rate is constant between starts: evaluate it where a wave or an opening
    // starts, or the schedule turns.
    let mut times: Vec<f64> = waves.iter().map(|&(_, t)| t).collect();
    times.extend(openings.iter().map(|o| o.start));
    times.extend(schedule.segments().iter().map(|s| s.start.as_secs_f64()));
    let at = |t: f64| -> Option<ReconnectWave> {
        let (mut sessions, mut rate, mut opened) = (0.0, 0.0, f64::INFINITY);
        for &(i, from) in &waves {
            let o = &openings[i];
            // Sessions the schedule dropped in between do not come back. The most recently
            // connected leave first, so what is left of an opening is its first sessions:
            // they reconnect at the rate they opened at, for a shorter while.
            let kept = (fewest(schedule, o.end(), from) - o.lo).clamp(0.0, o.hi - o.lo);
            if !(from <= t && t < from + kept / o.rate) {
                continue;
            }
            sessions += kept;
            rate += o.rate;
            opened = opened.min(o.start);
        }
        if sessions <= 0.0 {
            return None;
        }
        let new = openings
            .iter()
            .filter(|o| o.start <= t && t < o.end())
            .map(|o| o.rate)
            .sum();
        Some(ReconnectWave {
            at: Duration::from_secs_f64(t),
            opened: Duration::from_secs_f64(opened),
            sessions,
            reconnects: rate,
            new,
            leaving: leaving(t),
            quota,
        })
    };
    let candidates: Vec<ReconnectWave> = times
        .into_iter()
        .filter(|&t| t >= max && t < end)
        .filter_map(at)
        .collect();
    let best = |key: fn(&ReconnectWave) -> f64| {
        candidates
            .iter()
            .fold(None::<&ReconnectWave>, |best, w| match best {
                Some(b) if key(b) > key(w) || (key(b) == key(w) && b.at <= w.at) => Some(b),
                _ => Some(w),
            })
            .cloned()
    };
    let fastest = best(ReconnectWave::rate);
    let largest = best(|w| w.sessions).filter(|l| fastest.as_ref().is_some_and(|f| f.at != l.at));
    Reconnects {
        max_connection: g.max_connection,
        duration: profile.duration,
        fastest,
        largest,
        waves: waves.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A profile of one LLM intent on Sonnet at a constant 600 messages a minute, with the
    /// other layers' figures in plain numbers, written to a temporary file.
    fn profile(tokens_per_minute: u64, requests_per_minute: u64, burndown: f64) -> Profile {
        let system = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../profiles/system/mangaassist.toml"
        );
        let text = format!(
            r#"description = "pre-flight"
seed = 1
duration = "10m"

[system]
file = "{system}"
precomputed.enabled = false
semantic_cache.enabled = false
bedrock.tiering = false
bedrock.streaming = true
prompt.context_tokens = "1000"
intents.recommendation.output_tokens = "300"
intents.recommendation.max_tokens = 500
bedrock.models.sonnet.tokens_per_minute = {tokens_per_minute}
bedrock.models.sonnet.requests_per_minute = {requests_per_minute}
bedrock.models.sonnet.output_burndown = {burndown:?}
bedrock.models.sonnet.provisioned_units = 0
bedrock.models.sonnet.ttft = "1s"
bedrock.models.sonnet.output_rate = "100/s"
memory.reads_per_turn = 1
memory.writes_per_turn = 2
memory.item_size = "5KB"
memory.new_table = true

[traffic]
arrival = "constant"
conversation_turns = 5
reply_timeout = "30s"
connect_rate = "100/s"

[traffic.stores]
manga_jp = "100%"

[traffic.intents]
recommendation = "100%"

[[traffic.stages]]
name = "ramp"
duration = "5m"
ramp = "10s"
sessions = 500
message_rate = "600/min"
"#
        );
        // A directory of its own: tests run in parallel and may write the same profile.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("preflight.toml");
        std::fs::write(&path, text).unwrap();
        Profile::load(&path).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn bedrock_demand_in_the_terms_of_a_quota_request() {
        let p = profile(2_000_000, 1_000, 1.0);
        let prompt = p.system.prompt_tokens(&p.system.stores["manga_jp"]);
        let f = Preflight::of(&p);
        assert_eq!(f.peak_messages_per_second, 10.0);
        let sonnet = f.models.iter().find(|m| m.name == "sonnet").unwrap();
        assert_eq!(sonnet.calls_per_minute, 600.0);
        assert_eq!(sonnet.input_tokens, prompt + 1000.0);
        assert_eq!(sonnet.output_tokens, 300.0);
        let tpm = 600.0 * (prompt + 1000.0 + 300.0);
        assert!((sonnet.tokens_per_minute - tpm).abs() < 1e-6);
        // 10 calls/s of 1 s TTFT + 3 s of tokens: 40 in flight, each holding 200 unused.
        assert!(
            (sonnet.held_in_flight - 40.0 * 200.0).abs() < 1e-6,
            "{}",
            sonnet.held_in_flight
        );
        assert_eq!(sonnet.request_use(), 0.6);
        let haiku = f.models.iter().find(|m| m.name == "haiku").unwrap();
        assert_eq!(
            (haiku.calls_per_minute, haiku.tokens_per_minute),
            (0.0, 0.0)
        );
        assert!(f.over().is_empty(), "{:?}", f.over());
    }

    #[test]
    fn prompt_cache_reads_are_not_charged() {
        let mut p = profile(2_000_000, 1_000, 1.0);
        let prompt = p.system.prompt_tokens(&p.system.stores["manga_jp"]);
        p.system.prompt.cache_hit_ratio = "75%".parse().unwrap();
        let f = Preflight::of(&p);
        let sonnet = f.models.iter().find(|m| m.name == "sonnet").unwrap();
        assert!((sonnet.cached_tokens - 0.75 * prompt).abs() < 1e-9);
        assert!((sonnet.input_tokens - (0.25 * prompt + 1000.0)).abs() < 1e-9);
        let tpm = 600.0 * (0.25 * prompt + 1000.0 + 300.0);
        assert!((sonnet.tokens_per_minute - tpm).abs() < 1e-6);
    }

    #[test]
    fn burndown_and_a_small_quota_are_named() {
        let p = profile(1_000_000, 500, 5.0);
        let f = Preflight::of(&p);
        let sonnet = f.models.iter().find(|m| m.name == "sonnet").unwrap();
        let prompt = p.system.prompt_tokens(&p.system.stores["manga_jp"]);
        let tpm = 600.0 * (prompt + 1000.0 + 5.0 * 300.0);
        assert!((sonnet.tokens_per_minute - tpm).abs() < 1e-6);
        assert!((sonnet.held_in_flight - 40.0 * 200.0 * 5.0).abs() < 1e-6);
        assert_eq!(
            f.over(),
            [
                "bedrock.models.sonnet.tokens_per_minute",
                "bedrock.models.sonnet.requests_per_minute"
            ]
        );
    }

    #[test]
    fn answers_posted_per_chunk_count_a_request_per_chunk() {
        let mut p = profile(2_000_000, 1_000, 1.0);
        p.system.gateway.posts_per_answer = surge_profile::system::Posts::PerChunk;
        p.system.gateway.chunk_tokens = 20;
        let f = Preflight::of(&p);
        let line = f
            .lines
            .iter()
            .find(|l| l.key == "gateway.account_rate")
            .unwrap();
        // 10 messages/s, each itself and 300 tokens in 15 posts of 20.
        assert_eq!(line.peak, 160.0);
    }

    #[test]
    fn gateway_dynamodb_and_orchestrator_lines() {
        let f = Preflight::of(&profile(2_000_000, 1_000, 1.0));
        let line = |key: &str| f.lines.iter().find(|l| l.key == key).unwrap().clone();
        // 500 sessions over a 10 s ramp: 50/s, under the generator's 100/s.
        assert_eq!(line("gateway.connect_rate").peak, 50.0);
        // Streaming: the message, the first-token post and the answer post.
        assert_eq!(line("gateway.account_rate").peak, 30.0);
        // 5 KB items: 2 read units a read, 5 write units a write, two writes a turn.
        let reads = line("memory.previous_peak_reads");
        assert_eq!((reads.peak, reads.quota), (20.0, 12_000.0));
        let writes = line("memory.previous_peak_writes");
        assert_eq!((writes.peak, writes.quota), (100.0, 4_000.0));
        assert!(line("orchestrator.max_tasks").peak > 0.0);
    }
}
