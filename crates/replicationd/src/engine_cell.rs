//! The running engine shared between the signal loop (which shuts it down) and HTTP handlers
//! (which read its health and apply the operator's controls).

use crate::status_model::{now_ms, StatusReport};
use replication_engine::{
    ControlError, HealthCheck, ReplicationEngine, SyncEngineRef, SAMPLE_EVERY,
};
use tokio::sync::RwLock;

/// Gauges the daemon adds to the engine's metrics: peers connected, peers configured, ready.
pub(crate) const DAEMON_GAUGES: [&str; 3] = [
    "replicationd_peers_connected",
    "replicationd_peers_total",
    "replicationd_ready",
];

/// The engine behind a lock: handlers take it shared, shutdown takes it exclusively.
pub(crate) struct EngineCell<S: SyncEngineRef> {
    engine: RwLock<ReplicationEngine<S>>,
    node_id: String,
}

/// An operator control.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Control {
    /// Stop replicating from the peer.
    Pause,
    /// Replicate from the peer again.
    Resume,
    /// Run a repair cycle with the peer now.
    Repair,
}

impl<S: SyncEngineRef> EngineCell<S> {
    pub(crate) fn new(engine: ReplicationEngine<S>) -> Self {
        let node_id = engine.config().local_node_id.clone();
        Self {
            engine: RwLock::new(engine),
            node_id,
        }
    }

    /// Cached health (no network I/O).
    pub(crate) async fn health(&self) -> HealthCheck {
        self.engine.read().await.health_check().await
    }

    /// Health plus history: what the page and `replicationd status` show.
    pub(crate) async fn report(&self) -> StatusReport {
        let engine = self.engine.read().await;
        StatusReport {
            node_id: self.node_id.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            generated_at_ms: now_ms(),
            health: engine.health_check().await,
            history: engine.history(),
            sample_every_secs: SAMPLE_EVERY.as_secs(),
        }
    }

    /// Applies a control to `peer`; `Ok(false)` when it changed nothing (already so).
    pub(crate) async fn control(&self, peer: &str, control: Control) -> Result<bool, ControlError> {
        let engine = self.engine.read().await;
        let peers = engine.peer_manager();
        match control {
            Control::Pause => peers.pause(peer),
            Control::Resume => peers.resume(peer),
            Control::Repair => peers.request_repair(peer).map(|()| true),
        }
    }

    /// Refreshes the daemon's summary gauges before a scrape (the engine keeps its own).
    pub(crate) async fn publish_gauges(&self) {
        let health = self.health().await;
        let [connected, total, ready] = DAEMON_GAUGES;
        metrics::gauge!(connected).set(health.peers_connected as f64);
        metrics::gauge!(total).set(health.peers_total as f64);
        metrics::gauge!(ready).set(if health.ready { 1.0 } else { 0.0 });
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
