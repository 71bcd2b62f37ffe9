//! What each session does when: its open windows, its message arrivals, its store and texts.
//!
//! The profile's [`Schedule`] gives sessions(t) and rate(t) for the whole run. Session `k`
//! (a global index, so shards split sessions without coordinating) is open while
//! sessions(t) > k: ramps open sessions in index order and close them in reverse. Each open
//! session sends at rate(t)/sessions(t), so the total is rate(t) whatever the number of
//! shards — the open model: when a message is due depends only on this plan, never on how
//! fast answers come back.
//!
//! Gamma arrivals and trace replay are one process for all sessions, not one per session:
//! their messages come from the shard's [`crate::feed::Feed`], and a trace's sessions are
//! open from a little before their first message to their last one's reply timeout.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Exp1};
use surge_profile::trace::{Replay, Replayed};
use surge_profile::traffic::{Arrival, Schedule, Segment};
use surge_profile::{Dist, Percent, Profile};

/// Within a ramp, how long a session's rate is held steady at least ([`Plan::next_due`]),
/// and in how many steps at least a ramp is taken: a ramp's messages follow its rate to well
/// under 1 %, and a long ramp costs a session no more steps per message than a short one.
const RAMP_STEP: Duration = Duration::from_millis(250);
const RAMP_STEPS: u32 = 400;

/// Arrivals each session draws for itself.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Drawn {
    Poisson,
    Constant,
}

/// A span of run time during which a session is wanted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub open: Duration,
    pub close: Duration,
}

/// The run plan shared by every session of a process.
#[derive(Debug, Clone)]
pub struct Plan {
    schedule: Schedule,
    /// Poisson or constant: each session draws its own gaps. `None`: the shard's feed
    /// hands the messages out (gamma, trace).
    drawn: Option<Drawn>,
    /// The trace replayed, if any.
    replay: Option<Arc<Replay>>,
    stores: Mix<String>,
    intents: Mix<Vec<String>>,
    pub duration: Duration,
    pub reply_timeout: Duration,
    /// How long a user waits from a message's intended time before giving up on it.
    pub abandon_after: Option<Duration>,
    /// How long after an error or a throttle a user sends the same text again.
    retry_after_error: Option<Dist<surge_profile::Duration>>,
    /// New connections per second for the whole run (all shards together).
    pub connect_rate: f64,
    pub seed: u64,
}

impl Plan {
    pub fn new(profile: &Profile) -> Self {
        let stores = Mix::new(
            profile
                .traffic
                .stores
                .iter()
                .map(|(name, share)| (name.clone(), *share)),
        );
        let intents = Mix::new(profile.traffic.intents.iter().map(|(name, share)| {
            let texts = profile
                .system
                .intents
                .get(name)
                .map(|i| i.texts.clone())
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| vec![format!("a question about {name}")]);
            (texts, *share)
        }));
        Self {
            schedule: profile.schedule(),
            drawn: match profile.traffic.arrival {
                Arrival::Poisson => Some(Drawn::Poisson),
                Arrival::Constant => Some(Drawn::Constant),
                Arrival::Gamma(_) | Arrival::Trace(_) => None,
            },
            replay: profile.traffic.replay().map(Arc::new),
            stores,
            intents,
            duration: profile.duration.to_std(),
            reply_timeout: profile.traffic.reply_timeout.to_std(),
            abandon_after: profile.traffic.abandon_after.map(|d| d.to_std()),
            retry_after_error: profile.traffic.retry_after_error.clone(),
            connect_rate: profile.traffic.connect_rate.per_second(),
            seed: profile.seed,
        }
    }

    /// Most sessions open at once.
    pub fn peak_sessions(&self) -> u64 {
        self.schedule.peak_sessions().ceil() as u64
    }

    /// Sessions that take part, indexed from 0: those ever open at once, or every session
    /// of a trace (each its own, open while it has messages).
    pub fn sessions(&self) -> u64 {
        self.replay
            .as_ref()
            .map_or_else(|| self.peak_sessions(), |r| r.spans.len() as u64)
    }

    /// The schedule followed (the stages', or the trace's second by second).
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The trace replayed, if any.
    pub fn replay(&self) -> Option<&Arc<Replay>> {
        self.replay.as_ref()
    }

    /// Whether sessions draw their own gaps ([`next_due`](Self::next_due)) rather than
    /// being fed.
    pub fn draws_gaps(&self) -> bool {
        self.drawn.is_some()
    }

    /// The session id session `k` sends: the trace's value, or `s-k`.
    pub fn session_name(&self, k: u64) -> String {
        self.replay
            .as_ref()
            .and_then(|r| r.session_name(k))
            .map_or_else(|| format!("s-{k}"), str::to_string)
    }

    /// Message `i` of the trace.
    pub fn replayed(&self, i: u32) -> Option<&Replayed> {
        self.replay.as_ref()?.messages.get(i as usize)
    }

    /// Store names, in a fixed order (their index is what sessions carry).
    pub fn store_names(&self) -> Vec<&str> {
        self.stores.items.iter().map(|(s, _)| s.as_str()).collect()
    }

    /// The name of store `i` (an index from [`pick_store`](Self::pick_store)).
    pub fn store_name(&self, i: usize) -> &str {
        &self.stores.items[i].0
    }

    /// The store of a new session (index into [`store_names`](Self::store_names)).
    pub fn pick_store(&self, rng: &mut SmallRng) -> usize {
        self.stores.pick_index(rng)
    }

    /// What the user types next: a text of `intent` (an index into the profile's intents),
    /// or of an intent drawn by the profile's mix.
    pub fn pick_text<'a>(&'a self, intent: Option<usize>, rng: &mut SmallRng) -> &'a str {
        let texts = match intent.and_then(|i| self.intents.items.get(i)) {
            Some((texts, _)) => texts,
            None => self.intents.pick(rng),
        };
        &texts[rng.random_range(0..texts.len())]
    }

    /// How long after an error the user sends the text again, or `None` if users do not.
    pub fn retry_delay(&self, rng: &mut SmallRng) -> Option<Duration> {
        self.retry_after_error
            .as_ref()
            .map(|d| d.sample(rng).to_std())
    }

    /// When session `k` is wanted: every span where sessions(t) > k, or a trace session's
    /// span.
    pub fn windows(&self, k: u64) -> Vec<Window> {
        if let Some(replay) = &self.replay {
            return replay
                .spans
                .get(k as usize)
                .map(|s| Window {
                    open: s.open.to_std(),
                    close: s.close.to_std(),
                })
                .into_iter()
                .collect();
        }
        let level = k as f64;
        let mut out: Vec<Window> = Vec::new();
        for seg in self.schedule.segments() {
            let (t0, t1) = (seg.start.as_secs_f64(), seg.end.as_secs_f64());
            let (a, b) = (seg.sessions_from, seg.sessions_to);
            let span = if a > level && b > level {
                Some((t0, t1))
            } else if a <= level && b <= level {
                None
            } else {
                // Linear: crosses `level` once inside the piece.
                let cross = t0 + (t1 - t0) * (level - a) / (b - a);
                if b > a {
                    Some((cross, t1))
                } else {
                    Some((t0, cross))
                }
            };
            if let Some((s, e)) = span.filter(|(s, e)| e > s) {
                let (s, e) = (Duration::from_secs_f64(s), Duration::from_secs_f64(e));
                match out.last_mut() {
                    Some(last) if last.close >= s => last.close = e,
                    _ => out.push(Window { open: s, close: e }),
                }
            }
        }
        out
    }

    /// When a session's next message falls due after `from` (its previous message's
    /// intended time, or the moment it opened when `first`), or `None` when none does
    /// before `close`. Each session sends at rate(t)/sessions(t).
    ///
    /// The rate is held steady over flat pieces of the schedule and over short steps
    /// within ramps (250 ms, or a 400th of a long ramp), and a gap is drawn at the rate of the step it starts in
    /// only as far as that step's end: a Poisson gap still running there is drawn afresh
    /// (it is memoryless, so that is exact), a constant gap keeps the share of itself not
    /// yet run and goes on at the next step's rate. A gap drawn whole at its start's rate
    /// would carry the old rate across a change: after the `local` profile doubles its
    /// rate, each session's next message came one old (long) gap later, and a 90 s run
    /// sent 7 % fewer messages than its schedule.
    pub fn next_due(
        &self,
        from: Duration,
        close: Duration,
        first: bool,
        rng: &mut SmallRng,
    ) -> Option<Duration> {
        let drawn = self.drawn?;
        // Constant: the share of one gap still to run (a random phase for the first, so
        // that constant-rate sessions do not all fire together).
        let mut left = match (drawn, first) {
            (Drawn::Constant, true) => rng.random::<f64>(),
            _ => 1.0,
        };
        let mut t = from;
        while t < close {
            let Some((steady_until, piece, at)) = self.steady(t) else {
                return None; // past the schedule: nothing more is due
            };
            let step_end = steady_until.min(close);
            let (sessions, rate) = (piece.sessions_at(at), piece.rate_at(at));
            if sessions >= 1e-9 && rate > 0.0 {
                let mean = sessions / rate;
                let gap = match drawn {
                    Drawn::Constant => mean * left,
                    Drawn::Poisson => mean * Distribution::<f64>::sample(&Exp1, rng),
                };
                let due = t.as_secs_f64() + gap.max(0.0);
                if due < step_end.as_secs_f64() {
                    // Rounded to the nanosecond, it may reach the step's end: then it is
                    // the next step's (and never `close` itself).
                    let due = Duration::from_secs_f64(due).max(t);
                    if due < step_end {
                        return Some(due);
                    }
                }
                if drawn == Drawn::Constant {
                    left -= (step_end - t).as_secs_f64() / mean;
                }
            }
            t = step_end;
        }
        None
    }

    /// The step of the schedule from `t` over which a session's rate is held: until when,
    /// the piece it lies in, and the instant whose rate stands for it. A flat piece is one
    /// step; a ramp is taken in steps of [`RAMP_STEP`] or a [`RAMP_STEPS`]th of the ramp,
    /// whichever is longer, each standing for its middle. `None` past the schedule.
    fn steady(&self, t: Duration) -> Option<(Duration, &Segment, surge_profile::Duration)> {
        let at = t.into_profile();
        let piece = self.schedule.segment_at(at)?;
        let piece_end = piece.end.to_std();
        if piece_end <= t {
            return None;
        }
        if piece.is_flat() {
            return Some((piece_end, piece, at));
        }
        let step = ((piece_end - piece.start.to_std()) / RAMP_STEPS).max(RAMP_STEP);
        let end = (t + step).min(piece_end);
        Some((end, piece, (t + (end - t) / 2).into_profile()))
    }

    /// Messages per second the whole run offers at run time `t`.
    pub fn rate_at(&self, t: Duration) -> f64 {
        self.schedule.rate_at(t.into_profile())
    }

    /// The share of the whole run's offered load (messages due) that shard `index` of
    /// `count` was to send after run time `after`: what a shard lost at `after` takes along.
    /// Integrated over the schedule in 50 ms steps; shard `index` owns the open sessions
    /// whose global index is `index mod count`, each sending rate(t)/sessions(t).
    pub fn offered_share(&self, index: u32, count: u32, after: Duration) -> f64 {
        const STEP: f64 = 0.05;
        let (index, count) = (u64::from(index), u64::from(count.max(1)));
        let (mut all, mut lost) = (0.0, 0.0);
        let end = self.duration.as_secs_f64();
        let mut t = 0.0;
        while t < end {
            let at = Duration::from_secs_f64(t + STEP / 2.0).into_profile();
            let rate = self.schedule.rate_at(at);
            let open = self.schedule.sessions_at(at).ceil() as u64;
            if rate > 0.0 && open > 0 {
                let due = rate * STEP.min(end - t);
                all += due;
                if t + STEP / 2.0 >= after.as_secs_f64() && open > index {
                    let owned = (open - 1 - index) / count + 1;
                    lost += due * owned as f64 / open as f64;
                }
            }
            t += STEP;
        }
        if all > 0.0 { lost / all } else { 0.0 }
    }
}

trait IntoProfileDuration {
    fn into_profile(self) -> surge_profile::Duration;
}

impl IntoProfileDuration for Duration {
    fn into_profile(self) -> surge_profile::Duration {
        surge_profile::Duration::from_nanos(self.as_nanos().min(u64::MAX as u128) as u64)
    }
}

/// A weighted choice (a store mix, an intent mix).
#[derive(Debug, Clone)]
struct Mix<T> {
    items: Vec<(T, f64)>,
    total: f64,
}

impl<T> Mix<T> {
    fn new(items: impl Iterator<Item = (T, Percent)>) -> Self {
        let items: Vec<(T, f64)> = items.map(|(t, p)| (t, p.fraction())).collect();
        let total = items.iter().map(|(_, w)| w).sum();
        Self { items, total }
    }

    fn pick_index(&self, rng: &mut SmallRng) -> usize {
        let mut x = rng.random::<f64>() * self.total;
        for (i, (_, w)) in self.items.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        self.items.len().saturating_sub(1)
    }

    fn pick(&self, rng: &mut SmallRng) -> &T {
        &self.items[self.pick_index(rng)].0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn profile(stages: &str) -> Profile {
        profile_with("constant", stages)
    }

    fn profile_with(arrival: &str, stages: &str) -> Profile {
        let dir = tempfile::tempdir().unwrap();
        let system = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../profiles/system/mangaassist.toml")
            .canonicalize()
            .unwrap();
        let text = format!(
            r#"description = "t"
seed = 1
[system]
file = "{}"
[traffic]
arrival = "{arrival}"
conversation_turns = 5
reply_timeout = "5s"
connect_rate = "500/s"
[traffic.stores]
manga_jp = "100%"
[traffic.intents]
chitchat = "100%"
{stages}"#,
            system.display(),
        );
        let path = dir.path().join("p.toml");
        std::fs::write(&path, text).unwrap();
        Profile::load(&path).unwrap()
    }

    #[test]
    fn sessions_open_in_index_order_and_close_in_reverse() {
        let p = profile(
            r#"[[traffic.stages]]
name = "up"
duration = "10s"
ramp = "10s"
sessions = 10
session_rate = "60/min"
[[traffic.stages]]
name = "down"
duration = "10s"
ramp = "10s"
sessions = 0
message_rate = "0/min"
"#,
        );
        let plan = Plan::new(&p);
        assert_eq!(plan.peak_sessions(), 10);
        let w0 = plan.windows(0);
        assert_eq!(w0.len(), 1, "{w0:?}");
        assert_eq!(w0[0].open, Duration::ZERO);
        let w9 = plan.windows(9);
        assert!((w9[0].open.as_secs_f64() - 9.0).abs() < 1e-6, "{w9:?}");
        assert!((w9[0].close.as_secs_f64() - 11.0).abs() < 1e-6, "{w9:?}");
        assert!((w0[0].close.as_secs_f64() - 20.0).abs() < 1e-6, "{w0:?}");
        assert!(plan.windows(10).is_empty());
    }

    /// Messages due in [`from`, `to`) s from every session of `plan` (all its windows).
    fn due_between(plan: &Plan, sessions: u64, from: f64, to: f64) -> u64 {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut n = 0;
        for k in 0..sessions {
            for w in plan.windows(k) {
                let mut due = plan.next_due(w.open, w.close, true, &mut rng);
                // Bounded: each step moves past the last due time, and windows close.
                while let Some(at) = due {
                    let s = at.as_secs_f64();
                    n += u64::from(s >= from && s < to);
                    due = plan.next_due(at, w.close, false, &mut rng);
                }
            }
        }
        n
    }

    #[test]
    fn constant_gaps_give_each_session_its_share_of_the_rate() {
        let p = profile(
            r#"[[traffic.stages]]
name = "hold"
duration = "10s"
sessions = 4
message_rate = "8/s"
"#,
        );
        let plan = Plan::new(&p);
        let mut rng = SmallRng::seed_from_u64(1);
        let three = Duration::from_secs(3);
        let next = plan.next_due(three, Duration::from_secs(10), false, &mut rng);
        assert_eq!(
            next,
            Some(three + Duration::from_millis(500)),
            "4 sessions share 8/s"
        );
        let first = plan.next_due(Duration::ZERO, Duration::from_secs(10), true, &mut rng);
        assert!(
            first.is_some_and(|f| f <= Duration::from_millis(500)),
            "{first:?}"
        );
        assert_eq!(due_between(&plan, 4, 0.0, 10.0), 80);
        assert_eq!(plan.pick_store(&mut rng), 0);
        assert!(!plan.pick_text(None, &mut rng).is_empty());
    }

    /// Each session's messages follow the schedule's rate across a step and a ramp, as the
    /// schedule's integral says (the expected counts are worked out here from the stages
    /// written below, not asked of the schedule). A gap drawn whole at the rate of its
    /// start carried the slow rate past the step: ~1,000 messages short of 12,000.
    #[test]
    fn sessions_follow_a_rate_that_steps_up_and_ramps() {
        let stages = r#"[[traffic.stages]]
name = "slow"
duration = "30s"
sessions = 1000
message_rate = "6000/min"
[[traffic.stages]]
name = "fast"
duration = "60s"
ramp = "0s"
sessions = 1000
message_rate = "12000/min"
[[traffic.stages]]
name = "faster"
duration = "20s"
ramp = "20s"
sessions = 1000
message_rate = "24000/min"
"#;
        for arrival in ["poisson", "constant"] {
            let plan = Plan::new(&profile_with(arrival, stages));
            // 100/s for 30 s, 200/s for 60 s, then 200 → 400/s over 20 s.
            for (from, to, expected) in [
                (0.0, 30.0, 3_000.0_f64),
                (30.0, 90.0, 12_000.0),
                (90.0, 110.0, 6_000.0),
            ] {
                let off = (due_between(&plan, 1000, from, to) as f64 - expected).abs();
                // Poisson within 4 sd; constant within 1 % (and one message).
                let held = match arrival {
                    "poisson" => off < 4.0 * expected.sqrt(),
                    _ => off <= 0.01 * expected + 1.0,
                };
                assert!(
                    held,
                    "{arrival} {from}-{to} s: {off} messages off {expected}"
                );
            }
        }
    }

    /// A pause sends nothing, and sessions that open along a ramp send the ramp's messages
    /// between them: nothing for 10 s, then 0 → 200/s over 30 s while sessions grow from 0
    /// to 1,000 (3,000 expected, worked out from the stages).
    #[test]
    fn a_pause_sends_nothing_and_opening_sessions_share_a_ramp() {
        let stages = r#"[[traffic.stages]]
name = "idle"
duration = "10s"
sessions = 0
message_rate = "0/min"
[[traffic.stages]]
name = "grow"
duration = "30s"
ramp = "30s"
sessions = 1000
message_rate = "12000/min"
"#;
        for arrival in ["poisson", "constant"] {
            let plan = Plan::new(&profile_with(arrival, stages));
            assert_eq!(due_between(&plan, 1000, 0.0, 10.0), 0, "{arrival}");
            let n = due_between(&plan, 1000, 10.0, 40.0) as f64;
            let tolerance = if arrival == "poisson" {
                4.0 * 3_000f64.sqrt()
            } else {
                31.0
            };
            assert!(
                (n - 3_000.0).abs() < tolerance,
                "{arrival}: {n} messages, expected 3,000 ± {tolerance:.0}"
            );
        }
    }
}
