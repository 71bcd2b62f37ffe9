//! When messages are due: the profile's rate(t) as a non-homogeneous arrival process.
//!
//! Poisson traffic is drawn by thinning: within each linear piece of the schedule,
//! candidates come at the piece's highest rate and each is kept with probability
//! rate(t) / highest. Constant traffic steps through the rate: the gap after a message is
//! 1 / rate(t). Either way a candidate is also kept only in the share of sessions that
//! are connected (the gateway admits connections at a limited rate), so the superposed
//! per-session processes are reproduced without one event per session. Arrivals are
//! generated one at a time just before they are due, never stored.

use surge_profile::Schedule;
use surge_profile::traffic::Arrival;

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

/// The arrival process of one run.
pub struct Arrivals {
    pieces: Vec<Piece>,
    index: usize,
    kind: Arrival,
    /// The next candidate time (`None` when the schedule is over).
    next: Option<Nanos>,
    /// Constant arrivals: fractional messages owed to the connected share.
    credit: f64,
    rng: Stream,
}

impl Arrivals {
    pub fn new(schedule: &Schedule, kind: Arrival, rng: Stream) -> Self {
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
        let mut a = Self {
            pieces,
            index: 0,
            kind,
            next: None,
            credit: 0.0,
            rng,
        };
        a.next = a.candidate_after(a.pieces.first().map_or(0, |p| p.start));
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
        self.pieces.get(self.index).map_or(0, |p| p.stage)
    }

    /// Decides the due candidate (keeping it in `connected` share of cases) and draws the
    /// next one. Returns whether the candidate is a message.
    #[inline]
    pub fn take(&mut self, connected: f64) -> bool {
        let Some(t) = self.next else { return false };
        let piece = &self.pieces[self.index];
        let keep = match self.kind {
            Arrival::Poisson => {
                let p = piece.keep(t) * connected;
                p >= 1.0 || self.rng.chance(p)
            }
            Arrival::Constant => {
                self.credit += connected;
                let keep = self.credit >= 1.0 - 1e-9;
                if keep {
                    self.credit -= 1.0;
                }
                keep
            }
        };
        self.next = self.candidate_after(t);
        keep
    }

    #[inline]
    fn candidate_after(&mut self, mut t: Nanos) -> Option<Nanos> {
        while let Some(piece) = self.pieces.get(self.index) {
            let t0 = t.max(piece.start);
            let mean_gap = match self.kind {
                Arrival::Poisson => piece.gap,
                Arrival::Constant => 1.0 / piece.rate(t0),
            };
            if mean_gap.is_finite() {
                let gap = match self.kind {
                    Arrival::Poisson => self.rng.exp1() * mean_gap,
                    Arrival::Constant => mean_gap,
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

    fn schedule(ramp: &str, rate: &str) -> Schedule {
        let stage = Stage {
            name: "s".into(),
            duration: "100s".parse().unwrap(),
            ramp: ramp.parse().unwrap(),
            sessions: 10,
            rate: MessageRate::Total(rate.parse().unwrap()),
        };
        Schedule::new(&[stage], "100s".parse().unwrap())
    }

    fn count(mut a: Arrivals, connected: f64) -> usize {
        let mut n = 0;
        while a.peek().is_some() {
            n += usize::from(a.take(connected));
        }
        n
    }

    #[test]
    fn poisson_count_follows_the_integral() {
        // 100 s ramp from 0 to 200/s: 10,000 expected (sd 100).
        let a = Arrivals::new(
            &schedule("100s", "200/s"),
            Arrival::Poisson,
            Stream::new(1, "a"),
        );
        let n = count(a, 1.0);
        assert!((9_700..=10_300).contains(&n), "{n}");
        let half = Arrivals::new(
            &schedule("0s", "100/s"),
            Arrival::Poisson,
            Stream::new(1, "a"),
        );
        let n = count(half, 0.5);
        assert!((4_800..=5_200).contains(&n), "{n}");
    }

    #[test]
    fn constant_is_evenly_spaced() {
        let a = Arrivals::new(
            &schedule("0s", "10/s"),
            Arrival::Constant,
            Stream::new(1, "a"),
        );
        assert_eq!(count(a, 1.0), 999);
    }
}
