//! Random streams, one per component, derived from the run seed and the component's name.
//!
//! Each layer draws from its own stream, so changing one layer (or how often it draws)
//! never reshuffles another layer's draws: comparisons between two configurations differ
//! only where the configurations differ (common random numbers). The generator is
//! xoshiro256++ seeded through SplitMix64, written out here so its output is fixed for
//! good and not subject to a dependency's version.

use rand::RngCore;

/// One stream of pseudo-random numbers.
#[derive(Debug, Clone)]
pub struct Stream {
    s: [u64; 4],
}

/// FNV-1a: a stable hash of a component name.
fn fnv1a(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Stream {
    /// The stream of `component` in the run seeded with `seed`.
    pub fn new(seed: u64, component: &str) -> Self {
        let mut state = seed ^ fnv1a(component).rotate_left(17);
        let s = [
            splitmix64(&mut state),
            splitmix64(&mut state),
            splitmix64(&mut state),
            splitmix64(&mut state),
        ];
        Self { s }
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    #[inline]
    pub fn unit(&mut self) -> f64 {
        surge_model::draw::unit(self)
    }

    /// True with probability `p`.
    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        surge_model::draw::chance(self, p)
    }

    /// Exponential with mean 1 (ziggurat: a logarithm only in the rare tail case).
    #[inline]
    pub fn exp1(&mut self) -> f64 {
        rand_distr::Distribution::sample(&rand_distr::Exp1, self)
    }

    /// Uniform integer in `[0, n)`; `n` must be above zero.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        // Lemire's multiply-shift; the bias (< n / 2^64) is irrelevant here.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

impl RngCore for Stream {
    #[inline]
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    #[inline]
    fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_independent() {
        let a: Vec<u64> = (0..4).map(|_| Stream::new(7, "a").next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(
            Stream::new(7, "a").next_u64(),
            Stream::new(7, "b").next_u64()
        );
        assert_ne!(
            Stream::new(7, "a").next_u64(),
            Stream::new(8, "a").next_u64()
        );
        let mut s = Stream::new(1, "u");
        let mean = (0..100_000).map(|_| s.unit()).sum::<f64>() / 100_000.0;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
    }
}
