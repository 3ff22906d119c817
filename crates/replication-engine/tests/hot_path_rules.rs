//! Rules of the hot path over in-memory stores and peers (no Redis): the cursor never
//! passes what the store did not apply, a store without `local_states` is read through its
//! tree, and echoes are dropped without looping.
#![allow(clippy::unwrap_used)]

mod common;

use common::{config, engine, engine_with, Engine, RecordingCursors};
use replication_engine::{ReplicationEngine, StreamId};
use replication_testkit::{eventually, MemoryMesh, MemoryStore, MinimalStore};
use std::sync::Arc;
use tokio::sync::watch;
#[tokio::test(start_paused = true)]
async fn the_cursor_never_passes_entries_the_store_did_not_apply() {
    let (a, me) = (MemoryStore::new(), MemoryStore::new());
    let mesh = MemoryMesh::new(&[("a", &a)]);
    for i in 0..10 {
        a.put_local(&format!("first.{i}"), "v");
    }
    let first_batch_end = a.last_stream_id();
    let recording = Arc::new(RecordingCursors::default());
    let (mut engine, _tx) = engine_with(
        &me,
        config("me", &["a"]),
        Arc::new(mesh.connector()),
        recording.clone(),
    );
    engine.start().await.unwrap();
    eventually("the first entries are applied and checkpointed", || {
        recording.max_set("a") == Some(first_batch_end)
    })
    .await;

    me.set_failing_writes(true);
    for i in 0..10 {
        a.put_local(&format!("second.{i}"), "v");
    }
    a.delete_local("first.0");
    let failed_before = me.counters().failed_calls;
    eventually("the store has refused several retries", || {
        me.counters().failed_calls > failed_before + 3
    })
    .await;
    assert_eq!(
        recording.max_set("a"),
        Some(first_batch_end),
        "cursor moved past unapplied entries"
    );
    assert!(me.item("second.0").is_none());

    me.set_failing_writes(false);
    eventually("everything is applied and checkpointed", || {
        recording.max_set("a") == Some(a.last_stream_id())
    })
    .await;
    for i in 0..10 {
        assert!(
            me.item(&format!("second.{i}")).is_some(),
            "second.{i} was skipped"
        );
    }
    assert!(me.item("first.0").is_none() && me.tombstone("first.0").is_some());
    // Every cursor ever set is the end of a batch whose entries were all applied.
    let sets = recording.sets();
    assert!(
        sets.windows(2).all(|w| w[0].stream_id <= w[1].stream_id),
        "{sets:?}"
    );
    engine.shutdown().await;
}

/// A store without `local_states` (the trait default): its tree and content tell what it
/// holds, several events for one key fold to one change, and the engine never calls
/// `delete` (only the replicated writes).
#[tokio::test(start_paused = true)]
async fn a_store_without_local_states_is_read_through_its_tree_and_events_fold() {
    let peer_store = MemoryStore::new();
    peer_store.put_local("held", "same");
    peer_store.put_local("new", "v1");
    peer_store.put_local("new", "v2");
    peer_store.put_local("new", "v3");
    peer_store.put_local("gone", "x");
    peer_store.delete_local("gone");
    let me = MinimalStore::new(MemoryStore::new());
    me.inner()
        .apply_change(replication_engine::Change::Put(
            peer_store.item("held").unwrap(),
        ))
        .unwrap();
    me.inner().reset_counters();

    let mesh = MemoryMesh::new(&[("a", &peer_store)]);
    let mut cfg = config("me", &["a"]);
    cfg.settings.cold_path.enabled = false;
    let cursors = Arc::new(RecordingCursors::default());
    let (tx, rx) = watch::channel(cfg.clone());
    let mut engine = ReplicationEngine::builder(cfg, rx)
        .sync_engine(Arc::new(me.clone()))
        .peer_connector(Arc::new(mesh.connector()))
        .cursor_store(cursors.clone())
        .build();
    engine.start().await.unwrap();
    eventually("the batch is applied", || {
        cursors.max_set("a") == Some(peer_store.last_stream_id())
    })
    .await;
    engine.shutdown().await;
    drop(tx);
    let counters = me.inner().counters();
    assert_eq!(
        counters.submits, 1,
        "held is current; new folded to one change: {counters:?}"
    );
    assert_eq!(
        me.inner().item("new"),
        peer_store.item("new"),
        "the last event wins"
    );
    assert_eq!(
        counters.replicated_deletes, 1,
        "gone's put and delete fold to the delete"
    );
    assert_eq!(counters.deletes, 0, "the engine never calls delete");
    assert!(me.inner().item("gone").is_none());
}

#[tokio::test(start_paused = true)]
async fn echoes_from_a_sync_engine_like_peer_are_dropped_and_do_not_loop() {
    let (a, b) = (MemoryStore::new(), MemoryStore::new());
    // Both stores append replicated puts to their own stream, as sync-engine's submit does.
    a.set_echo_replicated_puts(true);
    b.set_echo_replicated_puts(true);
    let mesh = MemoryMesh::new(&[("a", &a), ("b", &b)]);
    let (mut ea, _ta) = engine(&a, config("a", &["b"]), &mesh);
    let (mut eb, _tb) = engine(&b, config("b", &["a"]), &mesh);
    ea.start().await.unwrap();
    eb.start().await.unwrap();
    for i in 0..50 {
        a.put_local(&format!("k{i}"), format!("v{i}"));
    }
    a.delete_local("k0");
    let a_end = a.last_stream_id();
    eventually("b holds a's items", || {
        b.len() == 49 && b.tombstone("k0").is_some()
    })
    .await;
    // b echoed each put into its stream; a reads them back and must drop every one.
    let b_end = b.last_stream_id();
    assert!(b_end > StreamId::ZERO, "the store under test echoes");
    let cursor_of = |e: &Engine, peer: &str| {
        e.peer_manager()
            .health()
            .into_iter()
            .find(|p| p.node_id == peer)
            .and_then(|p| p.cursor)
    };
    eventually("a has read b's echoes", || {
        cursor_of(&ea, "b") == Some(b_end.to_string())
    })
    .await;
    assert_eq!(
        a.counters().changes_applied,
        0,
        "an echo was re-applied: {:?}",
        a.counters()
    );
    assert_eq!(
        a.last_stream_id(),
        a_end,
        "a's stream grew: the echo looped"
    );
    eventually("b has read a's whole stream", || {
        cursor_of(&eb, "a") == Some(a_end.to_string())
    })
    .await;
    assert_eq!(b.last_stream_id(), b_end, "b's stream grew again");
    assert_eq!(
        a.counters().deletes + b.counters().deletes,
        0,
        "the engine never calls delete"
    );
    ea.shutdown().await;
    eb.shutdown().await;
}
