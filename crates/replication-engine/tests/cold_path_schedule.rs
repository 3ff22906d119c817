//! When the cold path runs, over in-memory stores and peers (no Redis): at once after a
//! trim past the cursor, every interval with backoff after failures, and not while the
//! tailer is far behind.
#![allow(clippy::unwrap_used)]

mod common;

use common::{config, engine, engine_with, recorder};
use replication_engine::metrics as names;
use replication_engine::MemoryCursorStore;
use replication_testkit::{eventually, MemoryMesh, MemoryPeer, MemoryStore};
use std::sync::Arc;
use std::time::Duration;
#[tokio::test(start_paused = true)]
async fn a_trim_past_the_cursor_triggers_an_immediate_repair() {
    let (a, me) = (MemoryStore::new(), MemoryStore::new());
    let mesh = MemoryMesh::new(&[("a", &a)]);
    let cursors = Arc::new(MemoryCursorStore::new());
    let (recorder, recorded) = recorder();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let cfg = config("me", &["a"]); // cold interval 1 h: only the gap can start a cycle
    a.put_local("early", "1");
    let (mut engine, _tx) = engine_with(
        &me,
        cfg.clone(),
        Arc::new(mesh.connector()),
        cursors.clone(),
    );
    engine.start().await.unwrap();
    eventually("early arrives", || me.item("early").is_some()).await;
    engine.shutdown().await;

    for i in 0..20 {
        a.put_local(&format!("missed.{i}"), "v");
    }
    // The stream keeps only the last 5 entries: 15 were trimmed past our cursor.
    let peer = MemoryPeer::new("a", a.clone());
    peer.trim_to(5);
    let (mut engine, _tx) = engine_with(&me, cfg, Arc::new(mesh.connector()), cursors);
    engine.start().await.unwrap();
    eventually("repair brings the trimmed items", || me.len() == 21).await;
    assert!(recorded.counter(names::GAPS, &[("peer", "a"), ("kind", "trimmed")]) >= 1);
    assert!(
        recorded.counter(
            names::REPAIR_CYCLES,
            &[("peer", "a"), ("outcome", "repaired")]
        ) >= 1
    );
    // And the hot path continued from the oldest entry the peer still has.
    a.put_local("after", "1");
    eventually("new writes keep flowing", || me.item("after").is_some()).await;
    engine.shutdown().await;
    assert_eq!(me.items(), a.items());
}

#[tokio::test(start_paused = true)]
async fn repair_runs_every_interval_and_backs_off_after_failures() {
    let (a, me) = (MemoryStore::new(), MemoryStore::new());
    let mesh = MemoryMesh::new(&[("a", &a)]);
    let mut cfg = config("me", &["a"]);
    cfg.settings.hot_path.enabled = false; // only repair can copy anything
    cfg.settings.cold_path.interval = Duration::from_secs(10);
    let (recorder, recorded) = recorder();
    let _guard = metrics::set_default_local_recorder(&recorder);
    a.put_local("k1", "v");
    let (mut engine, _tx) = engine(&me, cfg, &mesh);
    engine.start().await.unwrap();
    eventually("a periodic cycle copies k1", || me.item("k1").is_some()).await;
    assert_eq!(
        mesh.last_peer("a").unwrap().counters().stream_reads,
        0,
        "hot path disabled"
    );
    a.put_local("k2", "v");
    eventually("the next cycle copies k2", || me.item("k2").is_some()).await;

    let peer = mesh.last_peer("a").unwrap();
    peer.set_fail_all(true);
    let failed = || {
        recorded.counter(
            names::REPAIR_CYCLES,
            &[("peer", "a"), ("outcome", "failed")],
        )
    };
    eventually("two cycles fail", || failed() >= 2).await;
    // Waiting 60 s more: with a fixed 10 s interval that would be 6 more failures; the
    // backoff (1 s doubling, capped at the interval) allows at most as many.
    let before = failed();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let after = failed();
    assert!(after > before, "failed cycles are retried");
    assert!(
        after - before <= 12,
        "failed cycles are not retried in a tight loop: {}",
        after - before
    );
    peer.set_fail_all(false);
    a.put_local("k3", "v");
    eventually("repair recovers", || me.item("k3").is_some()).await;
    engine.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn periodic_repair_is_skipped_while_the_tailer_is_far_behind() {
    let (a, me) = (MemoryStore::new(), MemoryStore::new());
    let mesh = MemoryMesh::new(&[("a", &a)]);
    let mut cfg = config("me", &["a"]);
    cfg.settings.hot_path.batch_size = 1;
    cfg.settings.hot_path.max_batch_size = 1;
    cfg.settings.cold_path.interval = Duration::from_secs(1);
    cfg.settings.cold_path.skip_when_lag_entries_over = 5;
    let (recorder, recorded) = recorder();
    let _guard = metrics::set_default_local_recorder(&recorder);
    for i in 0..50 {
        a.put_local(&format!("k{i}"), "v");
    }
    // The store fails: the hot path holds its first batch, 50 entries behind.
    me.set_failing_writes(true);
    let (mut engine, _tx) = engine(&me, cfg, &mesh);
    engine.start().await.unwrap();
    let skipped = || {
        recorded.counter(
            names::REPAIR_CYCLES,
            &[("peer", "a"), ("outcome", "skipped")],
        )
    };
    eventually("periodic cycles are skipped", || skipped() >= 3).await;
    assert_eq!(
        mesh.last_peer("a").unwrap().counters().root_calls,
        0,
        "a skipped cycle reads nothing"
    );
    me.set_failing_writes(false);
    eventually("the stream catches up", || me.len() == 50).await;
    engine.shutdown().await;
}
