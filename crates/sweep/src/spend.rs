//! What a sweep against a real deployment will cost in Bedrock tokens, said before it
//! starts: a sweep pushes a target to its limits on purpose, and every step's messages are
//! paid for.

use surge_cost::{Usage, bedrock_spend};
use surge_profile::{Duration, Profile};

use crate::steps::Rates;

/// The estimate of a whole sweep, every step run to its end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spend {
    pub messages: f64,
    pub llm_calls: f64,
    /// On-demand Bedrock dollars at the system model's prices.
    pub dollars: f64,
}

/// Messages of every step (rate × hold) through the profile's intent mix and models.
pub fn estimate(profile: &Profile, rates: &Rates, hold: Duration) -> Spend {
    let minutes = hold.as_secs_f64() / 60.0;
    let messages: f64 = rates.per_minute().iter().map(|r| r * minutes).sum();
    let usage = Usage::llm_of_messages(profile, messages);
    Spend {
        messages,
        llm_calls: usage.llm_total().calls,
        dollars: bedrock_spend(&usage, &profile.system),
    }
}
