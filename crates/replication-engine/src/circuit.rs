//! `SyncEngineCircuit`: the circuit breaker around writes into the local store.
//!
//! While the store keeps failing, the hot path stops hammering it: after
//! `settings.sync_engine.circuit_failure_threshold` consecutive retriable failures the
//! circuit opens, writes fail fast for `circuit_open_for`, then one probe write decides.
//! Permanent failures (bad input such as an oversized item) say nothing about the store's
//! health and do not count.

use replication_core::{SyncEngineSettings, SyncError};
use replication_peer::{CircuitBreaker, CircuitState};
use std::future::Future;
use std::time::Duration;

/// Breaker state for local-store writes; shared by every peer's hot path and repair.
#[derive(Clone, Debug)]
pub struct SyncEngineCircuit {
    breaker: CircuitBreaker,
}

/// A write that did not happen.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CircuitCallError {
    /// The circuit is open; retry after this long.
    #[error("local store circuit is open")]
    Open(Duration),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] SyncError),
}

impl replication_core::Retriable for CircuitCallError {
    fn is_retriable(&self) -> bool {
        match self {
            CircuitCallError::Open(_) => true,
            CircuitCallError::Store(e) => e.is_retriable(),
        }
    }

    /// An open circuit is waited out rather than spun on.
    fn retry_after(&self) -> Option<Duration> {
        match self {
            CircuitCallError::Open(after) => Some(*after),
            CircuitCallError::Store(_) => None,
        }
    }
}

impl SyncEngineCircuit {
    /// A closed circuit with the given thresholds.
    pub fn new(settings: &SyncEngineSettings) -> Self {
        Self {
            breaker: CircuitBreaker::new(
                settings.circuit_failure_threshold,
                settings.circuit_open_for,
            ),
        }
    }

    /// Current state.
    pub fn state(&self) -> CircuitState {
        self.breaker.state()
    }

    /// Whether writes are failing fast.
    pub fn is_open(&self) -> bool {
        self.breaker.is_open()
    }

    /// Stable name for health output: `closed`, `open` or `half_open`.
    pub fn state_name(&self) -> &'static str {
        match self.state() {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }

    /// Gauge value: 0 closed, 1 half-open, 2 open.
    pub(crate) fn gauge_value(&self) -> f64 {
        match self.state() {
            CircuitState::Closed => 0.0,
            CircuitState::HalfOpen => 1.0,
            CircuitState::Open => 2.0,
        }
    }

    /// Runs one write through the breaker.
    pub(crate) async fn call<T>(
        &self,
        write: impl Future<Output = Result<T, SyncError>>,
    ) -> Result<T, CircuitCallError> {
        let permit = self
            .breaker
            .try_acquire()
            .map_err(|open| CircuitCallError::Open(open.retry_after))?;
        let result = match write.await {
            Ok(value) => {
                permit.success();
                Ok(value)
            }
            Err(e) if e.is_retriable() => {
                permit.failure();
                Err(e.into())
            }
            Err(e) => {
                // The store answered; the input was bad. The store itself is healthy.
                permit.success();
                Err(e.into())
            }
        };
        // Opening and closing happen here; the status sampler catches the timed half-open.
        self.publish();
        result
    }

    /// Sets the `replication_sync_engine_circuit_state` gauge to the state now.
    pub(crate) fn publish(&self) {
        metrics::gauge!(crate::metrics::SYNC_ENGINE_CIRCUIT).set(self.gauge_value());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SyncEngineSettings {
        SyncEngineSettings {
            circuit_failure_threshold: 3,
            circuit_open_for: Duration::from_secs(5),
            ..SyncEngineSettings::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_repeated_failures_and_recovers_after_the_open_period() {
        let circuit = SyncEngineCircuit::new(&settings());
        for _ in 0..3 {
            assert!(matches!(
                circuit
                    .call(async { Err::<(), _>(SyncError::new("down")) })
                    .await,
                Err(CircuitCallError::Store(_))
            ));
        }
        assert_eq!(circuit.state_name(), "open");
        let called = std::sync::atomic::AtomicBool::new(false);
        let rejected = circuit
            .call(async {
                called.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            })
            .await;
        assert!(matches!(rejected, Err(CircuitCallError::Open(_))));
        assert!(
            !called.load(std::sync::atomic::Ordering::SeqCst),
            "open circuit must not call the store"
        );
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(circuit.state_name(), "half_open");
        circuit.call(async { Ok(()) }).await.unwrap();
        assert_eq!(circuit.state_name(), "closed");
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_do_not_open_the_circuit() {
        let circuit = SyncEngineCircuit::new(&settings());
        for _ in 0..10 {
            let _ = circuit
                .call(async { Err::<(), _>(SyncError::permanent("too large")) })
                .await;
        }
        assert_eq!(circuit.state_name(), "closed");
    }
}
