//! The running engine shared between the signal loop (which shuts it down) and HTTP handlers
//! (which read its health).

use replication_engine::{HealthCheck, ReplicationEngine, SyncEngineRef};
use tokio::sync::RwLock;

/// The engine behind a lock: handlers take it shared, shutdown takes it exclusively.
pub(crate) struct EngineCell<S: SyncEngineRef> {
    engine: RwLock<ReplicationEngine<S>>,
}

impl<S: SyncEngineRef> EngineCell<S> {
    pub(crate) fn new(engine: ReplicationEngine<S>) -> Self {
        Self {
            engine: RwLock::new(engine),
        }
    }

    /// Cached health (no network I/O).
    pub(crate) async fn health(&self) -> HealthCheck {
        self.engine.read().await.health_check().await
    }

    /// Refreshes gauges derived from health before a scrape.
    pub(crate) async fn publish_gauges(&self) {
        let health = self.health().await;
        metrics::gauge!("replicationd_peers_connected").set(health.peers_connected as f64);
        metrics::gauge!("replicationd_peers_total").set(health.peers_total as f64);
        metrics::gauge!("replicationd_ready").set(if health.ready { 1.0 } else { 0.0 });
    }

    /// Starts the engine.
    pub(crate) async fn start(&self) -> replication_engine::Result<()> {
        self.engine.write().await.start().await
    }

    /// Graceful shutdown.
    pub(crate) async fn shutdown(&self) {
        self.engine.write().await.shutdown().await;
    }
}
