//! Backpressure: whether the store wants replicated writes right now.
//!
//! The policy is deliberately simple and costs an atomic load: after a write fails because
//! the node's Redis is unreachable, the store refuses writes (`should_accept_writes` is
//! false) until a background probe's `PING` succeeds or a later write goes through. The
//! engine then stops feeding a store that cannot take writes, instead of piling up retries.

use fred::prelude::{Client, ClientLike};
use replication_core::Backoff;
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

    /// The store could not be reached: refuse writes and probe until it answers again.
    pub(crate) fn record_unreachable(self: &Arc<Self>, client: &Client) {
        self.accepting.store(false, Ordering::Relaxed);
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let health = Arc::clone(self);
        let client = client.clone();
        tokio::spawn(async move {
            let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(5));
            while !health.is_closed() && !health.accepting() {
                if client.ping::<()>(None).await.is_ok() {
                    health.record_success();
                    break;
                }
                tokio::time::sleep(backoff.next_delay(rand::random())).await;
            }
            health.probing.store(false, Ordering::Release);
        });
    }
}
