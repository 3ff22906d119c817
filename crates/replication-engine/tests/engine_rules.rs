//! Rules of the engine, over in-memory stores and peers (no Redis): builder
//! backends, lifecycle, hot-path ordering and retries, echo safety, gaps, cold-path
//! scheduling, backpressure, the store circuit, health without I/O, live reload, metrics.
#![allow(clippy::unwrap_used)]

mod common;

use common::{config, eventually, Mesh, Recorded, RecordingCursors};
use metrics_util::debugging::DebuggingRecorder;
use replication_core::mocks::MockPeerBackend;
use replication_core::{ConnectionState, ConnectionStatus};
use replication_engine::metrics as names;
use replication_engine::{
    CursorStore, EngineError, EngineState, MemoryCursorStore, PeerBackend, PeerConfig,
    PeerConnector, ReplicationEngine, ReplicationEngineConfig, Settings, StreamId,
};
use replication_testkit::{MemoryPeer, MemoryStore, MinimalStore};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

type Engine = ReplicationEngine<MemoryStore>;

fn engine_with(
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

fn engine(
    store: &MemoryStore,
    config: ReplicationEngineConfig,
    mesh: &Mesh,
) -> (Engine, watch::Sender<ReplicationEngineConfig>) {
    engine_with(
        store,
        config,
        mesh.connector(),
        Arc::new(MemoryCursorStore::new()),
    )
}

fn recorder() -> (DebuggingRecorder, Recorded) {
    let recorder = DebuggingRecorder::new();
    let recorded = Recorded::new(recorder.snapshotter());
    (recorder, recorded)
}

#[test]
fn public_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let (_tx, rx) = watch::channel(config("me", &[]));
    let mut engine: Engine = ReplicationEngine::builder(config("me", &[]), rx)
        .sync_engine(Arc::new(MemoryStore::new()))
        .build();
    assert_send(&engine.health_check());
    assert_send(&engine.start());
    assert_send(&engine.shutdown());
}

#[tokio::test]
async fn a_disabled_peer_is_kept_in_health_but_never_connected() {
    let (a, b, me) = (MemoryStore::new(), MemoryStore::new(), MemoryStore::new());
    let mesh = Mesh::new(&[("a", &a), ("b", &b)]);
    let mut cfg = config("me", &["a", "b"]);
    cfg.peers[1].enabled = false;
    a.put_local("from.a", "1");
    b.put_local("from.b", "1");
    let (mut engine, _tx) = engine(&me, cfg, &mesh);
    engine.start().await.unwrap();
    eventually("a's item arrives", || me.item("from.a").is_some()).await;
    let health = engine.health_check().await;
    assert_eq!(health.peers_total, 2);
    assert_eq!(health.peers_connected, 1);
    let b_health = health.peers.iter().find(|p| p.node_id == "b").unwrap();
    assert!(!b_health.enabled && !b_health.connected, "{b_health:?}");
    assert!(
        health.healthy,
        "a disabled peer does not make the node unhealthy: {health:?}"
    );
    assert_eq!(
        mesh.connects("b"),
        0,
        "the connector is never called for a disabled peer"
    );
    assert!(me.item("from.b").is_none());
    engine.shutdown().await;
}

#[tokio::test]
async fn an_injected_cursor_store_is_used_and_sqlite_is_opened_from_config_otherwise() {
    let (a, me) = (MemoryStore::new(), MemoryStore::new());
    let mesh = Mesh::new(&[("a", &a)]);
    a.put_local("k", "v");
    let recording = Arc::new(RecordingCursors::default());
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config("me", &["a"]);
    cfg.cursor.sqlite_path = dir.path().join("never-opened.db");
    let (mut engine, _tx) = engine_with(&me, cfg.clone(), mesh.connector(), recording.clone());
    engine.start().await.unwrap();
    eventually("the cursor is recorded", || {
        recording.max_set("a") == Some(a.last_stream_id())
    })
    .await;
    engine.shutdown().await;
    assert!(
        !cfg.cursor.sqlite_path.exists(),
        "an injected store replaces SQLite"
    );

    cfg.cursor.sqlite_path = dir.path().join("cursors.db");
    let (tx, rx) = watch::channel(cfg.clone());
    let mut engine = ReplicationEngine::builder(cfg.clone(), rx)
        .sync_engine(Arc::new(MemoryStore::new()))
        .peer_connector(mesh.connector())
        .build();
    engine.start().await.unwrap();
    assert!(
        cfg.cursor.sqlite_path.exists(),
        "start() opens the SQLite cursor store from `cursor`"
    );
    engine.shutdown().await;
    drop(tx);
    let store =
        replication_engine::SqliteCursorStore::open(&cfg.cursor.sqlite_path, Default::default())
            .await
            .unwrap();
    let cursors = store.load_all().await.unwrap();
    assert_eq!(cursors.len(), 1);
    assert_eq!(
        cursors[0].stream_id,
        a.last_stream_id(),
        "the cursor was flushed on shutdown"
    );
}

#[tokio::test]
async fn start_validates_config_and_refuses_a_second_start() {
    let me = MemoryStore::new();
    let mesh = Mesh::default();
    let mut bad = config("me", &["a"]);
    bad.peers[0].redis_url = "http://127.0.0.1:1".into();
    let (mut engine, _tx) = engine(&me, bad, &mesh);
    let states = engine.state_receiver();
    let err = engine.start().await.unwrap_err();
    assert!(
        matches!(err, EngineError::Config(ref e) if e.field.contains("redis_url")),
        "{err}"
    );
    assert_eq!(engine.state(), EngineState::Failed);
    assert!(states.has_changed().unwrap());
    assert!(matches!(
        engine.start().await,
        Err(EngineError::InvalidState {
            state: EngineState::Failed,
            ..
        })
    ));
    engine.shutdown().await;
    assert_eq!(engine.state(), EngineState::Stopped);

    let (mut engine, _tx) = self::engine(&me, config("me", &[]), &mesh);
    engine.start().await.unwrap();
    assert_eq!(engine.state(), EngineState::Running);
    assert!(engine.is_running());
    assert!(matches!(
        engine.start().await,
        Err(EngineError::InvalidState {
            state: EngineState::Running,
            ..
        })
    ));
    engine.shutdown().await;
    assert!(matches!(
        engine.start().await,
        Err(EngineError::InvalidState {
            state: EngineState::Stopped,
            ..
        })
    ));
}

#[tokio::test]
async fn start_connects_peers_while_connecting_then_runs() {
    let a = MemoryStore::new();
    let mesh = Mesh::new(&[("a", &a)]);
    let state_seen: Arc<Mutex<Option<watch::Receiver<EngineState>>>> = Arc::default();
    let during_connect = Arc::new(Mutex::new(Vec::new()));
    let connector = {
        let (inner, state_seen, during) =
            (mesh.connector(), state_seen.clone(), during_connect.clone());
        move |peer: &PeerConfig, settings: &Settings| {
            let state = *state_seen.lock().unwrap().as_ref().unwrap().borrow();
            during.lock().unwrap().push(state);
            inner.connect(peer, settings)
        }
    };
    let (mut engine, _tx) = engine_with(
        &MemoryStore::new(),
        config("me", &["a"]),
        Arc::new(connector),
        Arc::new(MemoryCursorStore::new()),
    );
    assert_eq!(engine.state(), EngineState::Created);
    *state_seen.lock().unwrap() = Some(engine.state_receiver());
    engine.start().await.unwrap();
    assert_eq!(*during_connect.lock().unwrap(), [EngineState::Connecting]);
    assert_eq!(engine.state(), EngineState::Running);
    engine.shutdown().await;
    assert_eq!(engine.state(), EngineState::Stopped);
}

#[tokio::test(start_paused = true)]
async fn the_cursor_never_passes_entries_the_store_did_not_apply() {
    let (a, me) = (MemoryStore::new(), MemoryStore::new());
    let mesh = Mesh::new(&[("a", &a)]);
    for i in 0..10 {
        a.put_local(&format!("first.{i}"), "v");
    }
    let first_batch_end = a.last_stream_id();
    let recording = Arc::new(RecordingCursors::default());
    let (mut engine, _tx) = engine_with(
        &me,
        config("me", &["a"]),
        mesh.connector(),
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

    let mesh = Mesh::new(&[("a", &peer_store)]);
    let mut cfg = config("me", &["a"]);
    cfg.settings.cold_path.enabled = false;
    let cursors = Arc::new(RecordingCursors::default());
    let (tx, rx) = watch::channel(cfg.clone());
    let mut engine = ReplicationEngine::builder(cfg, rx)
        .sync_engine(Arc::new(me.clone()))
        .peer_connector(mesh.connector())
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
    let mesh = Mesh::new(&[("a", &a), ("b", &b)]);
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

#[tokio::test(start_paused = true)]
async fn a_trim_past_the_cursor_triggers_an_immediate_repair() {
    let (a, me) = (MemoryStore::new(), MemoryStore::new());
    let mesh = Mesh::new(&[("a", &a)]);
    let cursors = Arc::new(MemoryCursorStore::new());
    let (recorder, recorded) = recorder();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let cfg = config("me", &["a"]); // cold interval 1 h: only the gap can start a cycle
    a.put_local("early", "1");
    let (mut engine, _tx) = engine_with(&me, cfg.clone(), mesh.connector(), cursors.clone());
    engine.start().await.unwrap();
    eventually("early arrives", || me.item("early").is_some()).await;
    engine.shutdown().await;

    for i in 0..20 {
        a.put_local(&format!("missed.{i}"), "v");
    }
    // The stream keeps only the last 5 entries: 15 were trimmed past our cursor.
    let peer = MemoryPeer::new("a", a.clone());
    peer.trim_to(5);
    let (mut engine, _tx) = engine_with(&me, cfg, mesh.connector(), cursors);
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
    let mesh = Mesh::new(&[("a", &a)]);
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
    let mesh = Mesh::new(&[("a", &a)]);
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

#[tokio::test(start_paused = true)]
async fn backpressure_pauses_reading_without_spinning_and_resumes() {
    let (a, me) = (MemoryStore::new(), MemoryStore::new());
    let mesh = Mesh::new(&[("a", &a)]);
    let mut cfg = config("me", &["a"]);
    cfg.settings.hot_path.batch_size = 100;
    cfg.settings.hot_path.max_batch_size = 100;
    let (recorder, recorded) = recorder();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let (mut engine, _tx) = engine(&me, cfg, &mesh);
    engine.start().await.unwrap();
    a.put_local("k0", "v");
    eventually("k0 arrives", || me.item("k0").is_some()).await;

    me.set_accepting_writes(false);
    for i in 1..=1000 {
        a.put_local(&format!("k{i}"), "v");
    }
    // Settle: the hot path may finish the batch it was waiting for, the tailer prefetches
    // one more and then waits for the paused hot path.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let peer = mesh.last_peer("a").unwrap();
    let (before, store_before) = (peer.counters(), me.counters());
    tokio::time::sleep(Duration::from_secs(30)).await;
    let (after, store_after) = (peer.counters(), me.counters());
    assert!(
        after.stream_reads - before.stream_reads <= 1,
        "reads went on while paused: {before:?} -> {after:?}"
    );
    assert_eq!(after.entries_returned, before.entries_returned);
    // Bounded buffering: a few batches (in progress, in the channel, held by the tailer;
    // checked re-reads count twice), never the whole backlog.
    assert!(
        after.entries_returned < 1 + 1000,
        "the whole backlog was buffered: {after:?}"
    );
    assert_eq!(
        store_after.applied_batches, store_before.applied_batches,
        "wrote while paused"
    );
    assert_eq!(
        store_after.local_state_reads,
        store_before.local_state_reads
    );
    assert!(me.len() <= 101, "{}", me.len());
    let health = engine.health_check().await;
    assert!(
        !health.ready && !health.sync_engine_accepting_writes,
        "{health:?}"
    );
    assert_eq!(recorded.counter(names::BACKPRESSURE_PAUSES, &[]), 1);

    me.set_accepting_writes(true);
    eventually("reading resumes", || me.len() == 1001).await;
    assert!(engine.health_check().await.ready);
    engine.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_store_circuit_opens_shows_in_health_and_recovers() {
    let (a, me) = (MemoryStore::new(), MemoryStore::new());
    let mesh = Mesh::new(&[("a", &a)]);
    let mut cfg = config("me", &["a"]);
    cfg.settings.sync_engine.circuit_failure_threshold = 3;
    cfg.settings.sync_engine.circuit_open_for = Duration::from_secs(5);
    let (recorder, recorded) = recorder();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let (mut engine, _tx) = engine(&me, cfg, &mesh);
    engine.start().await.unwrap();
    me.set_failing_writes(true);
    a.put_local("k", "v");
    eventually("the circuit opens", || engine.circuit().is_open()).await;
    let health = engine.health_check().await;
    assert_eq!(health.sync_engine_circuit, "open");
    assert!(!health.ready && !health.healthy, "{health:?}");
    assert_eq!(recorded.gauge(names::SYNC_ENGINE_CIRCUIT, &[]), Some(2.0));
    // While open, the store is not hammered.
    let calls = me.counters().failed_calls;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        me.counters().failed_calls - calls <= 1,
        "writes went through an open circuit"
    );

    me.set_failing_writes(false);
    eventually("the circuit closes after a good probe", || {
        engine.circuit().state_name() == "closed"
    })
    .await;
    eventually("the write lands", || me.item("k").is_some()).await;
    let health = engine.health_check().await;
    assert!(
        health.ready && health.sync_engine_circuit == "closed",
        "{health:?}"
    );
    assert!(recorded.counter(names::APPLY_RETRIES, &[("peer", "a")]) >= 3);
    engine.shutdown().await;
}

#[tokio::test]
async fn health_check_reads_cached_state_only() {
    let in_health = Arc::new(AtomicBool::new(false));
    let io_during_health = Arc::new(AtomicUsize::new(0));
    let connector = {
        let (in_health, io) = (in_health.clone(), io_during_health.clone());
        move |peer: &PeerConfig,
              _: &Settings|
              -> Result<Arc<dyn PeerBackend>, replication_engine::PeerError> {
            let mut mock = MockPeerBackend::new();
            let id = peer.node_id.clone();
            mock.expect_node_id().return_const(id);
            mock.expect_connection().returning(|| ConnectionStatus {
                state: ConnectionState::Connected,
                circuit_open: false,
                last_error: None,
                last_success_ms: Some(1),
                reconnects: 0,
                ..ConnectionStatus::default()
            });
            // Hot and cold paths are off: nothing but health may touch the peer, and
            // health must do no I/O at all.
            let (flag, io) = (in_health.clone(), io.clone());
            let count = move || {
                if flag.load(Ordering::SeqCst) {
                    io.fetch_add(1, Ordering::SeqCst);
                }
            };
            let c = count.clone();
            mock.expect_ping().never().returning(move || {
                c();
                Ok(Duration::ZERO)
            });
            mock.expect_stream_info().never().returning(move || {
                count();
                Ok(None)
            });
            mock.expect_read_stream().never();
            mock.expect_read_stream_checked().never();
            mock.expect_merkle_root().never();
            mock.expect_merkle_children().never();
            mock.expect_read_items().never();
            mock.expect_read_tombstones().never();
            mock.expect_close().returning(|| ());
            Ok(Arc::new(mock))
        }
    };
    let mut cfg = config("me", &["a", "b"]);
    cfg.settings.hot_path.enabled = false;
    cfg.settings.cold_path.enabled = false;
    let (mut engine, _tx) = engine_with(
        &MemoryStore::new(),
        cfg,
        Arc::new(connector),
        Arc::new(MemoryCursorStore::new()),
    );
    engine.start().await.unwrap();
    in_health.store(true, Ordering::SeqCst);
    let health = engine.health_check().await;
    in_health.store(false, Ordering::SeqCst);
    assert_eq!(io_during_health.load(Ordering::SeqCst), 0);
    assert!(health.ready && health.healthy, "{health:?}");
    assert_eq!((health.peers_connected, health.peers_total), (2, 2));
    let json = serde_json::to_value(&health).unwrap();
    for field in [
        "connected",
        "circuit_open",
        "lag_ms",
        "lag_entries",
        "last_error",
        "catching_up",
    ] {
        assert!(
            json["peers"][0].get(field).is_some(),
            "missing {field}: {json}"
        );
    }
    engine.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn health_reports_lag_catching_up_and_errors() {
    let (a, me) = (MemoryStore::new(), MemoryStore::new());
    let mesh = Mesh::new(&[("a", &a)]);
    let mut cfg = config("me", &["a"]);
    cfg.settings.hot_path.batch_size = 2;
    cfg.settings.hot_path.max_batch_size = 2;
    for i in 0..20 {
        a.put_local(&format!("k{i}"), "v");
    }
    me.set_failing_writes(true);
    let (mut engine, _tx) = engine(&me, cfg, &mesh);
    engine.start().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let peer = engine.health_check().await.peers.remove(0);
    assert!(
        peer.catching_up && peer.lag_entries.unwrap() > 0,
        "{peer:?}"
    );
    assert!(peer.lag_ms.is_some());
    me.set_failing_writes(false);
    eventually("caught up", || me.len() == 20).await;
    eventually("lag is zero", || {
        let peer = engine.peer_manager().health().remove(0);
        peer.lag_entries == Some(0) && !peer.catching_up
    })
    .await;
    mesh.last_peer("a").unwrap().set_fail_all(true);
    eventually("the read error shows", || {
        engine.peer_manager().health()[0].last_error.is_some()
    })
    .await;
    engine.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn reload_adds_removes_reconnects_and_retunes_peers() {
    let (a, b, me) = (MemoryStore::new(), MemoryStore::new(), MemoryStore::new());
    let mesh = Mesh::new(&[("a", &a), ("b", &b)]);
    let cursors = Arc::new(RecordingCursors::default());
    let cfg = config("me", &["a"]);
    let (mut engine, tx) = engine_with(&me, cfg.clone(), mesh.connector(), cursors.clone());
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
    let mesh = Mesh::new(&[("a", &a)]);
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

#[tokio::test]
async fn dropping_the_config_sender_does_not_stop_replication() {
    let (a, me) = (MemoryStore::new(), MemoryStore::new());
    let mesh = Mesh::new(&[("a", &a)]);
    let (mut engine, tx) = engine(&me, config("me", &["a"]), &mesh);
    engine.start().await.unwrap();
    drop(tx);
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 0..20 {
        a.put_local(&format!("k{i}"), "v");
    }
    eventually("writes still replicate", || me.len() == 20).await;
    engine.shutdown().await;
}

#[tokio::test]
async fn shutdown_does_not_hang_on_a_blackholed_peer() {
    // Accepts connections and never answers a byte.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            keep.lock().unwrap().push(stream);
        }
    });
    let mut cfg = config("me", &[]);
    cfg.peers
        .push(PeerConfig::new("dead", format!("redis://127.0.0.1:{port}")));
    cfg.settings.shutdown_timeout = Duration::from_secs(1);
    cfg.settings.cold_path.interval = Duration::from_millis(200);
    let (tx, rx) = watch::channel(cfg.clone());
    let mut engine = ReplicationEngine::builder(cfg, rx)
        .sync_engine(Arc::new(MemoryStore::new()))
        .cursor_store(Arc::new(MemoryCursorStore::new()))
        .build();
    tokio::time::timeout(Duration::from_secs(10), engine.start())
        .await
        .expect("start() hung")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let health = engine.health_check().await;
    assert!(!health.peers[0].connected, "{health:?}");
    assert!(health.ready, "peers do not affect readiness");
    // Generous bound (shutdown_timeout is 1 s): only a hang can exceed it.
    tokio::time::timeout(Duration::from_secs(15), engine.shutdown())
        .await
        .expect("shutdown hung on a dead peer");
    assert_eq!(engine.state(), EngineState::Stopped);
    drop(tx);
}

#[tokio::test(start_paused = true)]
async fn hot_path_metrics_count_read_applied_deduped_and_collapsed() {
    let (a, me) = (MemoryStore::new(), MemoryStore::new());
    let mesh = Mesh::new(&[("a", &a)]);
    let (recorder, recorded) = recorder();
    let _guard = metrics::set_default_local_recorder(&recorder);
    a.put_local("x", "1");
    a.put_local("x", "2");
    a.put_local("y", "1");
    let held = a.item("y").unwrap();
    me.apply_change(replication_engine::Change::Put(held))
        .unwrap();
    let peer = MemoryPeer::new("a", a.clone());
    peer.append_raw(vec![(
        bytes::Bytes::from_static(b"op"),
        bytes::Bytes::from_static(b"bogus"),
    )]);
    let (mut engine, _tx) = engine(&me, config("me", &["a"]), &mesh);
    engine.start().await.unwrap();
    let p = [("peer", "a")];
    eventually("all four entries are read", || {
        recorded.counter(names::EVENTS_READ, &p) == 4
    })
    .await;
    eventually("x is applied", || {
        recorded.counter(names::EVENTS_APPLIED, &p) == 1
    })
    .await;
    assert_eq!(recorded.counter(names::EVENTS_COLLAPSED, &p), 1);
    assert_eq!(
        recorded.counter(names::EVENTS_DEDUPED, &p),
        1,
        "y was already held"
    );
    assert_eq!(recorded.counter(names::EVENTS_REJECTED, &p), 1);
    engine.shutdown().await;
}

#[tokio::test]
async fn engine_state_is_a_gauge() {
    let (recorder, recorded) = recorder();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let (mut engine, _tx) = engine(&MemoryStore::new(), config("me", &[]), &Mesh::default());
    // Snapshots drain gauges: each read follows the change it checks.
    engine.start().await.unwrap();
    assert_eq!(recorded.gauge(names::ENGINE_STATE, &[]), Some(2.0));
    engine.shutdown().await;
    assert_eq!(recorded.gauge(names::ENGINE_STATE, &[]), Some(4.0));
}
