//! Capped exponential backoff with jitter: the one delay policy every retry loop uses.
//!
//! Pure arithmetic (no clock, no runtime): callers sleep for what it returns, which keeps it
//! testable and lets tokio's paused time drive the loops that use it.

use std::time::Duration;

/// Delays `initial, 2·initial, 4·initial, …` capped at `max`, each scaled by a jitter factor
/// in `[0.5, 1.0]` so that many peers retrying together spread out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A policy starting at `initial` and never exceeding `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            attempt: 0,
        }
    }

    /// The delay before the next attempt. `jitter` in `[0, 1]` (e.g. a random number)
    /// picks a point in the upper half of the nominal delay.
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let nominal = self
            .initial
            .saturating_mul(2u32.saturating_pow(self.attempt))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        nominal.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }

    /// Failed attempts so far.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Back to the initial delay after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// A jitter value in `[0, 1)` for [`Backoff::next_delay`], from this thread's generator.
///
/// Every retry loop takes its jitter from here, so that a deterministic simulation can
/// seed it ([`seed_jitter`]) and replay the same delays. Unseeded, each thread starts
/// from a per-process random seed (std's `RandomState`), which spreads peers retrying
/// together as well as any generator would; jitter needs no cryptographic quality.
pub fn jitter() -> f64 {
    JITTER.with(|state| {
        let next = splitmix64(state.get());
        state.set(next.0);
        // The top 53 bits make an exactly representable fraction in [0, 1).
        (next.1 >> 11) as f64 / (1u64 << 53) as f64
    })
}

/// Seeds this thread's jitter generator: a run on one thread (a current-thread runtime)
/// seeded alike then draws the same jitter.
pub fn seed_jitter(seed: u64) {
    JITTER.with(|state| state.set(seed));
}

thread_local! {
    static JITTER: std::cell::Cell<u64> = std::cell::Cell::new(random_seed());
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0x5eed);
    hasher.finish()
}

/// One step of SplitMix64: the next state and its output.
fn splitmix64(state: u64) -> (u64, u64) {
    let state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (state, z ^ (z >> 31))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let full: Vec<_> = (0..6).map(|_| b.next_delay(1.0).as_millis()).collect();
        assert_eq!(full, [100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.next_delay(0.0), Duration::from_millis(50));
        assert_eq!(b.attempts(), 1);
    }

    #[test]
    fn seeded_jitter_repeats_and_stays_in_range() {
        seed_jitter(7);
        let first: Vec<f64> = (0..100).map(|_| jitter()).collect();
        seed_jitter(7);
        let again: Vec<f64> = (0..100).map(|_| jitter()).collect();
        assert_eq!(first, again);
        assert!(first.iter().all(|j| (0.0..1.0).contains(j)));
        assert!(first.windows(2).any(|w| w[0] != w[1]));
    }

    #[test]
    fn never_overflows() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        for _ in 0..200 {
            assert!(b.next_delay(0.7) <= Duration::from_secs(30));
        }
    }
}
