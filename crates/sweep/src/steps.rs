//! What a sweep asks for: the rates of its steps (`--rates LO..HI[:STEP]`), how many
//! sessions carry each rate, and the ceiling it must stay under.

use std::fmt;
use std::num::NonZeroU64;
use std::str::FromStr;

use surge_profile::traffic::Stage;
use surge_profile::{Duration, Profile, Rate};

/// Most steps one sweep may have: beyond this, `STEP` was almost surely a typo.
pub const MAX_STEPS: usize = 100;

/// The offered rates of the steps, messages per minute, rising.
#[derive(Debug, Clone, PartialEq)]
pub struct Rates(Vec<f64>);

/// Steps of `LO..HI` without `:STEP`.
const DEFAULT_STEPS: usize = 5;

/// One rate as the flags write it, in messages per minute: `600` or with its unit (`10/s`).
pub fn per_minute(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let value = if text.contains('/') {
        text.parse::<Rate>()
            .map_err(|e| format!("\"{text}\": {e}"))?
            .per_minute()
    } else {
        text.parse::<f64>().map_err(|_| {
            format!("\"{text}\" is not a rate: write messages per minute (600) or 10/s")
        })?
    };
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(format!("\"{text}\": a rate must be above zero"))
    }
}

impl FromStr for Rates {
    type Err = String;

    /// `LO..HI[:STEP]`: LO, LO + STEP, … up to HI (HI itself when on the grid); without
    /// STEP, five evenly spaced steps from LO to HI.
    fn from_str(text: &str) -> Result<Self, String> {
        let usage = || {
            format!(
                "--rates \"{text}\": expected LO..HI[:STEP] in messages per minute \
                 (600..3000:600) or with units (10/s..50/s:10/s)"
            )
        };
        let (lo, rest) = text.split_once("..").ok_or_else(usage)?;
        let (hi, step) = match rest.split_once(':') {
            Some((hi, step)) => (hi, Some(step)),
            None => (rest, None),
        };
        let (lo, hi) = (per_minute(lo)?, per_minute(hi)?);
        if hi < lo {
            return Err(format!("--rates \"{text}\": HI is below LO"));
        }
        let step = match step {
            Some(s) => per_minute(s)?,
            None if hi == lo => return Ok(Rates(vec![lo])),
            None => (hi - lo) / (DEFAULT_STEPS - 1) as f64,
        };
        let count = ((hi - lo) / step + 1e-9).floor() as usize + 1;
        if count > MAX_STEPS {
            return Err(format!(
                "--rates \"{text}\": {count} steps, more than {MAX_STEPS}: take a larger STEP"
            ));
        }
        Ok(Rates((0..count).map(|k| lo + step * k as f64).collect()))
    }
}

impl Rates {
    /// Messages per minute of each step, rising.
    pub fn per_minute(&self) -> &[f64] {
        &self.0
    }

    /// The highest rate asked for.
    pub fn highest(&self) -> f64 {
        self.0.last().copied().unwrap_or(0.0)
    }
}

/// How many sessions carry a step's rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sessions {
    /// As many as keep each session sending at the pace of the profile's busiest stage
    /// (a higher rate is more users, not chattier ones).
    Scaled { per_session_per_min: f64 },
    /// The same sessions at every step (`--sessions N`): each one sends faster.
    Fixed(NonZeroU64),
}

impl Sessions {
    /// Sessions scaled like the profile's busiest stage (the one with the highest rate).
    pub fn scaled(profile: &Profile) -> Result<Self, String> {
        let busiest = profile
            .traffic
            .stages
            .iter()
            .filter(|s| s.sessions > 0)
            .max_by(|a, b| a.total_per_second().total_cmp(&b.total_per_second()))
            .ok_or("the profile has no stage with sessions to scale: give --sessions N")?;
        Ok(Self::Scaled {
            per_session_per_min: per_session(busiest),
        })
    }

    /// Sessions for a step of `rate_per_min`.
    pub fn at(self, rate_per_min: f64) -> u64 {
        match self {
            Self::Scaled {
                per_session_per_min,
            } => ((rate_per_min / per_session_per_min).round() as u64).max(1),
            Self::Fixed(n) => n.get(),
        }
    }
}

fn per_session(stage: &Stage) -> f64 {
    stage.total_per_second() * 60.0 / stage.sessions as f64
}

/// What a sweep may not exceed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ceiling {
    /// Highest rate any step may offer, messages per minute (`--max-rate`).
    pub max_rate_per_min: Option<f64>,
    /// Longest the whole sweep may hold load (`--max-duration`).
    pub max_duration: Duration,
}

impl Ceiling {
    /// Refuses a sweep that would go past the ceiling, saying which flag to change.
    pub fn check(&self, rates: &Rates, hold: Duration) -> Result<(), String> {
        if let Some(max) = self.max_rate_per_min {
            if rates.highest() > max * (1.0 + 1e-9) {
                return Err(format!(
                    "the sweep would reach {}/min, above --max-rate {}/min: lower HI of --rates \
                     or raise --max-rate",
                    Figure(rates.highest()),
                    Figure(max)
                ));
            }
        }
        let total = hold.as_secs_f64() * rates.per_minute().len() as f64;
        if total > self.max_duration.as_secs_f64() {
            return Err(format!(
                "{} steps of {hold} hold load for {}, longer than --max-duration {}: take fewer \
                 steps, a shorter --hold or raise --max-duration",
                rates.per_minute().len(),
                Duration::from_secs_f64(total),
                self.max_duration
            ));
        }
        Ok(())
    }
}

/// A rate as people write it: no needless decimals.
pub struct Figure(pub f64);

impl fmt::Display for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        if (v - v.round()).abs() < 1e-9 {
            write!(f, "{}", v.round())
        } else {
            write!(f, "{v:.1}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_with_and_without_step_and_units() {
        let r: Rates = "600..3000:600".parse().unwrap();
        assert_eq!(r.per_minute(), &[600.0, 1200.0, 1800.0, 2400.0, 3000.0]);
        let r: Rates = "10/s..30/s:10/s".parse().unwrap();
        assert_eq!(r.per_minute(), &[600.0, 1200.0, 1800.0]);
        let r: Rates = "100..500".parse().unwrap();
        assert_eq!(r.per_minute(), &[100.0, 200.0, 300.0, 400.0, 500.0]);
        // HI off the grid is not reached.
        let r: Rates = "100..250:100".parse().unwrap();
        assert_eq!(r.per_minute(), &[100.0, 200.0]);
        assert_eq!(
            "5..5".parse::<Rates>().unwrap().per_minute(),
            &[5.0],
            "one step"
        );
    }

    #[test]
    fn bad_rates_say_what_to_write() {
        for bad in ["600", "0..10", "10..5", "1..1000:1", "a..b", "1..2:0"] {
            let e = bad.parse::<Rates>().unwrap_err();
            assert!(!e.is_empty(), "{bad}");
        }
        let e = "1..1000:1".parse::<Rates>().unwrap_err();
        assert!(e.contains("larger STEP"), "{e}");
    }

    #[test]
    fn sessions_scale_with_the_rate_or_stay() {
        let s = Sessions::Scaled {
            per_session_per_min: 2.0,
        };
        assert_eq!(s.at(600.0), 300);
        assert_eq!(s.at(0.5), 1);
        assert_eq!(Sessions::Fixed(NonZeroU64::new(7).unwrap()).at(600.0), 7);
    }

    #[test]
    fn the_ceiling_names_the_flag() {
        let rates: Rates = "600..3000:600".parse().unwrap();
        let hold: Duration = "60s".parse().unwrap();
        let c = Ceiling {
            max_rate_per_min: Some(2000.0),
            max_duration: "1h".parse().unwrap(),
        };
        assert!(c.check(&rates, hold).unwrap_err().contains("--max-rate"));
        let c = Ceiling {
            max_rate_per_min: None,
            max_duration: "4m".parse().unwrap(),
        };
        assert!(
            c.check(&rates, hold)
                .unwrap_err()
                .contains("--max-duration")
        );
        let c = Ceiling {
            max_rate_per_min: Some(3000.0),
            max_duration: "5m".parse().unwrap(),
        };
        c.check(&rates, hold).unwrap();
    }
}
