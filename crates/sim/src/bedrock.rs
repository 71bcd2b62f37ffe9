//! Bedrock capacity per model: provisioned model units first, on-demand quotas for the
//! overflow.
//!
//! A call reserves its input tokens plus `max_tokens` when it starts and settles at the
//! end, giving back what the answer did not use — as Bedrock's quota accounting does.
//! Provisioned throughput is a bucket refilled at `units × unit_tokens_per_minute`; the
//! on-demand quota is two buckets, tokens and requests per minute, each holding one
//! minute's worth. A call that fits neither is throttled (ThrottlingException); what the
//! turn does then is the caller's `on_throttle` policy.

use crate::bucket::TokenBucket;
use crate::plan::ModelPlan;
use crate::time::{MINUTE, Nanos, SECOND};

/// Where a call's reservation was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    Provisioned,
    OnDemand,
}

/// Tokens and throttles of one model over a timeline interval.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub tokens: f64,
    pub capacity_per_minute: f64,
    pub throttles: u64,
}

struct ModelCapacity {
    provisioned: Option<TokenBucket>,
    tokens: TokenBucket,
    requests: TokenBucket,
    capacity_per_minute: f64,
    interval_tokens: f64,
    interval_throttles: u64,
    throttles: u64,
    calls: u64,
}

fn per_minute_bucket(per_minute: f64) -> TokenBucket {
    TokenBucket::new(per_minute * SECOND as f64 / MINUTE as f64, per_minute)
}

pub struct Capacity {
    models: Vec<ModelCapacity>,
}

impl Capacity {
    pub fn new(models: &[ModelPlan]) -> Self {
        let models = models
            .iter()
            .map(|m| {
                let provisioned =
                    m.model.provisioned_units as f64 * m.model.unit_tokens_per_minute as f64;
                ModelCapacity {
                    provisioned: (provisioned > 0.0).then(|| per_minute_bucket(provisioned)),
                    tokens: per_minute_bucket(m.model.tokens_per_minute as f64),
                    requests: per_minute_bucket(m.model.requests_per_minute as f64),
                    capacity_per_minute: provisioned + m.model.tokens_per_minute as f64,
                    interval_tokens: 0.0,
                    interval_throttles: 0,
                    throttles: 0,
                    calls: 0,
                }
            })
            .collect();
        Self { models }
    }

    /// Reserves `tokens` for a call to `model` at `now`, or `None` when throttled.
    pub fn reserve(&mut self, model: usize, now: Nanos, tokens: f64) -> Option<Lease> {
        let m = &mut self.models[model];
        if let Some(p) = &mut m.provisioned {
            if p.try_take(now, tokens) {
                m.calls += 1;
                return Some(Lease::Provisioned);
            }
        }
        if m.requests.has(now, 1.0) && m.tokens.has(now, tokens) {
            m.requests.try_take(now, 1.0);
            m.tokens.try_take(now, tokens);
            m.calls += 1;
            return Some(Lease::OnDemand);
        }
        m.throttles += 1;
        m.interval_throttles += 1;
        None
    }

    /// Settles a call: `used` tokens of the `reserved` ones were consumed.
    pub fn settle(&mut self, model: usize, lease: Lease, reserved: f64, used: f64) {
        let m = &mut self.models[model];
        let unused = (reserved - used).max(0.0);
        match lease {
            Lease::Provisioned => m.provisioned.as_mut().expect("leased").refund(unused),
            Lease::OnDemand => m.tokens.refund(unused),
        }
        m.interval_tokens += used;
    }

    pub fn take_usage(&mut self, model: usize) -> Usage {
        let m = &mut self.models[model];
        Usage {
            tokens: std::mem::take(&mut m.interval_tokens),
            capacity_per_minute: m.capacity_per_minute,
            throttles: std::mem::take(&mut m.interval_throttles),
        }
    }

    pub fn throttles(&self, model: usize) -> u64 {
        self.models[model].throttles
    }

    pub fn calls(&self, model: usize) -> u64 {
        self.models[model].calls
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(units: u32) -> Vec<ModelPlan> {
        let text = format!(
            r#"id = "m"
ttft = "300ms"
output_rate = "250/s"
tokens_per_minute = 10000
requests_per_minute = 3
provisioned_units = {units}
unit_tokens_per_minute = 5000
unit_price_per_hour = "$1"
input_price_per_million = "$1"
output_price_per_million = "$1""#
        );
        let model = toml::from_str(&text).unwrap();
        vec![ModelPlan {
            name: "m".into(),
            model,
        }]
    }

    #[test]
    fn quota_reserves_max_tokens_and_settles() {
        let mut c = Capacity::new(&plan(0));
        assert_eq!(c.reserve(0, 0, 6000.0), Some(Lease::OnDemand));
        assert_eq!(c.reserve(0, 0, 6000.0), None, "TPM reserved");
        c.settle(0, Lease::OnDemand, 6000.0, 1000.0);
        assert_eq!(c.reserve(0, 0, 6000.0), Some(Lease::OnDemand));
        assert_eq!(c.reserve(0, 0, 1.0), Some(Lease::OnDemand));
        assert_eq!(c.reserve(0, 0, 1.0), None, "RPM");
    }

    #[test]
    fn provisioned_first_then_on_demand() {
        let mut c = Capacity::new(&plan(1));
        assert_eq!(c.reserve(0, 0, 5000.0), Some(Lease::Provisioned));
        assert_eq!(c.reserve(0, 0, 5000.0), Some(Lease::OnDemand));
    }
}
