//! Data safety at the edges, over in-memory stores and peers: clean shutdown keeps the
//! last batch's checkpoint, decisions do not depend on batch boundaries, a disabled cold
//! path still repairs a gap, and the whole engine keeps versions straight over a store
//! that implements only the required `SyncEngineRef` methods.
#![allow(clippy::unwrap_used)]

mod common;

use common::{config, eventually, Mesh, Recorded};
use metrics_util::debugging::DebuggingRecorder;
use replication_engine::metrics as names;
use replication_engine::{
    CursorStore, MemoryCursorStore, ReplicationEngine, ReplicationEngineConfig, SyncEngineRef,
};
use replication_testkit::MemoryStore;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

fn recorder() -> (DebuggingRecorder, Recorded) {
    let recorder = DebuggingRecorder::new();
    let recorded = Recorded::new(recorder.snapshotter());
    (recorder, recorded)
}

fn engine<S: SyncEngineRef>(
    store: S,
    config: ReplicationEngineConfig,
    mesh: &Mesh,
    cursors: Arc<dyn CursorStore>,
) -> (ReplicationEngine<S>, watch::Sender<ReplicationEngineConfig>) {
    let (tx, rx) = watch::channel(config.clone());
    let engine = ReplicationEngine::builder(config, rx)
        .sync_engine(Arc::new(store))
        .peer_connector(mesh.connector())
        .cursor_store(cursors)
        .build();
    (engine, tx)
}

/// The store's reply to the last batch is still on its way when the data is visible and
/// shutdown begins: shutdown waits for it and records that batch's cursor, so a restart
/// reads nothing again.
#[tokio::test(start_paused = true)]
async fn clean_shutdown_right_after_the_last_write_keeps_its_checkpoint() {
    let (a, me) = (MemoryStore::new(), MemoryStore::new());
    let mesh = Mesh::new(&[("a", &a)]);
    for i in 0..500 {
        a.put_local(&format!("k.{i}"), format!("v{i}"));
    }
    me.set_reply_latency(Duration::from_millis(30));
    let mut cfg = config("me", &["a"]);
    cfg.settings.hot_path.batch_size = 100;
    cfg.settings.hot_path.max_batch_size = 100;
    cfg.settings.cold_path.enabled = false;
    let cursors = Arc::new(MemoryCursorStore::new());
    let (recorder, recorded) = recorder();
    let _guard = metrics::set_default_local_recorder(&recorder);

    let (mut first, _t1) = engine(me.clone(), cfg.clone(), &mesh, cursors.clone());
    first.start().await.unwrap();
    eventually("the 500th change is applied", || me.len() == 500).await;
    first.shutdown().await;
    let durable = cursors.durable_cursors();
    assert_eq!(
        durable.first().map(|c| c.stream_id),
        Some(a.last_stream_id()),
        "the last batch's cursor was not recorded: {durable:?}"
    );

    // What a durable cursor store holds after the process is gone.
    let restarted = Arc::new(MemoryCursorStore::new());
    for cursor in durable {
        restarted.set(cursor).await.unwrap();
    }
    let read_before = recorded.counter(names::EVENTS_READ, &[("peer", "a")]);
    let (mut second, _t2) = engine(me.clone(), cfg, &mesh, restarted);
    second.start().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    second.shutdown().await;
    assert_eq!(
        recorded.counter(names::EVENTS_READ, &[("peer", "a")]) - read_before,
        0,
        "a restart after a clean shutdown re-read entries"
    );
}

/// The store fails the in-flight batch's first attempts just as shutdown begins: shutdown
/// keeps retrying it within `shutdown_timeout`, applies it and records its cursor, instead
/// of abandoning it at the first retry.
#[tokio::test(start_paused = true)]
async fn shutdown_retries_the_in_flight_batch_within_its_budget_and_records_its_cursor() {
    let (a, me) = (MemoryStore::new(), MemoryStore::new());
    let mesh = Mesh::new(&[("a", &a)]);
    for i in 0..100 {
        a.put_local(&format!("k.{i}"), format!("v{i}"));
    }
    me.set_failing_writes(true);
    let mut cfg = config("me", &["a"]);
    cfg.settings.cold_path.enabled = false;
    cfg.settings.shutdown_timeout = Duration::from_secs(5);
    // This test is about draining, not about the circuit opening on the way.
    cfg.settings.sync_engine.circuit_failure_threshold = 100;
    let cursors = Arc::new(MemoryCursorStore::new());
    let (mut engine, _tx) = engine(me.clone(), cfg, &mesh, cursors.clone());
    engine.start().await.unwrap();
    eventually("the batch's first write fails", || {
        me.counters().failed_calls >= 1
    })
    .await;
    let store = me.clone();
    let recovers = async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        store.set_failing_writes(false);
    };
    tokio::join!(engine.shutdown(), recovers);
    assert_eq!(me.len(), 100, "the in-flight batch was abandoned");
    assert_eq!(
        cursors.durable_cursors().first().map(|c| c.stream_id),
        Some(a.last_stream_id()),
        "its cursor was not recorded"
    );
}
