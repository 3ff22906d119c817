//! Backpressure: whether the store wants replicated writes right now.
//!
//! The policy is deliberately simple and costs an atomic load: after a write fails because
//! the node's Redis is unreachable or refuses writes (out of memory, a read-only replica,
//! too few replicas, disk trouble), the store refuses writes (`should_accept_writes` is
//! false) until a background probe write succeeds or a later write goes through. The
//! engine then stops feeding a store that cannot take writes, instead of piling up retries.
//!
//! The probe is `SET {prefix}store:probe 1 XX`: a write command, so Redis refuses it for
//! every reason it refuses our commits (a `PING` answers on a full or read-only server),
//! yet a no-op, since that key never exists (`XX` sets only an existing key).

use fred::prelude::{Client, KeysInterface};
use fred::types::SetOptions;
use replication_core::RetryPolicy;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug)]
pub(crate) struct Health {
    accepting: AtomicBool,
    probing: AtomicBool,
    closed: AtomicBool,
}

impl Health {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            accepting: AtomicBool::new(true),
            probing: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        })
    }

    pub(crate) fn accepting(&self) -> bool {
        self.accepting.load(Ordering::Relaxed)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    /// A write went through.
    pub(crate) fn record_success(&self) {
        self.accepting.store(true, Ordering::Relaxed);
    }

    /// The store could not take a write: refuse writes and probe, writing to `probe_key`,
    /// until it takes one again.
    pub(crate) fn record_refused(self: &Arc<Self>, client: &Client, probe_key: &str) {
        self.accepting.store(false, Ordering::Relaxed);
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let health = Arc::clone(self);
        let client = client.clone();
        let probe_key = probe_key.to_owned();
        tokio::spawn(async move {
            let mut backoff =
                RetryPolicy::new(Duration::from_millis(50), Duration::from_secs(5)).backoff();
            while !health.is_closed() && !health.accepting() {
                let probe: Result<(), _> = client
                    .set(&probe_key, 1, None, Some(SetOptions::XX), false)
                    .await;
                if probe.is_ok() {
                    health.record_success();
                    break;
                }
                // Unbounded policy: a delay always comes.
                let delay = backoff.next_delay().unwrap_or(Duration::from_secs(5));
                tokio::time::sleep(delay).await;
            }
            health.probing.store(false, Ordering::Release);
        });
    }
}
