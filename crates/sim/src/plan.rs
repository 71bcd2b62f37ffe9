//! The profile, compiled for the hot path: names become small indices, mixes become
//! cumulative tables, per-store prompt sizes and per-intent models are worked out once.
//!
//! The event loop then never touches a string or a map.

use surge_profile::system::{Intent, Model};
use surge_profile::{Dist, Profile, SystemModel};

use crate::SimError;
use crate::rng::Stream;

/// Draws an index with given shares (which need not add up to exactly one).
#[derive(Debug, Clone)]
pub struct Mix {
    cumulative: Vec<f64>,
}

impl Mix {
    pub fn new(shares: impl IntoIterator<Item = f64>) -> Self {
        let mut total = 0.0;
        let cumulative: Vec<f64> = shares
            .into_iter()
            .map(|s| {
                total += s;
                total
            })
            .collect();
        let cumulative = cumulative
            .iter()
            .map(|c| c / total.max(f64::MIN_POSITIVE))
            .collect();
        Self { cumulative }
    }

    /// One index; a mix of one entry draws no random number.
    #[inline]
    pub fn draw(&self, rng: &mut Stream) -> usize {
        if self.cumulative.len() == 1 {
            return 0;
        }
        let u = rng.unit();
        self.cumulative
            .iter()
            .position(|&c| u < c)
            .unwrap_or(self.cumulative.len() - 1)
    }
}

/// An intent as the simulator uses it.
#[derive(Debug, Clone)]
pub struct IntentPlan {
    pub name: String,
    pub llm: bool,
    pub rag: bool,
    pub max_tokens: u32,
    pub output_tokens: Dist<f64>,
    /// Index of the model it is sent to (tiering applied).
    pub model: usize,
}

/// A store as the simulator uses it.
#[derive(Debug, Clone)]
pub struct StorePlan {
    pub name: String,
    /// Input tokens of the rendered system prompt.
    pub prompt_tokens: f64,
}

/// A Bedrock model as the simulator uses it.
#[derive(Debug, Clone)]
pub struct ModelPlan {
    pub name: String,
    pub model: Model,
}

/// Everything the hot path needs that does not change during a run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub intents: Vec<IntentPlan>,
    pub intent_mix: Mix,
    pub stores: Vec<StorePlan>,
    pub store_mix: Mix,
    pub models: Vec<ModelPlan>,
    /// Index of the fast model (the `fallback` throttle policy's target).
    pub fast_model: usize,
    /// Traffic stage names, by index.
    pub stages: Vec<String>,
    /// What a good answer is (`[goodput]`).
    pub goodput: surge_profile::goodput::Slos,
}

fn model_index(system: &SystemModel, models: &[ModelPlan], name: &str) -> Result<usize, SimError> {
    models.iter().position(|m| m.name == name).ok_or_else(|| {
        SimError::Model(format!(
            "bedrock model \"{name}\" is not among bedrock.models of \"{}\"",
            system.name
        ))
    })
}

impl Plan {
    pub fn new(profile: &Profile) -> Result<Self, SimError> {
        let system = &profile.system;
        let models: Vec<ModelPlan> = system
            .bedrock
            .models
            .iter()
            .map(|(name, model)| ModelPlan {
                name: name.clone(),
                model: model.clone(),
            })
            .collect();
        let mut intents = Vec::new();
        let mut shares = Vec::new();
        for (name, share) in &profile.traffic.intents {
            let intent: &Intent = system.intents.get(name).ok_or_else(|| {
                SimError::Model(format!("intent \"{name}\" is not in the system model"))
            })?;
            let model = if system.bedrock.enabled && intent.llm {
                model_index(system, &models, system.model_for(intent))?
            } else {
                0
            };
            intents.push(IntentPlan {
                name: name.clone(),
                llm: intent.llm,
                rag: intent.rag,
                max_tokens: intent.max_tokens,
                output_tokens: intent.output_tokens.clone(),
                model,
            });
            shares.push(share.fraction());
        }
        let mut stores = Vec::new();
        let mut store_shares = Vec::new();
        for (name, share) in &profile.traffic.stores {
            let store = system.stores.get(name).ok_or_else(|| {
                SimError::Model(format!("store \"{name}\" is not in the system model"))
            })?;
            stores.push(StorePlan {
                name: name.clone(),
                prompt_tokens: system.prompt_tokens(store),
            });
            store_shares.push(share.fraction());
        }
        if intents.is_empty() || stores.is_empty() {
            return Err(SimError::Model(
                "the traffic needs at least one intent and one store".into(),
            ));
        }
        let fast_model = if system.bedrock.enabled {
            model_index(system, &models, &system.bedrock.fast_model)?
        } else {
            0
        };
        Ok(Self {
            intents,
            intent_mix: Mix::new(shares),
            stores,
            store_mix: Mix::new(store_shares),
            models,
            fast_model,
            stages: profile
                .traffic
                .stages
                .iter()
                .map(|s| s.name.clone())
                .collect(),
            goodput: profile.goodput,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_draws_in_proportion() {
        let mix = Mix::new([0.25, 0.75]);
        let mut rng = Stream::new(3, "mix");
        let ones = (0..10_000).filter(|_| mix.draw(&mut rng) == 1).count();
        assert!((7_300..7_700).contains(&ones), "{ones}");
    }
}
