//! Random draws as every rule makes them, from whichever generator the driver passes.
//!
//! Every random decision of a turn names its [`Layer`]; the driver says which generator
//! serves that layer ([`Rngs`]). The simulator keeps one seeded stream per layer, so a
//! change to one layer never reshuffles another's draws (common random numbers); the mock
//! serves every layer from the thread's generator. Both get the same arithmetic from here.

use rand::{Rng, RngCore};
use surge_profile::{Dist, Duration};

use crate::time::{Nanos, nanos};

/// The layers that draw random numbers during a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    Auth,
    Cpu,
    TaskStart,
    Burst,
    Precomputed,
    Classifier,
    Memory,
    MemoryRetry,
    Cache,
    Rag,
    SemanticCache,
    Prompt,
    PromptCache,
    Tokens,
    Ttft,
    BedrockRetry,
    Guardrails,
    Format,
    Network,
}

/// Where each layer's random numbers come from.
pub trait Rngs {
    type Rng: Rng + ?Sized;
    fn of(&mut self, layer: Layer) -> &mut Self::Rng;
}

/// Every layer from one generator (the mock's thread generator, a test's seeded one).
#[derive(Debug, Clone, Default)]
pub struct Shared<R>(pub R);

impl<R: Rng> Rngs for Shared<R> {
    type Rng = R;
    #[inline]
    fn of(&mut self, _: Layer) -> &mut R {
        &mut self.0
    }
}

/// Uniform in `[0, 1)` with 53 random bits.
#[inline]
pub fn unit<R: RngCore + ?Sized>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// True with probability `p`.
#[inline]
pub fn chance<R: RngCore + ?Sized>(rng: &mut R, p: f64) -> bool {
    unit(rng) < p
}

/// One latency drawn from `d`, in nanoseconds (inlined, as [`Dist::sample`] is).
#[inline(always)]
pub fn latency<R: Rng + ?Sized>(d: &Dist<Duration>, rng: &mut R) -> Nanos {
    nanos(d.sample(rng))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn unit_is_in_range_and_chance_follows_p() {
        let mut rng = StdRng::seed_from_u64(7);
        assert!((0..1000).all(|_| (0.0..1.0).contains(&unit(&mut rng))));
        let hits = (0..10_000).filter(|_| chance(&mut rng, 0.3)).count();
        assert!((2_800..3_200).contains(&hits), "{hits}");
        assert!(!(0..100).any(|_| chance(&mut rng, 0.0)));
    }

    #[test]
    fn a_constant_latency_is_its_value() {
        let d: Dist<Duration> = "20ms".parse().unwrap();
        assert_eq!(latency(&d, &mut StdRng::seed_from_u64(1)), 20_000_000);
    }
}
