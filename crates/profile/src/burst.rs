//! Bursty arrivals: one gamma renewal process for all sessions together.
//!
//! `arrival = "gamma(cv=3)"` means the gaps between consecutive messages *of the whole
//! system* have a coefficient of variation of 3 (Poisson has 1). The burstiness has to
//! live in that aggregate process: if every session drew its own gamma gaps, thousands of
//! independent sessions would superpose into a Poisson stream again (Palm–Khintchine) and
//! the bursts would vanish. So the simulator and the load generator both draw this one
//! process and hand each arrival to a session themselves.
//!
//! The rate changes over the schedule, so the gaps are drawn in *operational time*: unit-
//! mean gamma gaps on the scale of expected messages Λ(t) = ∫ rate, mapped back to run time
//! by inverting Λ piece by piece (rate(t) is linear within each piece of the [`Schedule`],
//! so Λ is quadratic there and inverts in closed form). The mean count in any window is then
//! the rate's integral over it, and the gaps at a steady rate keep the given CV.

use std::fmt;

use rand::Rng;
use rand_distr::{Distribution, Gamma};

use crate::traffic::{Schedule, Segment};
use crate::units::Duration;

/// The coefficient of variation of the gaps between messages: finite and above zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cv(f64);

impl Cv {
    /// # Errors
    /// What a profile's author should write instead, when `cv` is not a finite number
    /// above zero.
    pub fn new(cv: f64) -> Result<Self, String> {
        if cv.is_finite() && cv > 0.0 {
            Ok(Self(cv))
        } else {
            Err(format!(
                "gamma's cv is the gaps' standard deviation over their mean: a number above \
                 zero such as 3 (1 is Poisson), found {cv}"
            ))
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl fmt::Display for Cv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The aggregate gamma arrivals of one run, drawn one at a time in time order.
#[derive(Debug, Clone)]
pub struct GammaArrivals {
    segments: Vec<Segment>,
    index: usize,
    /// Expected messages already passed in the current segment.
    used: f64,
    gap: Gamma<f64>,
}

impl GammaArrivals {
    pub fn new(schedule: &Schedule, cv: Cv) -> Self {
        let v = cv.get() * cv.get();
        Self {
            segments: schedule.segments().to_vec(),
            index: 0,
            used: 0.0,
            // Shape 1/cv², scale cv²: mean 1, standard deviation cv.
            gap: Gamma::new(1.0 / v, v).expect("a valid Cv gives a valid gamma"),
        }
    }

    /// The time of the next message, or `None` once the schedule is over.
    pub fn next<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Option<Duration> {
        let mut ahead = self.gap.sample(rng);
        while let Some(seg) = self.segments.get(self.index) {
            let left = seg.messages() - self.used;
            if ahead < left {
                self.used += ahead;
                return Some(seg.start + Duration::from_secs_f64(time_to(seg, self.used)));
            }
            ahead -= left.max(0.0);
            self.index += 1;
            self.used = 0.0;
        }
        None
    }
}

/// Seconds from the start of `seg` until `m` messages are expected, 0 <= m <= its total:
/// the root of (slope / 2) τ² + rate_from τ = m, in the form that stays exact when the
/// slope is zero or negative.
fn time_to(seg: &Segment, m: f64) -> f64 {
    let len = (seg.end - seg.start).as_secs_f64();
    let b = seg.rate_from;
    let a = (seg.rate_to - seg.rate_from) / len / 2.0;
    let root = (b * b + 4.0 * a * m).max(0.0).sqrt();
    if b + root <= 0.0 {
        return 0.0;
    }
    (2.0 * m / (b + root)).min(len)
}

/// The coefficient of variation of the gaps between sorted times, in seconds (for tests
/// and reports).
pub fn gaps_cv(times: &[f64]) -> f64 {
    let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let n = gaps.len() as f64;
    let mean = gaps.iter().sum::<f64>() / n;
    let var = gaps.iter().map(|g| (g - mean) * (g - mean)).sum::<f64>() / (n - 1.0);
    var.sqrt() / mean
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::{MessageRate, Stage};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn schedule(stages: &[(&str, &str, &str)]) -> Schedule {
        let stages: Vec<Stage> = stages
            .iter()
            .map(|(dur, ramp, rate)| Stage {
                name: "s".into(),
                duration: dur.parse().unwrap(),
                ramp: ramp.parse().unwrap(),
                sessions: 100,
                rate: MessageRate::Total(rate.parse().unwrap()),
            })
            .collect();
        let total = stages.iter().fold(Duration::ZERO, |a, s| a + s.duration);
        Schedule::new(&stages, total)
    }

    fn draw(s: &Schedule, cv: f64, seed: u64) -> Vec<f64> {
        let mut a = GammaArrivals::new(s, Cv::new(cv).unwrap());
        let mut rng = StdRng::seed_from_u64(seed);
        let mut out = Vec::new();
        while let Some(t) = a.next(&mut rng) {
            out.push(t.as_secs_f64());
        }
        out
    }

    /// At a steady rate the gaps keep the CV asked for and the mean rate is the stage's.
    #[test]
    fn gamma_gaps_have_the_cv_and_the_rate() {
        // 1,000/s for 200 s: 200,000 gaps; the sample CV of gamma(cv=3) gaps is within
        // about 1 % of 3 at this size.
        let s = schedule(&[("200s", "0s", "1000/s")]);
        for (cv, seed) in [(3.0, 1), (3.0, 2), (1.0, 3), (0.5, 4)] {
            let t = draw(&s, cv, seed);
            let measured = gaps_cv(&t);
            assert!(
                (measured - cv).abs() < 0.1 * cv,
                "cv {cv}: measured {measured}"
            );
            let rate = t.len() as f64 / 200.0;
            eprintln!("gamma(cv={cv}): measured cv {measured:.3}, rate {rate:.1}/s");
            assert!((rate - 1000.0).abs() < 30.0, "cv {cv}: rate {rate}");
        }
    }

    /// With a ramp, each window's mean count follows the rate's integral over it.
    #[test]
    fn a_ramp_is_followed_in_operational_time() {
        // 0 → 1,000/s over 100 s, then 1,000/s for 50 s; 20 seeds averaged per window.
        let s = schedule(&[("150s", "100s", "1000/s")]);
        let windows = [(0.0, 25.0), (25.0, 50.0), (50.0, 100.0), (100.0, 150.0)];
        let mut counts = [0.0; 4];
        let seeds = 20;
        for seed in 0..seeds {
            for t in draw(&s, 3.0, seed) {
                if let Some(w) = windows.iter().position(|(a, b)| t >= *a && t < *b) {
                    counts[w] += 1.0 / seeds as f64;
                }
            }
        }
        // ∫ 10 t dt over each window.
        let expected = [3_125.0, 9_375.0, 37_500.0, 50_000.0];
        for ((got, want), w) in counts.iter().zip(expected).zip(windows) {
            assert!(
                (got - want).abs() < 0.05 * want,
                "{w:?}: {got} messages on average, expected {want}"
            );
        }
    }

    #[test]
    fn cv_must_be_above_zero() {
        assert!(Cv::new(0.0).is_err());
        assert!(Cv::new(f64::NAN).is_err());
        assert!(Cv::new(-1.0).is_err());
        assert_eq!(Cv::new(3.0).unwrap().get(), 3.0);
    }
}
