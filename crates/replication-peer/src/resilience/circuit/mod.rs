//! A circuit breaker: a small state machine plus a tower layer around it.
//!
//! tower has no circuit breaker, so this one follows tower's file shape (`layer.rs`,
//! `future.rs`, `error.rs`). [`CircuitBreaker`] is usable on its own (the engine guards
//! local-store writes with it) and shared between clones of [`CircuitBreakerService`].
//!
//! States: *closed* lets every call through and counts consecutive failures; at the
//! threshold it *opens* and rejects calls at once for `open_for`; then it is *half-open*
//! and lets exactly one probe through: success closes it, failure opens it again.
//! Time is `tokio::time::Instant`, so tests drive it with `tokio::time::pause()`.

mod error;
mod future;
mod layer;

pub use error::CircuitOpenError;
pub(crate) use layer::{CircuitBreakerLayer, CircuitBreakerService};

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// Where a breaker stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CircuitState {
    /// Calls go through.
    Closed,
    /// Calls fail fast until the open period ends.
    Open,
    /// The open period ended: one probe call decides.
    HalfOpen,
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half-open",
        })
    }
}

/// Running totals of a breaker, for metrics and health.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CircuitCounters {
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// Calls that succeeded.
    pub successes: u64,
    /// Calls that failed.
    pub failures: u64,
    /// Calls rejected without being attempted.
    pub rejected: u64,
    /// How many times the circuit opened.
    pub opened: u64,
}

#[derive(Debug)]
struct Inner {
    state: CircuitState,
    opened_at: Option<Instant>,
    probe_in_flight: bool,
    counters: CircuitCounters,
}

/// A circuit breaker shared by everything that calls one dependency.
#[derive(Clone)]
pub struct CircuitBreaker {
    inner: Arc<Mutex<Inner>>,
    failure_threshold: u32,
    open_for: Duration,
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("state", &self.state())
            .field("failure_threshold", &self.failure_threshold)
            .field("open_for", &self.open_for)
            .finish()
    }
}

impl CircuitBreaker {
    /// A closed breaker that opens after `failure_threshold` consecutive failures (at least 1)
    /// and stays open for `open_for`.
    pub fn new(failure_threshold: u32, open_for: Duration) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                state: CircuitState::Closed,
                opened_at: None,
                probe_in_flight: false,
                counters: CircuitCounters::default(),
            })),
            failure_threshold: failure_threshold.max(1),
            open_for,
        }
    }

    /// The current state (an elapsed open period shows as half-open).
    pub fn state(&self) -> CircuitState {
        let mut inner = self.lock();
        self.refresh(&mut inner);
        inner.state
    }

    /// Whether calls are currently rejected.
    pub fn is_open(&self) -> bool {
        self.state() == CircuitState::Open
    }

    /// The running totals.
    pub fn counters(&self) -> CircuitCounters {
        self.lock().counters
    }

    /// Asks to make one call. The permit must be resolved with [`CallPermit::success`] or
    /// [`CallPermit::failure`]; dropping it unresolved (a cancelled call) counts as neither,
    /// and frees the half-open probe slot so the breaker can never wedge.
    pub fn try_acquire(&self) -> Result<CallPermit, CircuitOpenError> {
        let mut inner = self.lock();
        self.refresh(&mut inner);
        match inner.state {
            CircuitState::Closed => Ok(CallPermit {
                breaker: self.clone(),
                probe: false,
                resolved: false,
            }),
            CircuitState::HalfOpen if !inner.probe_in_flight => {
                inner.probe_in_flight = true;
                Ok(CallPermit {
                    breaker: self.clone(),
                    probe: true,
                    resolved: false,
                })
            }
            CircuitState::HalfOpen | CircuitState::Open => {
                inner.counters.rejected += 1;
                Err(CircuitOpenError {
                    retry_after: self.remaining_open(&inner),
                })
            }
        }
    }

    /// Records the outcome of a call made outside a permit (e.g. a connection event).
    pub fn record(&self, success: bool) {
        let mut inner = self.lock();
        self.apply(&mut inner, success, false);
    }

    fn apply(&self, inner: &mut Inner, success: bool, probe: bool) {
        if probe {
            inner.probe_in_flight = false;
        }
        if success {
            inner.counters.successes += 1;
            inner.counters.consecutive_failures = 0;
            inner.state = CircuitState::Closed;
            inner.opened_at = None;
            return;
        }
        inner.counters.failures += 1;
        inner.counters.consecutive_failures = inner.counters.consecutive_failures.saturating_add(1);
        let reopen = probe || inner.state == CircuitState::HalfOpen;
        if reopen
            || (inner.state == CircuitState::Closed
                && inner.counters.consecutive_failures >= self.failure_threshold)
        {
            inner.state = CircuitState::Open;
            inner.opened_at = Some(Instant::now());
            inner.counters.opened += 1;
        }
    }

    fn refresh(&self, inner: &mut Inner) {
        if inner.state == CircuitState::Open {
            if let Some(at) = inner.opened_at {
                if at.elapsed() >= self.open_for {
                    inner.state = CircuitState::HalfOpen;
                    inner.probe_in_flight = false;
                }
            }
        }
    }

    fn remaining_open(&self, inner: &Inner) -> Duration {
        match (inner.state, inner.opened_at) {
            (CircuitState::Open, Some(at)) => self.open_for.saturating_sub(at.elapsed()),
            _ => Duration::ZERO,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The state stays consistent even if a holder panicked: every update is a few stores.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Permission to make one call through a [`CircuitBreaker`].
#[derive(Debug)]
pub struct CallPermit {
    breaker: CircuitBreaker,
    probe: bool,
    resolved: bool,
}

impl CallPermit {
    /// The call succeeded.
    pub fn success(mut self) {
        self.resolve(true);
    }

    /// The call failed in a way that says the dependency is unhealthy.
    pub fn failure(mut self) {
        self.resolve(false);
    }

    fn resolve(&mut self, success: bool) {
        self.resolved = true;
        let mut inner = self.breaker.lock();
        self.breaker.apply(&mut inner, success, self.probe);
    }
}

impl Drop for CallPermit {
    fn drop(&mut self) {
        if !self.resolved && self.probe {
            self.breaker.lock().probe_in_flight = false;
        }
    }
}

#[cfg(test)]
mod tests;
