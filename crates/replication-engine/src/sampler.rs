//! The status sampler: every [`SAMPLE_EVERY`] while the engine runs, it adds a sample to
//! each peer's history (lag, applied rate: the status page's sparkline) and publishes the
//! gauges derived from cached state (connection, circuit, pause, local-store circuit), so
//! they are current whether or not anyone calls `health_check()`.

use crate::circuit::SyncEngineCircuit;
use crate::metrics::PeerMetrics;
use crate::peer_manager::PeerManager;
use crate::stop::Stop;
use std::sync::Arc;
use std::time::Duration;

/// Time between two samples; with `status::HISTORY_LEN` samples kept, five minutes.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(2);

/// Samples until stopped.
pub(crate) async fn run(manager: Arc<PeerManager>, circuit: SyncEngineCircuit, mut stop: Stop) {
    let mut ticks = tokio::time::interval(SAMPLE_EVERY);
    // A stalled runtime must not make up for lost ticks with a burst of samples.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.stopped() => return,
            _ = ticks.tick() => sample(&manager, &circuit),
        }
    }
}

fn sample(manager: &PeerManager, circuit: &SyncEngineCircuit) {
    manager.sample_all(crate::clock::now_ms());
    circuit.publish();
    // A disabled peer is idle on purpose: a "not connected" gauge would page someone.
    for peer in manager.health().iter().filter(|p| p.enabled) {
        PeerMetrics::publish_connection(peer);
    }
}
