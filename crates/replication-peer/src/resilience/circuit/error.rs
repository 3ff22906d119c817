//! The error a [`super::CircuitBreakerService`] fails with while its circuit is open.

use std::time::Duration;

/// The circuit is open: the call was not attempted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("circuit open (next probe in {retry_after:?})")]
pub struct CircuitOpenError {
    /// Time until the breaker lets a probe through.
    pub retry_after: Duration,
}
