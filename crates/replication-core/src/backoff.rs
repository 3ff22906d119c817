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
    fn never_overflows() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        for _ in 0..200 {
            assert!(b.next_delay(0.7) <= Duration::from_secs(30));
        }
    }
}
