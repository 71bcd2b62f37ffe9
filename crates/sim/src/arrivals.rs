//! When messages are due: the profile's rate(t) as a non-homogeneous arrival process.
//!
//! Poisson traffic is drawn by thinning: within each linear piece of the schedule,
//! candidates come at the piece's highest rate and each is kept with probability
//! rate(t) / highest. Constant traffic steps through the rate: the gap after a message is
//! 1 / rate(t). Either way a candidate is also kept only in the share of sessions that
//! are connected (the gateway admits connections at a limited rate), so the superposed
//! per-session processes are reproduced without one event per session. Gamma traffic is
//! already one aggregate process ([`surge_profile::burst`], the same the load generator
//! draws), kept in the connected share likewise. A trace is replayed message by message:
//! each one is sent (its session's connection is the trace's to have), by the session,
//! with the intent and store the trace gives. Arrivals are generated one at a time just
//! before they are due, never stored (a trace is, being a file).

use surge_profile::Schedule;
use surge_profile::burst::GammaArrivals;
use surge_profile::trace::Replayed;
use surge_profile::traffic::{Arrival, Traffic};

use crate::rng::Stream;
use surge_model::time::{Nanos, SECOND, as_f64, nanos, truncate};

#[derive(Debug, Clone, Copy)]
struct Piece {
    /// Index of the traffic stage.
    stage: usize,
    start: Nanos,
    end: Nanos,
    /// Messages per nanosecond at the start and its change per nanosecond.
    from: f64,
    slope: f64,
    /// Nanoseconds per message at the piece's highest rate (infinite when it is 0).
    gap: f64,
    /// The rate does not change over the piece: every candidate is kept.
    flat: bool,
}

impl Piece {
    fn new(stage: usize, start: Nanos, end: Nanos, from: f64, to: f64) -> Self {
        let len = end.saturating_sub(start);
        Self {
            stage,
            start,
            end,
            from,
            slope: if len == 0 {
                0.0
            } else {
                (to - from) / len as f64
            },
            gap: 1.0 / from.max(to),
            flat: from == to,
        }
    }

    fn rate(&self, t: Nanos) -> f64 {
        let t = t.clamp(self.start, self.end);
        self.from + self.slope * as_f64(t - self.start)
    }

    /// The share of candidates at `t` that are messages: rate(t) / highest rate.
    #[inline]
    fn keep(&self, t: Nanos) -> f64 {
        if self.flat {
            1.0
        } else {
            self.rate(t) * self.gap
        }
    }
}

/// What the arrival process says about a message beyond its time (a trace's row); `None`
/// fields are drawn by the simulator.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Given {
    pub session: Option<u32>,
    pub intent: Option<usize>,
    pub store: Option<usize>,
}

/// The arrival process of one run.
pub struct Arrivals {
    source: Source,
    /// The next candidate time (`None` when the schedule is over).
    next: Option<Nanos>,
    /// The traffic stage of the next candidate.
    stage: usize,
    rng: Stream,
}

enum Source {
    /// Poisson or constant: per-session processes, superposed by thinning.
    Thinned(Thinned),
    /// Gamma: the aggregate renewal process, with the schedule for its stages.
    Gamma(GammaArrivals, Schedule),
    /// A trace: its messages in time order and the next one's index.
    Trace(Vec<Replayed>, usize, Schedule),
}

/// Poisson and constant arrivals over the schedule's pieces.
struct Thinned {
    pieces: Vec<Piece>,
    index: usize,
    constant: bool,
    /// Constant arrivals: fractional messages owed to the connected share.
    credit: f64,
}

impl Arrivals {
    pub fn new(traffic: &Traffic, schedule: &Schedule, rng: Stream) -> Self {
        let source = match &traffic.arrival {
            Arrival::Poisson | Arrival::Constant => {
                Source::Thinned(Thinned::new(schedule, traffic.arrival == Arrival::Constant))
            }
            Arrival::Gamma(cv) => {
                Source::Gamma(GammaArrivals::new(schedule, *cv), schedule.clone())
            }
            Arrival::Trace(_) => {
                let replay = traffic.replay().expect("a trace arrival replays");
                Source::Trace(replay.messages, 0, schedule.clone())
            }
        };
        let mut a = Self {
            source,
            next: None,
            stage: 0,
            rng,
        };
        a.draw_next(None);
        a
    }

    /// When the next candidate is due.
    #[inline]
    pub fn peek(&self) -> Option<Nanos> {
        self.next
    }

    /// The traffic stage of the due candidate.
    #[inline]
    pub fn stage(&self) -> usize {
        self.stage
    }

    /// Decides the due candidate (keeping it in `connected` share of cases, a trace's
    /// always) and draws the next one. Returns what is given of the message, if it is one.
    #[inline]
    pub fn take(&mut self, connected: f64) -> Option<Given> {
        let t = self.next?;
        let given = match &mut self.source {
            Source::Thinned(th) => th.keep(t, connected, &mut self.rng).then(Given::default),
            Source::Gamma(..) => {
                (connected >= 1.0 || self.rng.chance(connected)).then(Given::default)
            }
            Source::Trace(messages, index, _) => {
                let m = &messages[*index - 1];
                Some(Given {
                    session: Some(m.session),
                    intent: m.intent,
                    store: m.store,
                })
            }
        };
        self.draw_next(Some(t));
        given
    }

    fn draw_next(&mut self, after: Option<Nanos>) {
        let (next, stage) = match &mut self.source {
            Source::Thinned(th) => {
                let t = after.unwrap_or_else(|| th.pieces.first().map_or(0, |p| p.start));
                let next = th.candidate_after(t, &mut self.rng);
                (next, th.pieces.get(th.index).map_or(0, |p| p.stage))
            }
            Source::Gamma(process, schedule) => {
                let t = process.next(&mut self.rng);
                (
                    t.map(nanos),
                    t.and_then(|t| schedule.stage_at(t)).unwrap_or(0),
                )
            }
            Source::Trace(messages, index, schedule) => {
                let m = messages.get(*index);
                *index += 1;
                (
                    m.map(|m| nanos(m.at)),
                    m.and_then(|m| schedule.stage_at(m.at)).unwrap_or(0),
                )
            }
        };
        self.next = next;
        self.stage = stage;
    }
}

impl Thinned {
    fn new(schedule: &Schedule, constant: bool) -> Self {
        let per_ns = |r: f64| r / SECOND as f64;
        let pieces = schedule
            .segments()
            .iter()
            .map(|s| {
                let (start, end) = (nanos(s.start), nanos(s.end));
                Piece::new(s.stage, start, end, per_ns(s.rate_from), per_ns(s.rate_to))
            })
            .filter(|p| p.end > p.start)
            .collect();
        Self {
            pieces,
            index: 0,
            constant,
            credit: 0.0,
        }
    }

    #[inline]
    fn keep(&mut self, t: Nanos, connected: f64, rng: &mut Stream) -> bool {
        if self.constant {
            self.credit += connected;
            let keep = self.credit >= 1.0 - 1e-9;
            if keep {
                self.credit -= 1.0;
            }
            keep
        } else {
            let p = self.pieces[self.index].keep(t) * connected;
            p >= 1.0 || rng.chance(p)
        }
    }

    #[inline]
    fn candidate_after(&mut self, mut t: Nanos, rng: &mut Stream) -> Option<Nanos> {
        while let Some(piece) = self.pieces.get(self.index) {
            let t0 = t.max(piece.start);
            let mean_gap = if self.constant {
                1.0 / piece.rate(t0)
            } else {
                piece.gap
            };
            if mean_gap.is_finite() {
                let gap = if self.constant {
                    mean_gap
                } else {
                    rng.exp1() * mean_gap
                };
                // Rounded to the nanosecond by `+ 0.5` and truncation (`round` is a libm call).
                let next = truncate(as_f64(t0) + gap.max(1.0) + 0.5);
                if next < piece.end {
                    return Some(next);
                }
            }
            // Nothing more in this piece: by memorylessness, start afresh at the next.
            t = piece.end;
            self.index += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use surge_profile::traffic::{MessageRate, Stage};

    fn traffic(arrival: Arrival, ramp: &str, rate: &str) -> (Traffic, Schedule) {
        let stage = Stage {
            name: "s".into(),
            duration: "100s".parse().unwrap(),
            ramp: ramp.parse().unwrap(),
            sessions: 10,
            rate: MessageRate::Total(rate.parse().unwrap()),
        };
        let schedule = Schedule::new(std::slice::from_ref(&stage), "100s".parse().unwrap());
        let traffic = Traffic {
            arrival,
            conversation_turns: 5.0,
            reply_timeout: "10s".parse().unwrap(),
            abandon_after: None,
            retry_after_error: None,
            connect_rate: "500/s".parse().unwrap(),
            stages: vec![stage],
            stores: Default::default(),
            intents: Default::default(),
        };
        (traffic, schedule)
    }

    fn arrivals(arrival: Arrival, ramp: &str, rate: &str) -> Arrivals {
        let (t, s) = traffic(arrival, ramp, rate);
        Arrivals::new(&t, &s, Stream::new(1, "a"))
    }

    fn count(mut a: Arrivals, connected: f64) -> usize {
        let mut n = 0;
        while a.peek().is_some() {
            n += usize::from(a.take(connected).is_some());
        }
        n
    }

    #[test]
    fn poisson_count_follows_the_integral() {
        // 100 s ramp from 0 to 200/s: 10,000 expected (sd 100).
        let n = count(arrivals(Arrival::Poisson, "100s", "200/s"), 1.0);
        assert!((9_700..=10_300).contains(&n), "{n}");
        let n = count(arrivals(Arrival::Poisson, "0s", "100/s"), 0.5);
        assert!((4_800..=5_200).contains(&n), "{n}");
    }

    #[test]
    fn constant_is_evenly_spaced() {
        assert_eq!(count(arrivals(Arrival::Constant, "0s", "10/s"), 1.0), 999);
    }

    /// The simulator's gamma arrivals are the shared aggregate process: bursty gaps at the
    /// schedule's mean rate; Poisson's stay at a CV of 1.
    #[test]
    fn gamma_arrivals_are_bursty_at_the_mean_rate_and_poisson_is_not() {
        let cv = surge_profile::burst::Cv::new(3.0).unwrap();
        for (arrival, expected) in [(Arrival::Gamma(cv), 3.0), (Arrival::Poisson, 1.0)] {
            let mut a = arrivals(arrival, "0s", "500/s");
            let mut times = Vec::new();
            while let Some(t) = a.peek() {
                if a.take(1.0).is_some() {
                    times.push(t as f64 / SECOND as f64);
                }
            }
            let rate = times.len() as f64 / 100.0;
            assert!((rate - 500.0).abs() < 50.0, "{rate}");
            let measured = surge_profile::burst::gaps_cv(&times);
            assert!(
                (measured - expected).abs() < 0.1 * expected,
                "{measured} for {expected}"
            );
        }
    }
}
