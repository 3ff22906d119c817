//! Helpers only the engine's integration tests share: a config for in-memory peers, an
//! engine over an in-memory store and mesh, and a recording cursor store. What other crates' tests need too (the in-memory mesh,
//! waiting on a condition, metric lookups) lives in `replication-testkit`.
#![allow(dead_code, clippy::unwrap_used)]

use async_trait::async_trait;
use metrics_util::debugging::DebuggingRecorder;
use replication_engine::{
    Cursor, CursorError, CursorStore, MemoryCursorStore, PeerConfig, PeerConnector,
    ReplicationEngine, ReplicationEngineConfig, StreamId, SyncEngineRef,
};
use replication_node::{NodeStore, NodeStoreConfig};
use replication_testkit::{MemoryMesh, MemoryStore, Recorded, RedisServer};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// A config for node `me` with in-memory peers (their URLs are never dialled), small
/// timeouts, and periodic repair effectively off (tests that need it set it).
pub(crate) fn config(me: &str, peers: &[&str]) -> ReplicationEngineConfig {
    let mut c = ReplicationEngineConfig::new(me);
    c.peers = peers
        .iter()
        .map(|p| PeerConfig::new(*p, "redis://127.0.0.1:1"))
        .collect();
    c.settings.hot_path.block_timeout = Duration::from_millis(50);
    c.settings.cold_path.interval = Duration::from_secs(3600);
    c.settings.shutdown_timeout = Duration::from_secs(5);
    c.settings.sync_engine.retry_initial_delay = Duration::from_millis(10);
    c.settings.sync_engine.retry_max_delay = Duration::from_millis(100);
    c
}

/// A cursor store that records every `set`, over a `MemoryCursorStore`.
#[derive(Default)]
pub(crate) struct RecordingCursors {
    inner: MemoryCursorStore,
    sets: Mutex<Vec<Cursor>>,
}

impl RecordingCursors {
    pub(crate) fn sets(&self) -> Vec<Cursor> {
        self.sets.lock().unwrap().clone()
    }

    /// The highest cursor ever set for `peer`.
    pub(crate) fn max_set(&self, peer: &str) -> Option<StreamId> {
        self.sets()
            .into_iter()
            .filter(|c| c.peer_id == peer)
            .map(|c| c.stream_id)
            .max()
    }
}

#[async_trait]
impl CursorStore for RecordingCursors {
    async fn load_all(&self) -> Result<Vec<Cursor>, CursorError> {
        self.inner.load_all().await
    }
    async fn set(&self, cursor: Cursor) -> Result<(), CursorError> {
        self.sets.lock().unwrap().push(cursor.clone());
        self.inner.set(cursor).await
    }
    async fn flush(&self) -> Result<(), CursorError> {
        self.inner.flush().await
    }
    async fn close(&self) -> Result<(), CursorError> {
        self.inner.close().await
    }
}

/// The engine over an in-memory store.
pub(crate) type Engine = ReplicationEngine<MemoryStore>;

/// An engine over `store` with these backends, and its config sender.
pub(crate) fn engine_with(
    store: &MemoryStore,
    config: ReplicationEngineConfig,
    connector: Arc<dyn PeerConnector>,
    cursors: Arc<dyn CursorStore>,
) -> (Engine, watch::Sender<ReplicationEngineConfig>) {
    let (tx, rx) = watch::channel(config.clone());
    let engine = ReplicationEngine::builder(config, rx)
        .sync_engine(Arc::new(store.clone()))
        .peer_connector(connector)
        .cursor_store(cursors)
        .build();
    (engine, tx)
}

/// An engine over `store` whose peers are `mesh`, with in-memory cursors.
pub(crate) fn engine(
    store: &MemoryStore,
    config: ReplicationEngineConfig,
    mesh: &MemoryMesh,
) -> (Engine, watch::Sender<ReplicationEngineConfig>) {
    engine_with(
        store,
        config,
        Arc::new(mesh.connector()),
        Arc::new(MemoryCursorStore::new()),
    )
}

/// A started engine over `store` whose peers are reached by the default (Redis)
/// connector, with in-memory cursors; its config never changes.
pub(crate) async fn started_on_redis<S: SyncEngineRef>(
    store: Arc<S>,
    config: ReplicationEngineConfig,
) -> ReplicationEngine<S> {
    let (_tx, rx) = watch::channel(config.clone());
    let mut engine = ReplicationEngine::builder(config, rx)
        .sync_engine(store)
        .cursor_store(Arc::new(MemoryCursorStore::new()))
        .build();
    engine.start().await.unwrap();
    engine
}

/// A node store on `server` under `prefix`.
pub(crate) async fn node_store(server: &RedisServer, prefix: &str) -> NodeStore {
    NodeStore::connect(NodeStoreConfig::new(server.url()).with_prefix(prefix))
        .await
        .unwrap()
}

/// A debugging recorder (to install) and what it records.
pub(crate) fn recorder() -> (DebuggingRecorder, Recorded) {
    let recorder = DebuggingRecorder::new();
    let recorded = Recorded::new(recorder.snapshotter());
    (recorder, recorded)
}
