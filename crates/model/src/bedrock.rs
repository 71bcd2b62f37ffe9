//! Bedrock per model: quotas, reservations and the timing of an answer's tokens.
//!
//! A call reserves its input tokens plus `max_tokens` when it starts and settles at the
//! end, giving back what the answer did not use — as Bedrock's quota accounting does.
//! Provisioned throughput is a bucket refilled at `units × unit_tokens_per_minute`; the
//! on-demand quota is two buckets, tokens and requests per minute, each holding one
//! minute's worth. A call that fits neither is throttled (ThrottlingException); what the
//! turn does then is the caller's `on_throttle` policy ([`crate::turn::on_throttle`]).
//!
//! A model with `max_concurrency` serves that many calls at once ([`slots`]); a call that
//! finds them all busy waits in a FIFO queue, and its first token comes that much later.
//! Output tokens count `output_burndown` times against the tokens-per-minute quota, in the
//! reservation and in the settlement. An answer's first token comes `ttft` after the call
//! starts, plus the prompt's prefill (`input tokens / prefill_rate`) where the model has
//! one, then one token every `1 / output_rate`.

use surge_profile::system::Model;

use crate::bucket::TokenBucket;
use crate::draw::{self, Layer, Rngs};
use crate::orchestrator::Orchestrator;
use crate::time::{Nanos, SECOND};

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

/// What a call of `model` reserves against its quota when it starts: its input tokens (those
/// not read from the prompt cache: cache reads do not count against the quota) and the most
/// it may write, output burned down.
#[inline]
pub fn reservation(model: &Model, input_tokens: f64, max_tokens: u32) -> f64 {
    charge(model, input_tokens, f64::from(max_tokens))
}

/// What a call of `model` that read `input_tokens` (not from the prompt cache) and wrote
/// `output_tokens` counts against its quota once settled.
#[inline]
pub fn charge(model: &Model, input_tokens: f64, output_tokens: f64) -> f64 {
    input_tokens + output_tokens * model.output_burndown
}

/// The serving slots of `model` for one of `share` equal parts of the account, or `None`
/// when it serves every call at once: servers in front of one FIFO queue, `T` what the
/// driver needs to resume a waiting call.
pub fn slots<T>(model: &Model, share: f64) -> Option<Orchestrator<T>> {
    model.max_concurrency.map(|n| {
        let n = (f64::from(n) / share).ceil().max(1.0) as u32;
        Orchestrator::new(1, n)
    })
}

/// The time `model` takes to read a prompt of `input_tokens` (not from the prompt cache)
/// before its first token.
#[inline]
pub fn prefill(model: &Model, input_tokens: f64) -> Nanos {
    match &model.prefill_rate {
        None => 0,
        Some(rate) => (input_tokens / rate.per_second() * SECOND as f64) as Nanos,
    }
}

/// The quotas of one model.
#[derive(Debug, Clone)]
pub struct Quota {
    provisioned: Option<TokenBucket>,
    tokens: TokenBucket,
    requests: TokenBucket,
    capacity_per_minute: f64,
    interval_tokens: f64,
    interval_throttles: u64,
    throttles: u64,
    calls: u64,
}

impl Quota {
    /// The quotas of one of `share` equal parts of the account (the mock's worker
    /// processes each hold one part; the simulator holds the whole, `share` 1).
    pub fn new(model: &Model, share: f64) -> Self {
        let provisioned =
            model.provisioned_units as f64 * model.unit_tokens_per_minute as f64 / share;
        let tokens = model.tokens_per_minute as f64 / share;
        Self {
            provisioned: (provisioned > 0.0).then(|| TokenBucket::per_minute(provisioned)),
            tokens: TokenBucket::per_minute(tokens),
            requests: TokenBucket::per_minute(model.requests_per_minute as f64 / share),
            capacity_per_minute: provisioned + tokens,
            interval_tokens: 0.0,
            interval_throttles: 0,
            throttles: 0,
            calls: 0,
        }
    }

    /// Reserves `tokens` for a call at `now`, or `None` when it is throttled.
    pub fn reserve(&mut self, now: Nanos, tokens: f64) -> Option<Lease> {
        if let Some(p) = &mut self.provisioned {
            if p.try_take(now, tokens) {
                self.calls += 1;
                return Some(Lease::Provisioned);
            }
        }
        if self.requests.has(now, 1.0) && self.tokens.has(now, tokens) {
            self.requests.try_take(now, 1.0);
            self.tokens.try_take(now, tokens);
            self.calls += 1;
            return Some(Lease::OnDemand);
        }
        self.throttles += 1;
        self.interval_throttles += 1;
        None
    }

    /// Settles a call: `used` tokens of the `reserved` ones were consumed.
    pub fn settle(&mut self, lease: Lease, reserved: f64, used: f64) {
        let unused = (reserved - used).max(0.0);
        match (lease, &mut self.provisioned) {
            (Lease::Provisioned, Some(p)) => p.refund(unused),
            _ => self.tokens.refund(unused),
        }
        self.interval_tokens += used;
    }

    /// Tokens, capacity and throttles since the last call.
    pub fn take_usage(&mut self) -> Usage {
        Usage {
            tokens: std::mem::take(&mut self.interval_tokens),
            capacity_per_minute: self.capacity_per_minute,
            throttles: std::mem::take(&mut self.interval_throttles),
        }
    }

    pub fn throttles(&self) -> u64 {
        self.throttles
    }

    pub fn calls(&self) -> u64 {
        self.calls
    }
}

/// The quotas of every model, by index.
#[derive(Debug, Clone)]
pub struct Capacity {
    models: Vec<Quota>,
}

impl Capacity {
    /// The whole account's quotas of `models`, in order.
    pub fn new<'m>(models: impl IntoIterator<Item = &'m Model>) -> Self {
        Self {
            models: models.into_iter().map(|m| Quota::new(m, 1.0)).collect(),
        }
    }

    /// Reserves `tokens` for a call to `model` at `now`, or `None` when throttled.
    #[inline]
    pub fn reserve(&mut self, model: usize, now: Nanos, tokens: f64) -> Option<Lease> {
        self.models[model].reserve(now, tokens)
    }

    /// Settles a call: `used` tokens of the `reserved` ones were consumed.
    #[inline]
    pub fn settle(&mut self, model: usize, lease: Lease, reserved: f64, used: f64) {
        self.models[model].settle(lease, reserved, used);
    }

    pub fn take_usage(&mut self, model: usize) -> Usage {
        self.models[model].take_usage()
    }

    pub fn throttles(&self, model: usize) -> u64 {
        self.models[model].throttles()
    }

    pub fn calls(&self, model: usize) -> u64 {
        self.models[model].calls()
    }
}

/// The gap between two tokens of `model`'s answers.
#[inline]
pub fn token_gap(model: &Model) -> Nanos {
    (SECOND as f64 / model.output_rate.per_second()) as Nanos
}

/// When the tokens of one answer are due.
#[derive(Debug, Clone, Copy)]
pub struct Tokens {
    /// When the call started.
    pub start: Nanos,
    pub ttft: Nanos,
    /// Output tokens per second.
    pub rate: f64,
}

impl Tokens {
    /// The timing of an answer of `model` to a prompt of `input_tokens`, whose call starts
    /// at `start`: TTFT drawn, plus the prefill.
    #[inline]
    pub fn draw<G: Rngs + ?Sized>(
        model: &Model,
        start: Nanos,
        input_tokens: f64,
        rngs: &mut G,
    ) -> Self {
        Self {
            start,
            ttft: draw::latency(&model.ttft, rngs.of(Layer::Ttft)) + prefill(model, input_tokens),
            rate: model.output_rate.per_second(),
        }
    }

    /// When the first token is out.
    #[inline]
    pub fn first(&self) -> Nanos {
        self.start + self.ttft
    }

    /// When token `i` (from 0) is due; `due(n)` is when an answer of `n` tokens is done.
    #[inline]
    pub fn due(&self, i: u32) -> Nanos {
        self.start + self.ttft + (f64::from(i) / self.rate * SECOND as f64) as Nanos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(units: u32) -> Vec<Model> {
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
        vec![toml::from_str(&text).unwrap()]
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

    #[test]
    fn reservation_is_input_plus_max_tokens_and_settling_refunds_the_rest() {
        let model = &plan(0)[0];
        let mut q = Quota::new(model, 1.0);
        let reserved = reservation(model, 1500.0, 4000);
        assert_eq!(reserved, 5500.0);
        let lease = q.reserve(0, reserved).unwrap();
        assert!(
            q.reserve(0, reserved).is_none(),
            "10,000 TPM hold one 5,500 reservation"
        );
        q.settle(lease, reserved, 1800.0);
        assert!(
            q.reserve(0, reserved).is_some(),
            "3,700 unused tokens came back"
        );
        let usage = q.take_usage();
        assert_eq!(
            (usage.tokens, usage.throttles, usage.capacity_per_minute),
            (1800.0, 1, 10_000.0)
        );
        assert_eq!((q.calls(), q.throttles()), (2, 1));
        // One minute refills the whole quota.
        assert!(q.reserve(60 * SECOND, 9_000.0).is_some());
    }

    #[test]
    fn a_share_of_the_account_holds_its_part_of_each_quota() {
        let model = &plan(0)[0];
        let mut half = Quota::new(model, 2.0);
        assert!(half.reserve(0, 5_000.0).is_some());
        assert!(half.reserve(0, 1.0).is_none(), "5,000 of 10,000 TPM");
    }

    #[test]
    fn tokens_come_at_ttft_then_the_output_rate() {
        let model = &plan(0)[0];
        let t = Tokens::draw(model, 1_000, 2_000.0, &mut draw::Shared(rand::rng()));
        assert_eq!(
            t.first(),
            1_000 + 300_000_000,
            "no prefill rate: TTFT alone"
        );
        assert_eq!(t.due(0), t.first());
        assert_eq!(t.due(250), t.first() + SECOND, "250 tokens/s");
        assert_eq!(token_gap(model), 4_000_000);
        let mut long = model.clone();
        long.prefill_rate = Some("10000/s".parse().unwrap());
        let t = Tokens::draw(&long, 0, 2_000.0, &mut draw::Shared(rand::rng()));
        assert_eq!(
            t.first(),
            300_000_000 + 200_000_000,
            "2,000 tokens at 10,000/s"
        );
    }

    #[test]
    fn slots_queue_calls_beyond_the_models_concurrency() {
        let mut model = plan(0)[0].clone();
        assert!(
            slots::<u32>(&model, 1.0).is_none(),
            "no limit without max_concurrency"
        );
        model.max_concurrency = Some(3);
        let mut s = slots::<u32>(&model, 1.0).unwrap();
        assert!((0..3).all(|_| s.try_start(0)) && !s.try_start(0));
        s.enqueue(0, 9);
        assert_eq!(
            s.finish(SECOND),
            Some(9),
            "the waiting call takes the freed slot"
        );
        let mut half = slots::<u32>(&model, 2.0).unwrap();
        assert!(
            half.try_start(0) && half.try_start(0) && !half.try_start(0),
            "ceil(3 / 2)"
        );
    }

    #[test]
    fn output_tokens_burn_down_the_quota() {
        let mut model = plan(0)[0].clone();
        model.output_burndown = 5.0;
        let reserved = reservation(&model, 1_000.0, 1_000);
        assert_eq!(reserved, 6_000.0, "1,000 input + 1,000 max output × 5");
        assert_eq!(charge(&model, 1_000.0, 200.0), 2_000.0);
        let mut q = Quota::new(&model, 1.0);
        let lease = q.reserve(0, reserved).unwrap();
        assert!(q.reserve(0, reserved).is_none(), "10,000 TPM hold one");
        q.settle(lease, reserved, charge(&model, 1_000.0, 200.0));
        assert!(
            q.reserve(0, reserved).is_some(),
            "settled at 2,000: 8,000 left"
        );
    }
}
