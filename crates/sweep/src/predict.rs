//! The simulator's answer to the same steps, before any load is sent: each step profile
//! run through `surge-sim` and judged on the same thresholds. Printed first (what to
//! expect), then beside each measured step, so a sweep doubles as a check of the model.

use serde::Serialize;
use surge_profile::Profile;
use surge_sim::{SimOptions, simulate};

use crate::sweep::Figures;

/// What the simulator predicts for one step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    pub rate_per_min: f64,
    pub passed: bool,
    #[serde(flatten)]
    pub figures: Figures,
}

/// Simulates one step profile (its own seed, nothing written).
pub fn predict(profile: &Profile, rate_per_min: f64) -> Result<Prediction, String> {
    let hold = profile.duration;
    let outcome = simulate(profile, &SimOptions::default()).map_err(|e| {
        format!(
            "simulating the step at {}/min: {e} (--no-predict skips the prediction)",
            crate::profile::rate_label(rate_per_min)
        )
    })?;
    Ok(Prediction {
        rate_per_min,
        passed: outcome.summary.passed(),
        figures: Figures::of(&outcome.summary, hold),
    })
}
