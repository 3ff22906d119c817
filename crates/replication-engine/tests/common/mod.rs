//! Helpers shared by the engine's integration tests: an in-memory mesh connector, a
//! recording cursor store, polling with a deadline and metric lookups.
#![allow(dead_code, clippy::unwrap_used)]

use async_trait::async_trait;
use metrics_util::debugging::{DebugValue, Snapshotter};
use replication_engine::{
    Cursor, CursorError, CursorStore, MemoryCursorStore, PeerBackend, PeerConfig, PeerConnector,
    PeerError, ReplicationEngineConfig, Settings, StreamId,
};
use replication_testkit::{MemoryPeer, MemoryStore};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One call of the connector: the config it got and the backend it made.
type Connect = (PeerConfig, Arc<MemoryPeer>);

/// Node stores by id. Each connect makes a fresh in-memory peer over the store (as the
/// Redis connector makes fresh connections); every connect is recorded.
#[derive(Clone, Default)]
pub(crate) struct Mesh {
    stores: Arc<Mutex<HashMap<String, MemoryStore>>>,
    connects: Arc<Mutex<Vec<Connect>>>,
}

impl Mesh {
    pub(crate) fn new(stores: &[(&str, &MemoryStore)]) -> Self {
        let mesh = Self::default();
        for (id, store) in stores {
            mesh.add(id, store);
        }
        mesh
    }

    pub(crate) fn add(&self, id: &str, store: &MemoryStore) {
        self.stores
            .lock()
            .unwrap()
            .insert(id.to_owned(), store.clone());
    }

    pub(crate) fn connector(&self) -> Arc<dyn PeerConnector> {
        let mesh = self.clone();
        Arc::new(move |peer: &PeerConfig, _: &Settings| {
            let store = mesh
                .stores
                .lock()
                .unwrap()
                .get(&peer.node_id)
                .cloned()
                .ok_or_else(|| PeerError::Closed {
                    peer: peer.node_id.clone(),
                })?;
            let backend = Arc::new(MemoryPeer::new(peer.node_id.clone(), store));
            mesh.connects
                .lock()
                .unwrap()
                .push((peer.clone(), backend.clone()));
            Ok(backend as Arc<dyn PeerBackend>)
        })
    }

    /// How many times the connector was called for `id`.
    pub(crate) fn connects(&self, id: &str) -> usize {
        self.connects
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.node_id == id)
            .count()
    }

    /// The latest connect of `id`: the config it used and the backend it made.
    fn last_connect(&self, id: &str) -> Option<(PeerConfig, Arc<MemoryPeer>)> {
        self.connects
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|(p, _)| p.node_id == id)
            .cloned()
    }

    /// The config the latest connect of `id` used.
    pub(crate) fn last_config(&self, id: &str) -> Option<PeerConfig> {
        self.last_connect(id).map(|(config, _)| config)
    }

    /// The backend of the latest connect of `id`.
    pub(crate) fn last_peer(&self, id: &str) -> Option<Arc<MemoryPeer>> {
        self.last_connect(id).map(|(_, peer)| peer)
    }
}

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

/// Polls `check` until it holds; fails after 20 s (of tokio time).
pub(crate) async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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

/// Metrics seen by a `DebuggingRecorder`. Its snapshots drain counters, so counts are
/// accumulated here; gauges keep the value of the latest snapshot that saw them set.
pub(crate) struct Recorded {
    snapshotter: Snapshotter,
    counters: Mutex<HashMap<Series, u64>>,
    gauges: Mutex<HashMap<Series, f64>>,
}

type Series = (String, Vec<(String, String)>);

impl Recorded {
    pub(crate) fn new(snapshotter: Snapshotter) -> Self {
        Self {
            snapshotter,
            counters: Mutex::default(),
            gauges: Mutex::default(),
        }
    }

    fn refresh(&self) {
        let mut counters = self.counters.lock().unwrap();
        let mut gauges = self.gauges.lock().unwrap();
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let key = key.key();
            let series = (
                key.name().to_owned(),
                key.labels()
                    .map(|l| (l.key().to_owned(), l.value().to_owned()))
                    .collect(),
            );
            match value {
                DebugValue::Counter(n) => *counters.entry(series).or_default() += n,
                DebugValue::Gauge(g) => {
                    gauges.insert(series, g.into_inner());
                }
                DebugValue::Histogram(_) => {}
            }
        }
    }

    fn matching<T: Copy>(map: &HashMap<Series, T>, name: &str, labels: &[(&str, &str)]) -> Vec<T> {
        map.iter()
            .filter(|((n, l), _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, v)| *v)
            .collect()
    }

    /// Total of counter `name` over every series whose labels include `labels`.
    pub(crate) fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.refresh();
        Self::matching(&self.counters.lock().unwrap(), name, labels)
            .into_iter()
            .sum()
    }

    /// Latest value of gauge `name` with `labels`.
    pub(crate) fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.refresh();
        Self::matching(&self.gauges.lock().unwrap(), name, labels)
            .into_iter()
            .next()
    }
}
