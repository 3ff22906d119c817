//! The engine wired over in-memory stores and peers: two nodes replicate each other's
//! concurrent writes and deletes and converge; restart resumes from the cursor.
#![allow(clippy::unwrap_used)]

use replication_engine::{
    EngineState, MemoryCursorStore, PeerConfig, ReplicationEngine, ReplicationEngineConfig,
};
use replication_testkit::{eventually, MemoryMesh, MemoryStore};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

fn config(me: &str, peers: &[&str]) -> ReplicationEngineConfig {
    let mut c = ReplicationEngineConfig::new(me);
    c.peers = peers
        .iter()
        .map(|p| PeerConfig::new(*p, "redis://127.0.0.1:1"))
        .collect();
    c.settings.hot_path.block_timeout = Duration::from_millis(50);
    c.settings.cold_path.interval = Duration::from_millis(300);
    c
}

/// An engine over `store`; cursors in memory unless `config.cursor.sqlite_path` is to be used.
fn engine(
    store: &MemoryStore,
    config: ReplicationEngineConfig,
    mesh: &MemoryMesh,
    cursors: Option<Arc<MemoryCursorStore>>,
) -> (
    ReplicationEngine<MemoryStore>,
    watch::Sender<ReplicationEngineConfig>,
) {
    let (tx, rx) = watch::channel(config.clone());
    let mut builder = ReplicationEngine::builder(config, rx)
        .sync_engine(Arc::new(store.clone()))
        .peer_connector(Arc::new(mesh.connector()));
    if let Some(cursors) = cursors {
        builder = builder.cursor_store(cursors);
    }
    (builder.build(), tx)
}

fn same(a: &MemoryStore, b: &MemoryStore) -> bool {
    a.root() == b.root() && a.items() == b.items()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_converge_under_concurrent_writes_and_deletes() {
    let (a, b) = (MemoryStore::new(), MemoryStore::new());
    let mesh = MemoryMesh::new(&[("a", &a), ("b", &b)]);
    let (mut engine_a, _ta) = engine(
        &a,
        config("a", &["b"]),
        &mesh,
        Some(Arc::new(MemoryCursorStore::new())),
    );
    let (mut engine_b, _tb) = engine(
        &b,
        config("b", &["a"]),
        &mesh,
        Some(Arc::new(MemoryCursorStore::new())),
    );
    engine_a.start().await.unwrap();
    engine_b.start().await.unwrap();
    assert_eq!(engine_a.state(), EngineState::Running);

    for i in 0..300 {
        a.put_local(&format!("a.k{i}"), format!("from a {i}"));
        b.put_local(&format!("b.k{i}"), format!("from b {i}"));
        // Both write the same keys: the conflict order must pick one winner everywhere.
        a.put_local(&format!("shared.k{}", i % 17), format!("a{i}"));
        b.put_local(&format!("shared.k{}", i % 13), format!("b{i}"));
        if i % 10 == 0 {
            a.delete_local(&format!("a.k{}", i / 2));
        }
        if i % 50 == 0 {
            tokio::task::yield_now().await;
        }
    }
    eventually("both nodes hold the same items", || same(&a, &b)).await;
    assert!(a.item("a.k0").is_none(), "a local delete stays deleted");
    assert!(b.item("a.k0").is_none(), "and is replicated");
    assert!(b.tombstone("a.k0").is_some(), "with its tombstone");
    assert_eq!(a.items().len(), b.items().len());

    let health = engine_b.health_check().await;
    assert!(health.ready, "{health:?}");
    assert_eq!(health.peers_total, 1);

    engine_a.shutdown().await;
    engine_b.shutdown().await;
    assert_eq!(engine_b.state(), EngineState::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_from_the_checkpointed_cursor() {
    let (a, b) = (MemoryStore::new(), MemoryStore::new());
    let mesh = MemoryMesh::new(&[("a", &a)]);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config("b", &["a"]);
    cfg.settings.cold_path.enabled = false;
    cfg.cursor.sqlite_path = dir.path().join("cursors.db");
    for i in 0..200 {
        a.put_local(&format!("k.{i}"), format!("v{i}"));
    }
    let (mut first, _t1) = engine(&b, cfg.clone(), &mesh, None);
    first.start().await.unwrap();
    eventually("the first 200 arrive", || b.len() == 200).await;
    first.shutdown().await;

    b.reset_counters();
    for i in 200..300 {
        a.put_local(&format!("k.{i}"), format!("v{i}"));
    }
    let (mut second, _t2) = engine(&b, cfg, &mesh, None);
    second.start().await.unwrap();
    eventually("the next 100 arrive", || b.len() == 300).await;
    second.shutdown().await;
    // Only the 100 new entries were read and applied: nothing checkpointed was replayed.
    assert_eq!(
        mesh.latest_peer()
            .map_or(0, |p| p.counters().entries_returned),
        100
    );
    assert_eq!(b.counters().changes_applied, 100, "{:?}", b.counters());
}
