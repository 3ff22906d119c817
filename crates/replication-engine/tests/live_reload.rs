//! Live config reload over in-memory stores and peers (no Redis): peers added, removed,
//! reconnected and retuned; a new batch size applies to the next reads; a dropped config
//! sender does not stop replication.
#![allow(clippy::unwrap_used)]

mod common;

use common::{config, engine, engine_with, RecordingCursors};
use replication_engine::PeerConfig;
use replication_testkit::{eventually, MemoryMesh, MemoryStore};
use std::sync::Arc;
use std::time::Duration;
#[tokio::test(start_paused = true)]
async fn reload_adds_removes_reconnects_and_retunes_peers() {
    let (a, b, me) = (MemoryStore::new(), MemoryStore::new(), MemoryStore::new());
    let mesh = MemoryMesh::new(&[("a", &a), ("b", &b)]);
    let cursors = Arc::new(RecordingCursors::default());
    let cfg = config("me", &["a"]);
    let (mut engine, tx) = engine_with(
        &me,
        cfg.clone(),
        Arc::new(mesh.connector()),
        cursors.clone(),
    );
    engine.start().await.unwrap();
    a.put_local("a.1", "v");
    b.put_local("b.1", "v");
    eventually("a replicates", || me.item("a.1").is_some()).await;
    assert!(me.item("b.1").is_none());

    // Add b.
    let mut with_b = cfg.clone();
    with_b
        .peers
        .push(PeerConfig::new("b", "redis://127.0.0.1:2"));
    tx.send_replace(with_b.clone());
    eventually("b replicates after being added", || {
        me.item("b.1").is_some()
    })
    .await;

    // Remove b: its tailer stops, its cursor stays.
    let b_cursor = b.last_stream_id();
    eventually("b's cursor is set", || {
        cursors.max_set("b") == Some(b_cursor)
    })
    .await;
    tx.send_replace(cfg.clone());
    eventually("b is gone", || engine.peer_manager().len() == 1).await;
    b.put_local("b.2", "v");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(me.item("b.2").is_none(), "a removed peer is not read");

    // Re-add b: it resumes from its cursor (only b.2 is read).
    let connects = mesh.connects("b");
    tx.send_replace(with_b.clone());
    eventually("b.2 arrives after re-adding", || me.item("b.2").is_some()).await;
    assert_eq!(mesh.connects("b"), connects + 1);
    assert_eq!(
        mesh.last_peer("b").unwrap().counters().entries_returned,
        1,
        "re-added peer resumed from its cursor"
    );

    // Change b's URL: it reconnects with the new one.
    let mut moved = with_b.clone();
    moved.peers[1].redis_url = "redis://127.0.0.1:3".into();
    tx.send_replace(moved.clone());
    eventually("b reconnects", || mesh.connects("b") == connects + 2).await;
    assert_eq!(
        mesh.last_config("b").unwrap().redis_url,
        "redis://127.0.0.1:3"
    );
    b.put_local("b.3", "v");
    eventually("b.3 arrives over the new connection", || {
        me.item("b.3").is_some()
    })
    .await;

    // An invalid config is rejected; the running one stays.
    let mut invalid = moved.clone();
    invalid.peers[0].redis_url = "not a url".into();
    invalid
        .peers
        .push(PeerConfig::new("c", "redis://127.0.0.1:4"));
    tx.send_replace(invalid);
    a.put_local("a.2", "v");
    eventually("a keeps replicating", || me.item("a.2").is_some()).await;
    assert_eq!(engine.peer_manager().node_ids(), ["a", "b"]);

    // Settings: a shorter cold-path interval takes effect without restart.
    let mut tuned = moved.clone();
    tuned.settings.cold_path.interval = Duration::from_secs(1);
    tuned.settings.hot_path.batch_size = 7;
    tx.send_replace(tuned);
    let roots = mesh.last_peer("a").unwrap().counters().root_calls;
    eventually("repair cycles now run every second", || {
        mesh.last_peer("a").unwrap().counters().root_calls >= roots + 3
    })
    .await;
    engine.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn changing_batch_size_applies_to_the_next_reads() {
    let (a, me) = (MemoryStore::new(), MemoryStore::new());
    let mesh = MemoryMesh::new(&[("a", &a)]);
    let mut cfg = config("me", &["a"]);
    cfg.settings.hot_path.batch_size = 1;
    cfg.settings.hot_path.max_batch_size = 1;
    let (mut engine, tx) = engine(&me, cfg.clone(), &mesh);
    engine.start().await.unwrap();
    a.put_local("warm", "v");
    eventually("warm arrives", || me.item("warm").is_some()).await;
    let mut bigger = cfg.clone();
    bigger.settings.hot_path.batch_size = 50;
    bigger.settings.hot_path.max_batch_size = 50;
    tx.send_replace(bigger);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Stop the store so the whole backlog is read while it waits, then let it go.
    me.set_accepting_writes(false);
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..100 {
        a.put_local(&format!("k{i}"), "v");
    }
    me.set_accepting_writes(true);
    eventually("the backlog arrives", || me.len() == 101).await;
    let peer = mesh.last_peer("a").unwrap().counters();
    assert!(
        peer.stream_reads < 60,
        "batch size 50 reads 100 entries in a few reads: {peer:?}"
    );
    engine.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn dropping_the_config_sender_does_not_stop_replication() {
    let (a, me) = (MemoryStore::new(), MemoryStore::new());
    let mesh = MemoryMesh::new(&[("a", &a)]);
    let (mut engine, tx) = engine(&me, config("me", &["a"]), &mesh);
    engine.start().await.unwrap();
    drop(tx);
    // Paused time: the engine's tasks see the closed channel before the writes.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 0..20 {
        a.put_local(&format!("k{i}"), "v");
    }
    eventually("writes still replicate", || me.len() == 20).await;
    engine.shutdown().await;
}
