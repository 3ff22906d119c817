//! Applying resolved changes to the local store: through the circuit, retried with capped
//! backoff until they land or the shutdown's drain deadline passes. Never skipped
//! silently: a change is either applied, or rejected by the store as permanently bad
//! (counted and logged), or the batch is abandoned at the drain deadline with its cursor
//! not advanced.

use crate::circuit::{CircuitCallError, SyncEngineCircuit};
use crate::metrics::PeerMetrics;
use crate::stop::Stop;
use crate::write_gate::WriteGate;
use replication_core::{Change, Next, RetryPolicy, SyncEngineRef, SyncEngineSettings, SyncError};

/// The engine is stopping; the batch was not (fully) applied.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Stopped;

/// What happened to a batch of changes.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Applied {
    /// Changes the store accepted.
    pub(crate) applied: u64,
    /// Changes the store refused as permanently bad.
    pub(crate) refused: u64,
}

/// Applies `changes` as one batch; retriable failures are retried, a permanent failure
/// makes each change be tried alone so one bad change cannot block the others.
pub(crate) async fn apply_changes<S: SyncEngineRef>(
    store: &S,
    gate: &WriteGate,
    circuit: &SyncEngineCircuit,
    settings: &SyncEngineSettings,
    metrics: &PeerMetrics,
    changes: Vec<Change>,
    stop: &mut Stop,
) -> Result<Applied, Stopped> {
    if changes.is_empty() {
        return Ok(Applied::default());
    }
    let count = changes.len() as u64;
    match write_with_retry(store, gate, circuit, settings, metrics, &changes, stop).await? {
        Ok(()) => Ok(Applied {
            applied: count,
            refused: 0,
        }),
        Err(_) => {
            let mut outcome = Applied::default();
            for change in changes {
                let single = [change];
                match write_with_retry(store, gate, circuit, settings, metrics, &single, stop)
                    .await?
                {
                    Ok(()) => outcome.applied += 1,
                    Err(e) => {
                        let [change] = single;
                        tracing::error!(key = %change.key(), error = %e, "local store refused a change; skipped");
                        metrics.rejected("store_refused");
                        outcome.refused += 1;
                    }
                }
            }
            Ok(outcome)
        }
    }
}

/// One batch write, retried while the failure is retriable (an open circuit is waited
/// out); the policy is `settings.sync_engine`'s. `Ok(Err(e))` is a permanent refusal.
async fn write_with_retry<S: SyncEngineRef>(
    store: &S,
    gate: &WriteGate,
    circuit: &SyncEngineCircuit,
    settings: &SyncEngineSettings,
    metrics: &PeerMetrics,
    changes: &[Change],
    stop: &mut Stop,
) -> Result<Result<(), SyncError>, Stopped> {
    let mut backoff = retry_policy(settings).backoff();
    loop {
        // No stop check before the attempt: a batch in flight when shutdown begins gets its
        // write, and its retries, until the drain deadline (`settings.shutdown_timeout`).
        let error = match circuit.call(gate.apply(store, changes.to_vec())).await {
            Ok(()) => return Ok(Ok(())),
            Err(error) => error,
        };
        let delay = match (backoff.next(&error), error) {
            (Next::Retry(delay), CircuitCallError::Store(e)) => {
                tracing::warn!(error = %e, attempt = backoff.attempts(), "local store write failed; retrying");
                delay
            }
            (Next::Retry(delay), CircuitCallError::Open(_)) => delay,
            (Next::Permanent | Next::Exhausted, CircuitCallError::Store(e)) => return Ok(Err(e)),
            (Next::Permanent | Next::Exhausted, CircuitCallError::Open(after)) => {
                return Ok(Err(SyncError::new(format!(
                    "local store circuit is open (retry in {after:?})"
                ))))
            }
        };
        metrics.apply_retries.increment(1);
        if !stop.sleep_in_flight(delay).await {
            return Err(Stopped);
        }
    }
}

/// The retry policy of local-store calls: `settings.sync_engine`'s delays, unbounded (the
/// caller's drain deadline ends it).
pub(crate) fn retry_policy(settings: &SyncEngineSettings) -> RetryPolicy {
    RetryPolicy::new(settings.retry_initial_delay, settings.retry_max_delay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stop::StopSwitch;
    use replication_core::mocks::MockSyncEngineRef;
    use replication_core::SyncItem;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    fn settings() -> SyncEngineSettings {
        SyncEngineSettings {
            circuit_failure_threshold: 3,
            circuit_open_for: Duration::from_secs(2),
            retry_initial_delay: Duration::from_millis(10),
            retry_max_delay: Duration::from_millis(100),
        }
    }

    /// A mock store that describes every key (absent), as a store with `local_states`
    /// does: the write gate then leaves the judging to its `apply_batch`.
    fn answering() -> MockSyncEngineRef {
        let mut store = MockSyncEngineRef::new();
        store.expect_local_states().returning(|keys| {
            let states = vec![Some(replication_core::LocalState::Absent); keys.len()];
            Box::pin(async move { Ok(states) })
        });
        store
    }

    fn put(key: &str) -> Change {
        Change::Put(SyncItem::new(key, b"v".to_vec(), 1, 1))
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_until_applied() {
        let calls = Arc::new(AtomicU32::new(0));
        let mut store = answering();
        let seen = calls.clone();
        store.expect_apply_batch().returning(move |changes| {
            assert_eq!(changes.len(), 2);
            // Counted when awaited: an open circuit builds the write future but drops it.
            let seen = seen.clone();
            Box::pin(async move {
                let n = seen.fetch_add(1, Ordering::SeqCst);
                if n < 5 {
                    Err(SyncError::new("busy"))
                } else {
                    Ok(())
                }
            })
        });
        let circuit = SyncEngineCircuit::new(&settings());
        let (_switch, mut stop) = StopSwitch::new();
        let out = apply_changes(
            &store,
            &WriteGate::default(),
            &circuit,
            &settings(),
            &PeerMetrics::new("p"),
            vec![put("a"), put("b")],
            &mut stop,
        )
        .await
        .unwrap();
        assert_eq!(
            out,
            Applied {
                applied: 2,
                refused: 0
            }
        );
        // Five failures opened the circuit on the way; it recovered and the write landed.
        assert_eq!(calls.load(Ordering::SeqCst), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanently_bad_change_is_isolated_and_the_rest_applied() {
        let mut store = answering();
        store.expect_apply_batch().returning(|changes| {
            let bad = changes.iter().any(|c| c.key() == "bad");
            Box::pin(async move {
                if bad {
                    Err(SyncError::permanent("too large"))
                } else {
                    Ok(())
                }
            })
        });
        let circuit = SyncEngineCircuit::new(&settings());
        let (_switch, mut stop) = StopSwitch::new();
        let out = apply_changes(
            &store,
            &WriteGate::default(),
            &circuit,
            &settings(),
            &PeerMetrics::new("p"),
            vec![put("a"), put("bad"), put("c")],
            &mut stop,
        )
        .await
        .unwrap();
        assert_eq!(
            out,
            Applied {
                applied: 2,
                refused: 1
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn stopping_abandons_a_failing_batch_at_the_drain_deadline() {
        let mut store = answering();
        store
            .expect_apply_batch()
            .returning(|_| Box::pin(async { Err(SyncError::new("down")) }));
        let circuit = SyncEngineCircuit::new(&settings());
        let (switch, mut stop) = StopSwitch::new();
        let task = tokio::spawn(async move {
            apply_changes(
                &store,
                &WriteGate::default(),
                &circuit,
                &settings(),
                &PeerMetrics::new("p"),
                vec![put("a")],
                &mut stop,
            )
            .await
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        let stopped_at = tokio::time::Instant::now();
        switch.stop_draining(stopped_at + Duration::from_secs(2));
        assert_eq!(task.await.unwrap(), Err(Stopped));
        let drained = stopped_at.elapsed();
        assert!(
            drained > Duration::from_secs(1) && drained <= Duration::from_secs(2),
            "retried until the deadline, not past it: {drained:?}"
        );
    }
}
