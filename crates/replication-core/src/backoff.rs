//! The one retry policy of the workspace: capped exponential backoff with injectable jitter,
//! an optional bound on retries, and the decision "retry or not" taken from the error's
//! `is_retriable()`, never from the caller.
//!
//! Pure arithmetic (no clock, no runtime): a [`RetryPolicy`] hands out a [`Backoff`] per
//! call, which answers each failure with [`Next`]; the runners ([`RetryPolicy::retry`],
//! [`RetryPolicy::retry_blocking`]) take the sleep from their caller, so tokio's paused time,
//! an engine's drain deadline or a blocking thread can drive them alike. The jitter source
//! is a [`Jitter`], so that a simulator can seed it ([`SeededJitter::new`]), or seed every
//! default policy created on its thread at once ([`seed_jitter`]).

use crate::Retriable;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A source of jitter: numbers in `[0, 1]`.
pub trait Jitter: Send + Sync + fmt::Debug {
    /// The next number, in `[0, 1]`.
    fn sample(&self) -> f64;
}

/// A small seeded generator (SplitMix64): the same seed gives the same jitter sequence.
#[derive(Debug)]
pub struct SeededJitter {
    state: AtomicU64,
}

impl SeededJitter {
    /// A generator whose sequence is fixed by `seed` (deterministic tests, simulation).
    pub fn new(seed: u64) -> Self {
        Self {
            state: AtomicU64::new(seed),
        }
    }

    /// A generator seeded from the standard library's per-process random keys, so that
    /// processes (and policies) retrying together spread out. On a thread seeded with
    /// [`seed_jitter`] the seed comes from that thread's sequence instead, so that a
    /// deterministic simulation on one thread replays every default policy's delays.
    pub fn from_entropy() -> Self {
        if let Some(seed) = next_thread_seed() {
            return Self::new(seed);
        }
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u8(0);
        Self::new(hasher.finish())
    }
}

/// Seeds this thread: from now on every [`SeededJitter::from_entropy`] on it (and so every
/// [`RetryPolicy::new`]) takes its seed from one sequence fixed by `seed`. A run confined to
/// one thread (a current-thread runtime) that creates its policies in the same order then
/// draws the same jitter; other threads keep entropy.
pub fn seed_jitter(seed: u64) {
    THREAD_SEED.with(|state| state.set(Some(seed)));
}

thread_local! {
    /// The state of this thread's seed sequence, once [`seed_jitter`] has set it.
    static THREAD_SEED: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
}

/// The next seed of this thread's sequence, if it was seeded.
fn next_thread_seed() -> Option<u64> {
    THREAD_SEED.with(|state| {
        let current = state.get()?;
        let (next, output) = splitmix64(current);
        state.set(Some(next));
        Some(output)
    })
}

/// One step of SplitMix64: the next state and its output.
fn splitmix64(state: u64) -> (u64, u64) {
    let state = state.wrapping_add(GAMMA);
    let mut z = state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (state, z ^ (z >> 31))
}

const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

impl Jitter for SeededJitter {
    fn sample(&self) -> f64 {
        let (_, z) = splitmix64(self.state.fetch_add(GAMMA, Ordering::Relaxed));
        // The top 53 bits as a fraction in [0, 1).
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// No jitter: every delay is the nominal one (for loops that never run in a crowd, such as
/// one process's own database lock).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoJitter;

impl Jitter for NoJitter {
    fn sample(&self) -> f64 {
        1.0
    }
}

/// How a failed call is retried: delays `initial, m·initial, m²·initial, …` capped at `max`,
/// each scaled by a jitter factor in `[0.5, 1.0]` so that many callers retrying together
/// spread out; at most `max_retries` retries when set (else until the caller gives up).
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    initial: Duration,
    max: Duration,
    multiplier: u32,
    max_retries: Option<u32>,
    jitter: Arc<dyn Jitter>,
}

impl RetryPolicy {
    /// Doubling delays from `initial`, never above `max`, unbounded retries, jitter seeded
    /// from entropy.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            multiplier: 2,
            max_retries: None,
            jitter: Arc::new(SeededJitter::from_entropy()),
        }
    }

    /// Grows each delay by `multiplier` (at least 1: constant delays).
    pub fn with_multiplier(mut self, multiplier: u32) -> Self {
        self.multiplier = multiplier.max(1);
        self
    }

    /// Gives up after `retries` retries (`retries + 1` attempts in all).
    pub fn with_max_retries(mut self, retries: u32) -> Self {
        self.max_retries = Some(retries);
        self
    }

    /// Draws jitter from `jitter` (e.g. a [`SeededJitter`] shared by a simulation).
    pub fn with_jitter(mut self, jitter: Arc<dyn Jitter>) -> Self {
        self.jitter = jitter;
        self
    }

    /// The bound on retries, if any.
    pub fn max_retries(&self) -> Option<u32> {
        self.max_retries
    }

    /// Fresh state for one call (or one loop) under this policy.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            policy: self.clone(),
            attempt: 0,
        }
    }

    /// Runs `op` until it succeeds, retrying only errors whose `is_retriable()` is true,
    /// within the policy's bound. Before each retry `on_retry` sees the error and the delay,
    /// then `sleep` waits it out; `sleep` resolving to `false` gives up (a shutdown, a
    /// deadline).
    pub async fn retry<T, E, Op, Fut, Sleep, Slept>(
        &self,
        mut op: Op,
        mut on_retry: impl FnMut(&E, Duration),
        mut sleep: Sleep,
    ) -> Result<T, RetryError<E>>
    where
        E: Retriable,
        Op: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        Sleep: FnMut(Duration) -> Slept,
        Slept: Future<Output = bool>,
    {
        let mut backoff = self.backoff();
        loop {
            let error = match op().await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let delay = match backoff.next(&error) {
                Next::Retry(delay) => delay,
                Next::Permanent => return Err(RetryError::Permanent(error)),
                Next::Exhausted => return Err(RetryError::Exhausted(error)),
            };
            on_retry(&error, delay);
            if !sleep(delay).await {
                return Err(RetryError::GaveUp(error));
            }
        }
    }

    /// [`RetryPolicy::retry`] for blocking work on a thread of its own: `sleep` blocks.
    pub fn retry_blocking<T, E: Retriable>(
        &self,
        mut op: impl FnMut() -> Result<T, E>,
        mut on_retry: impl FnMut(&E, Duration),
        mut sleep: impl FnMut(Duration),
    ) -> Result<T, RetryError<E>> {
        let mut backoff = self.backoff();
        loop {
            let error = match op() {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            match backoff.next(&error) {
                Next::Retry(delay) => {
                    on_retry(&error, delay);
                    sleep(delay);
                }
                Next::Permanent => return Err(RetryError::Permanent(error)),
                Next::Exhausted => return Err(RetryError::Exhausted(error)),
            }
        }
    }
}

/// Why a retried call failed in the end; each case carries the last error.
#[derive(Debug, PartialEq, Eq)]
pub enum RetryError<E> {
    /// The error is permanent: never retried.
    Permanent(E),
    /// Retriable, but the policy's retries were spent.
    Exhausted(E),
    /// Retriable, but the caller's sleep gave up (stopping, past a deadline).
    GaveUp(E),
}

impl<E> RetryError<E> {
    /// The last error.
    pub fn into_inner(self) -> E {
        match self {
            RetryError::Permanent(e) | RetryError::Exhausted(e) | RetryError::GaveUp(e) => e,
        }
    }
}

/// What to do after a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Try again after this delay.
    Retry(Duration),
    /// The error is permanent: do not retry.
    Permanent,
    /// The policy's retries are spent.
    Exhausted,
}

/// The state of one retried call (or one loop) under a [`RetryPolicy`].
#[derive(Clone, Debug)]
pub struct Backoff {
    policy: RetryPolicy,
    attempt: u32,
}

impl Backoff {
    /// Decides after `error`: a permanent error is never retried; otherwise the next delay
    /// (at least what the error asks for, [`Retriable::retry_after`]) unless the retries
    /// are spent.
    pub fn next<E: Retriable + ?Sized>(&mut self, error: &E) -> Next {
        if !error.is_retriable() {
            return Next::Permanent;
        }
        match self.next_delay() {
            Some(delay) => Next::Retry(error.retry_after().map_or(delay, |at| at.max(delay))),
            None => Next::Exhausted,
        }
    }

    /// The delay before the next attempt, whatever the error; `None` once the retries are
    /// spent. For loops that wait between rounds rather than retry one call.
    pub fn next_delay(&mut self) -> Option<Duration> {
        let policy = &self.policy;
        if policy.max_retries.is_some_and(|max| self.attempt >= max) {
            return None;
        }
        let nominal = policy
            .initial
            .saturating_mul(policy.multiplier.saturating_pow(self.attempt))
            .min(policy.max);
        self.attempt = self.attempt.saturating_add(1);
        let jitter = policy.jitter.sample().clamp(0.0, 1.0);
        Some(nominal.mul_f64(0.5 + 0.5 * jitter))
    }

    /// Retries so far.
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
    use std::cell::Cell;

    #[derive(Debug, PartialEq, Eq)]
    struct Failure {
        retriable: bool,
    }

    impl Retriable for Failure {
        fn is_retriable(&self) -> bool {
            self.retriable
        }
    }

    const TRANSIENT: Failure = Failure { retriable: true };
    const PERMANENT: Failure = Failure { retriable: false };

    fn policy(initial_ms: u64, max_ms: u64) -> RetryPolicy {
        RetryPolicy::new(
            Duration::from_millis(initial_ms),
            Duration::from_millis(max_ms),
        )
        .with_jitter(Arc::new(NoJitter))
    }

    #[test]
    fn delays_grow_up_to_the_cap_and_reset() {
        let mut b = policy(100, 1000).backoff();
        let full: Vec<_> = (0..6)
            .map(|_| b.next_delay().unwrap().as_millis())
            .collect();
        assert_eq!(full, [100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.attempts(), 0);
        let mut tripled = policy(10, 1000).with_multiplier(3).backoff();
        let grown: Vec<_> = (0..4)
            .map(|_| tripled.next_delay().unwrap().as_millis())
            .collect();
        assert_eq!(grown, [10, 30, 90, 270]);
    }

    #[test]
    fn jittered_delays_stay_within_half_and_all_of_the_nominal_delay_and_never_overflow() {
        let mut b = RetryPolicy::new(Duration::from_secs(1), Duration::from_secs(30))
            .with_jitter(Arc::new(SeededJitter::new(7)))
            .backoff();
        let mut nominal = Duration::from_secs(1);
        for _ in 0..200 {
            let delay = b.next_delay().unwrap();
            assert!(delay >= nominal / 2 && delay <= nominal, "{delay:?}");
            nominal = (nominal * 2).min(Duration::from_secs(30));
        }
    }

    #[test]
    fn jitter_with_a_seed_is_deterministic() {
        let delays = |seed| {
            let mut b = RetryPolicy::new(Duration::from_millis(100), Duration::from_secs(10))
                .with_jitter(Arc::new(SeededJitter::new(seed)))
                .backoff();
            (0..8).map(|_| b.next_delay().unwrap()).collect::<Vec<_>>()
        };
        assert_eq!(delays(42), delays(42));
        assert_ne!(delays(42), delays(43));
        let jitter = SeededJitter::new(1);
        assert!((0..1000)
            .map(|_| jitter.sample())
            .all(|j| (0.0..=1.0).contains(&j)));
    }

    #[test]
    fn a_seeded_thread_replays_the_default_policies_jitter() {
        let delays = || {
            let policy = RetryPolicy::new(Duration::from_millis(100), Duration::from_secs(10));
            let mut b = policy.backoff();
            (0..8).map(|_| b.next_delay().unwrap()).collect::<Vec<_>>()
        };
        // On a fresh thread: unseeded, so no other test's seeding can leak in.
        std::thread::spawn(move || {
            seed_jitter(7);
            let first = (delays(), delays());
            seed_jitter(7);
            let again = (delays(), delays());
            assert_eq!(first, again);
            assert_ne!(first.0, first.1, "each policy gets its own seed");
            seed_jitter(8);
            assert_ne!(delays(), first.0);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_permanent_error_is_never_retried() {
        let mut b = policy(1, 10).backoff();
        assert_eq!(b.next(&PERMANENT), Next::Permanent);
        assert_eq!(b.attempts(), 0);
        let calls = Cell::new(0);
        let result: Result<(), _> = policy(1, 10).retry_blocking(
            || {
                calls.set(calls.get() + 1);
                Err(PERMANENT)
            },
            |_, _| panic!("no retry of a permanent error"),
            |_| {},
        );
        assert_eq!(result, Err(RetryError::Permanent(PERMANENT)));
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn retries_are_bounded_when_the_policy_says_so() {
        let calls = Cell::new(0);
        let mut slept = Vec::new();
        let result: Result<(), _> = policy(10, 100).with_max_retries(2).retry_blocking(
            || {
                calls.set(calls.get() + 1);
                Err(TRANSIENT)
            },
            |_, _| {},
            |delay| slept.push(delay.as_millis()),
        );
        assert_eq!(result, Err(RetryError::Exhausted(TRANSIENT)));
        assert_eq!((calls.get(), slept), (3, vec![10, 20]));
    }

    #[test]
    fn an_error_asking_for_a_longer_wait_gets_it() {
        #[derive(Debug)]
        struct Open;
        impl Retriable for Open {
            fn is_retriable(&self) -> bool {
                true
            }
            fn retry_after(&self) -> Option<Duration> {
                Some(Duration::from_secs(3))
            }
        }
        let mut b = policy(10, 100).backoff();
        assert_eq!(b.next(&Open), Next::Retry(Duration::from_secs(3)));
    }

    #[tokio::test]
    async fn the_async_runner_retries_transient_errors_until_success_or_the_sleep_gives_up() {
        let calls = Cell::new(0);
        let result = policy(1, 10)
            .retry(
                || {
                    calls.set(calls.get() + 1);
                    let n = calls.get();
                    async move {
                        if n < 3 {
                            Err(TRANSIENT)
                        } else {
                            Ok(n)
                        }
                    }
                },
                |_, _| {},
                |_| async { true },
            )
            .await;
        assert_eq!(result, Ok(3));
        let stopped: Result<(), _> = policy(1, 10)
            .retry(|| async { Err(TRANSIENT) }, |_, _| {}, |_| async { false })
            .await;
        assert_eq!(stopped, Err(RetryError::GaveUp(TRANSIENT)));
    }
}
