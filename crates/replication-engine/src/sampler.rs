//! The status sampler: every [`SAMPLE_EVERY`] while the engine runs, it adds a sample to
//! each peer's history (lag, applied rate: the status page's sparkline) and publishes the
//! gauges derived from cached state (connection, circuit, pause, failovers, local-store
//! circuit), so they are current whether or not anyone calls `health_check()` (which
//! publishes them too, from what it reports).

use crate::circuit::SyncEngineCircuit;
use crate::health::PeerHealth;
use crate::metrics::{PeerMetrics, SYNC_ENGINE_FAILOVERS};
use crate::peer_manager::PeerManager;
use crate::stop::Stop;
use replication_core::SyncEngineRef;
use std::sync::Arc;
use std::time::Duration;

/// Time between two samples; with `status::HISTORY_LEN` samples kept, five minutes.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(2);

/// Samples until stopped.
pub(crate) async fn run<S: SyncEngineRef>(
    manager: Arc<PeerManager>,
    circuit: SyncEngineCircuit,
    store: Arc<S>,
    mut stop: Stop,
) {
    let mut ticks = tokio::time::interval(SAMPLE_EVERY);
    // A stalled runtime must not make up for lost ticks with a burst of samples.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.stopped() => return,
            _ = ticks.tick() => {
                manager.sample_all(crate::clock::now_ms());
                let store_failovers = store.connection().map_or(0, |c| c.failovers);
                publish(&circuit, &manager.health(), store_failovers);
            }
        }
    }
}

/// Publishes the gauges and connection counters of the engine's cached state.
pub(crate) fn publish(circuit: &SyncEngineCircuit, peers: &[PeerHealth], store_failovers: u64) {
    circuit.publish();
    metrics::counter!(SYNC_ENGINE_FAILOVERS).absolute(store_failovers);
    // A disabled peer is idle on purpose: a "not connected" gauge would page someone.
    for peer in peers.iter().filter(|p| p.enabled) {
        PeerMetrics::publish_connection(peer);
    }
}
