//! A failover of a peer's Redis or of the local store's shows in health and metrics: the
//! server holding the data now and how often it changed, straight from the backends'
//! cached connection facts (no I/O).
#![allow(clippy::unwrap_used)]

mod common;

use common::config;
use metrics_util::debugging::DebuggingRecorder;
use replication_core::mocks::MockPeerBackend;
use replication_core::{ConnectionState, ConnectionStatus};
use replication_cursor::MemoryCursorStore;
use replication_engine::metrics as names;
use replication_engine::{PeerBackend, PeerConfig, ReplicationEngine, Settings};
use replication_testkit::{MemoryStore, Recorded};
use std::sync::Arc;
use tokio::sync::watch;

fn failed_over_peer(
    peer: &PeerConfig,
    _: &Settings,
) -> Result<Arc<dyn PeerBackend>, replication_engine::PeerError> {
    let mut mock = MockPeerBackend::new();
    mock.expect_node_id().return_const(peer.node_id.clone());
    mock.expect_connection().returning(|| ConnectionStatus {
        state: ConnectionState::Connected,
        reconnects: 3,
        server: Some("10.0.0.2:6379".into()),
        failovers: 2,
        ..ConnectionStatus::default()
    });
    mock.expect_close().returning(|| ());
    Ok(Arc::new(mock))
}

#[tokio::test]
async fn failovers_of_peers_and_of_the_store_show_in_health_and_metrics() {
    let recorder = DebuggingRecorder::new();
    let recorded = Recorded::new(recorder.snapshotter());
    let _guard = metrics::set_default_local_recorder(&recorder);
    // A store that holds nothing and reports the server its data lives on.
    let store = MemoryStore::new();
    store.set_connection(Some(ConnectionStatus {
        state: ConnectionState::Connected,
        server: Some("10.0.0.9:6379".into()),
        failovers: 1,
        ..ConnectionStatus::default()
    }));
    let mut cfg = config("me", &["a"]);
    cfg.settings.hot_path.enabled = false;
    cfg.settings.cold_path.enabled = false;
    let (_tx, rx) = watch::channel(cfg.clone());
    let mut engine = ReplicationEngine::builder(cfg, rx)
        .sync_engine(Arc::new(store))
        .peer_connector(Arc::new(failed_over_peer))
        .cursor_store(Arc::new(MemoryCursorStore::new()))
        .build();
    engine.start().await.unwrap();
    let health = engine.health_check().await;
    let peer = &health.peers[0];
    assert_eq!(peer.server.as_deref(), Some("10.0.0.2:6379"));
    assert_eq!((peer.failovers, peer.reconnects), (2, 3));
    assert_eq!(health.sync_engine_server.as_deref(), Some("10.0.0.9:6379"));
    assert_eq!(health.sync_engine_failovers, 1);
    let json = serde_json::to_value(&health).unwrap();
    assert_eq!(json["peers"][0]["failovers"], 2);
    assert_eq!(json["sync_engine_failovers"], 1);
    assert_eq!(recorded.counter(names::PEER_FAILOVERS, &[("peer", "a")]), 2);
    assert_eq!(
        recorded.counter(names::PEER_RECONNECTS, &[("peer", "a")]),
        3
    );
    assert_eq!(recorded.counter(names::SYNC_ENGINE_FAILOVERS, &[]), 1);
    engine.shutdown().await;
}
