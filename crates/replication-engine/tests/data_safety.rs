//! Data safety at the edges, over in-memory stores and peers: clean shutdown keeps the
//! last batch's checkpoint, permanent read errors are not retried, decisions do not depend
//! on batch boundaries, a disabled cold path still repairs a gap, one refused item does not
//! stop repair, the whole engine keeps versions straight over a store that implements only
//! the required `SyncEngineRef` methods, and tombstones are collected only once every peer
//! has verifiably seen them (late deletes, reloading peers, peers moved to another stream).
#![allow(clippy::unwrap_used)]

mod common;

use common::config;
use metrics_util::debugging::DebuggingRecorder;
use replication_engine::metrics as names;
use replication_engine::{
    CursorStore, MemoryCursorStore, ReplicationEngine, ReplicationEngineConfig, StreamId,
    SyncEngineRef,
};
use replication_testkit::{eventually, MemoryMesh, MemoryStore, MinimalStore, Recorded};
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
    mesh: &MemoryMesh,
    cursors: Arc<dyn CursorStore>,
) -> (ReplicationEngine<S>, watch::Sender<ReplicationEngineConfig>) {
    let (tx, rx) = watch::channel(config.clone());
    let engine = ReplicationEngine::builder(config, rx)
        .sync_engine(Arc::new(store))
        .peer_connector(Arc::new(mesh.connector()))
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
    let mesh = MemoryMesh::new(&[("a", &a)]);
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
    let mesh = MemoryMesh::new(&[("a", &a)]);
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

/// A peer whose tombstones cannot be read for good (a permanent error): the hot path does
/// not retry it for ever; the batch goes on, its deletes judged without tombstones.
#[tokio::test(start_paused = true)]
async fn a_permanent_read_error_is_not_retried_and_the_stream_goes_on() {
    let (a, me) = (MemoryStore::new(), MemoryStore::new());
    // Bare DELs, as sync-engine writes them: only those send the reader to the tombstones.
    a.set_bare_deletes(true);
    let mesh = MemoryMesh::new(&[("a", &a)]);
    let mut cfg = config("me", &["a"]);
    cfg.settings.cold_path.enabled = false;
    let (recorder, recorded) = recorder();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let (mut engine, _tx) = engine(me.clone(), cfg, &mesh, Arc::new(MemoryCursorStore::new()));
    engine.start().await.unwrap();
    a.put_local("gone", "x");
    eventually("gone arrives", || me.item("gone").is_some()).await;
    let peer = mesh.last_peer("a").unwrap();
    peer.set_tombstones_malformed(true);
    a.delete_local("gone");
    a.put_local("after", "y");
    eventually("the stream goes on past the delete", || {
        me.item("after").is_some()
    })
    .await;
    assert_eq!(
        peer.counters().tombstone_calls,
        1,
        "a permanent error was retried"
    );
    assert!(
        me.item("gone").is_none(),
        "the writer holds the key in no form: the bare delete applies"
    );
    assert_eq!(
        recorded.counter(
            names::EVENTS_REJECTED,
            &[("peer", "a"), ("reason", "tombstones_unreadable")]
        ),
        1
    );
    engine.shutdown().await;
}

/// The store refuses for good to read the state of one key: that key is refused (counted),
/// the others of its batch are applied and the stream goes on.
#[tokio::test(start_paused = true)]
async fn a_key_the_store_refuses_to_read_is_isolated_from_its_batch() {
    use replication_core::mocks::MockSyncEngineRef;
    use replication_engine::{Change, LocalState, SyncError};
    use std::sync::Mutex;

    let a = MemoryStore::new();
    for key in ["x", "bad", "y"] {
        a.put_local(key, "v");
    }
    let applied: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut store = MockSyncEngineRef::new();
    store.expect_should_accept_writes().return_const(true);
    store.expect_local_states().returning(|keys| {
        let refused = keys.iter().any(|k| k == "bad");
        let states = vec![Some(LocalState::Absent); keys.len()];
        Box::pin(async move {
            if refused {
                Err(SyncError::permanent("reserved id"))
            } else {
                Ok(states)
            }
        })
    });
    let record = applied.clone();
    store.expect_apply_batch().returning(move |changes| {
        record
            .lock()
            .unwrap()
            .extend(changes.iter().map(|c: &Change| c.key().to_owned()));
        Box::pin(async { Ok(()) })
    });
    let mesh = MemoryMesh::new(&[("a", &a)]);
    let mut cfg = config("me", &["a"]);
    cfg.settings.cold_path.enabled = false;
    let (recorder, recorded) = recorder();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let (mut engine, _tx) = engine(store, cfg, &mesh, Arc::new(MemoryCursorStore::new()));
    engine.start().await.unwrap();
    eventually("x and y are applied", || applied.lock().unwrap().len() == 2).await;
    assert_eq!(*applied.lock().unwrap(), ["x", "y"]);
    assert_eq!(
        recorded.counter(
            names::EVENTS_REJECTED,
            &[("peer", "a"), ("reason", "store_refused")]
        ),
        1
    );
    engine.shutdown().await;
}

/// The final state of one stream read with `batch_size` entries per batch.
async fn replay_with_batch_size(a: &MemoryStore, batch_size: usize) -> MemoryStore {
    let me = MemoryStore::new();
    let mesh = MemoryMesh::new(&[("a", a)]);
    let mut cfg = config("me", &["a"]);
    cfg.settings.hot_path.batch_size = batch_size;
    cfg.settings.hot_path.max_batch_size = batch_size;
    cfg.settings.cold_path.enabled = false;
    let cursors = Arc::new(common::RecordingCursors::default());
    let (mut engine, _tx) = engine(me.clone(), cfg, &mesh, cursors.clone());
    engine.start().await.unwrap();
    eventually("the whole stream is applied", || {
        cursors.max_set("a") == Some(a.last_stream_id())
    })
    .await;
    engine.shutdown().await;
    me
}

/// A put, a delete whose writer kept no tombstone (a bare delete), then an echo of the
/// old put: read one entry per batch, the delete removes the put's version and the echo
/// is stale. Read in larger batches, the same stream must end the same way.
#[tokio::test(start_paused = true)]
async fn the_outcome_of_a_stream_does_not_depend_on_where_batches_split() {
    use replication_core::CdcEvent;
    use replication_testkit::MemoryPeer;

    let a = MemoryStore::new();
    let put = a.put_local("k", "v1");
    a.put_local("other", "x");
    a.delete_local("k");
    // The writer collected its tombstone: the DEL travels bare.
    a.purge_tombstones(i64::MAX).await.unwrap();
    MemoryPeer::new("a", a.clone()).append_event(&CdcEvent::Put(put));

    let mut outcomes = Vec::new();
    for batch_size in [1, 2, 3, 4] {
        let me = replay_with_batch_size(&a, batch_size).await;
        outcomes.push((
            batch_size,
            me.item("k").map(|i| i.version),
            me.tombstone("k"),
        ));
    }
    let sequential = outcomes[0].clone();
    assert_eq!(sequential.1, None, "read one by one, the delete wins");
    for outcome in &outcomes {
        assert_eq!(
            (outcome.1, &outcome.2),
            (sequential.1, &sequential.2),
            "batch size {} ended differently: {outcomes:?}",
            outcome.0
        );
    }
}

/// A peer raises a key's version without changing its content: a store with only the
/// required methods must still get the new version (leaf hashes include it, so the trees
/// would differ for ever otherwise).
#[tokio::test(start_paused = true)]
async fn a_version_bump_with_unchanged_content_reaches_a_minimal_store() {
    let a = MemoryStore::new();
    let me = MinimalStore::like_sync_engine();
    let mesh = MemoryMesh::new(&[("a", &a)]);
    let mut cfg = config("me", &["a"]);
    cfg.settings.cold_path.enabled = false;
    let (mut engine, _tx) = engine(me.clone(), cfg, &mesh, Arc::new(MemoryCursorStore::new()));
    engine.start().await.unwrap();
    a.put_local("k", "same");
    eventually("k arrives", || me.inner().item("k").is_some()).await;
    a.put_local("k", "same");
    a.put_local("marker", "m");
    eventually("the batch is applied", || {
        me.inner().item("marker").is_some()
    })
    .await;
    assert_eq!(
        me.inner().item("k").unwrap().version,
        2,
        "the version bump was dropped"
    );
    assert_eq!(me.inner().root(), a.root());
    engine.shutdown().await;
}

/// An older version of a key (an echo, a late replay) reaches a store with only the
/// required methods, which stores whatever it is given: the engine must not hand it over.
#[tokio::test(start_paused = true)]
async fn an_older_version_never_overwrites_a_newer_one_in_a_minimal_store() {
    use replication_core::CdcEvent;
    use replication_testkit::MemoryPeer;

    let a = MemoryStore::new();
    let me = MinimalStore::like_sync_engine();
    let mesh = MemoryMesh::new(&[("a", &a)]);
    let mut cfg = config("me", &["a"]);
    cfg.settings.cold_path.enabled = false;
    let (mut engine, _tx) = engine(me.clone(), cfg, &mesh, Arc::new(MemoryCursorStore::new()));
    engine.start().await.unwrap();
    let old = a.put_local("k", "v1");
    a.put_local("k", "v2");
    a.put_local("k", "v3");
    eventually("v3 arrives", || {
        me.inner().item("k").is_some_and(|i| i.version == 3)
    })
    .await;
    MemoryPeer::new("a", a.clone()).append_event(&CdcEvent::Put(old));
    a.put_local("marker", "m");
    eventually("the echo's batch is applied", || {
        me.inner().item("marker").is_some()
    })
    .await;
    assert_eq!(
        me.inner().item("k").unwrap().version,
        3,
        "an older version overwrote v3"
    );
    engine.shutdown().await;
}

/// The cold path into a store with only the required methods: a peer's older version is
/// not applied, a peer's tombstone older than the local item does not delete it, and a
/// newer one does.
#[tokio::test(start_paused = true)]
async fn the_cold_path_keeps_a_minimal_stores_newer_versions() {
    let peer = MemoryStore::new();
    let me = MinimalStore::like_sync_engine();
    for _ in 0..5 {
        me.inner().put_local("newer.here", "mine");
        me.inner().put_local("kept", "mine");
    }
    me.inner().put_local("deleted.there", "mine");
    for _ in 0..4 {
        peer.put_local("newer.here", "theirs");
    }
    // The peer deleted `kept` at version 2 (older than our v5) and `deleted.there` at v2
    // (newer than our v1).
    peer.put_local("kept", "old");
    peer.delete_local("kept");
    peer.put_local("deleted.there", "old");
    peer.delete_local("deleted.there");
    let mesh = MemoryMesh::new(&[("p", &peer)]);
    let mut cfg = config("me", &["p"]);
    cfg.settings.hot_path.enabled = false;
    cfg.settings.cold_path.interval = Duration::from_secs(1);
    let (recorder, recorded) = recorder();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let (mut engine, _tx) = engine(me.clone(), cfg, &mesh, Arc::new(MemoryCursorStore::new()));
    engine.start().await.unwrap();
    eventually("two repair cycles ran", || {
        recorded.counter(names::REPAIR_CYCLES, &[("peer", "p")]) >= 2
    })
    .await;
    engine.shutdown().await;
    assert_eq!(
        me.inner().item("newer.here").unwrap().version,
        5,
        "an older peer version was applied"
    );
    assert_eq!(
        me.inner().item("kept").unwrap().version,
        5,
        "an older peer tombstone deleted v5"
    );
    assert!(
        me.inner().item("deleted.there").is_none(),
        "a winning peer tombstone must delete"
    );
}

/// Three nodes, one of them a store with only the required methods that behaves like
/// sync-engine's (no conflict order of its own, no tombstones, echoes): each node
/// rewrites its own keys (often with unchanged content, so only the version moves),
/// the full nodes also delete and re-create theirs. Hot and cold paths together bring
/// every node to the same items and the same Merkle root.
#[tokio::test(start_paused = true)]
async fn a_mesh_with_a_minimal_store_converges_on_hot_and_cold_paths() {
    let (a, b) = (MemoryStore::new(), MemoryStore::new());
    let m = MinimalStore::like_sync_engine();
    let mesh = MemoryMesh::new(&[("a", &a), ("b", &b), ("m", m.inner())]);
    let cfg = |me: &str, peers: &[&str]| {
        let mut c = config(me, peers);
        c.settings.cold_path.interval = Duration::from_secs(1);
        c.settings.hot_path.batch_size = 7;
        c.settings.hot_path.max_batch_size = 7;
        c
    };
    let cursors = || Arc::new(MemoryCursorStore::new()) as Arc<dyn CursorStore>;
    let (mut ea, _ta) = engine(a.clone(), cfg("a", &["b", "m"]), &mesh, cursors());
    let (mut eb, _tb) = engine(b.clone(), cfg("b", &["a", "m"]), &mesh, cursors());
    let (mut em, _tm) = engine(m.clone(), cfg("m", &["a", "b"]), &mesh, cursors());
    for engine in [&mut ea, &mut eb] {
        engine.start().await.unwrap();
    }
    em.start().await.unwrap();

    // A fixed pseudo-random workload (xorshift), so a failure replays exactly.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |bound: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % bound
    };
    for _ in 0..300 {
        let node = next(3);
        let key = format!("n{node}.k{}", next(6));
        let content = format!("c{}", next(2));
        match node {
            0 | 1 => {
                let store = if node == 0 { &a } else { &b };
                if next(5) == 0 {
                    store.delete_local(&key);
                } else {
                    store.put_local(&key, content);
                }
            }
            _ => {
                m.inner().put_local(&key, content);
            }
        }
        tokio::time::sleep(Duration::from_millis(next(20))).await;
    }
    eventually("every node holds the same tree", || {
        let root = a.root();
        root == b.root() && root == m.inner().root()
    })
    .await;
    let items = |store: &MemoryStore| -> Vec<(String, u64, String)> {
        store
            .items()
            .into_iter()
            .map(|i| (i.key, i.version, i.content_hash))
            .collect()
    };
    assert_eq!(items(&a), items(m.inner()));
    assert_eq!(items(&b), items(m.inner()));
    for engine in [&mut ea, &mut eb] {
        engine.shutdown().await;
    }
    em.shutdown().await;
}

/// With the cold path disabled, a gap in a peer's stream (entries trimmed before we read
/// them) is still repaired once from the peer's tree; until then health says so.
#[tokio::test(start_paused = true)]
async fn a_gap_is_repaired_once_even_with_the_cold_path_disabled() {
    use replication_testkit::MemoryPeer;

    let (a, me) = (MemoryStore::new(), MemoryStore::new());
    let mesh = MemoryMesh::new(&[("a", &a)]);
    let cursors = Arc::new(MemoryCursorStore::new());
    let mut cfg = config("me", &["a"]);
    cfg.settings.cold_path.enabled = false;
    a.put_local("early", "1");
    let (mut first, _t1) = engine(me.clone(), cfg.clone(), &mesh, cursors.clone());
    first.start().await.unwrap();
    eventually("early arrives", || me.item("early").is_some()).await;
    first.shutdown().await;
    let restarted = Arc::new(MemoryCursorStore::new());
    for cursor in cursors.durable_cursors() {
        restarted.set(cursor).await.unwrap();
    }

    for i in 0..20 {
        a.put_local(&format!("missed.{i}"), "v");
    }
    MemoryPeer::new("a", a.clone()).trim_to(5);
    // The repair cannot write yet: health must show the gap as unrepaired meanwhile.
    me.set_failing_writes(true);
    let (mut second, _t2) = engine(me.clone(), cfg, &mesh, restarted);
    second.start().await.unwrap();
    eventually("health shows the unrepaired gap", || {
        second.peer_manager().health()[0].gap_unrepaired
    })
    .await;
    me.set_failing_writes(false);
    eventually("the repair brings the trimmed items", || me.len() == 21).await;
    eventually("and health clears", || {
        !second.peer_manager().health()[0].gap_unrepaired
    })
    .await;
    assert_eq!(me.items(), a.items());
    second.shutdown().await;
}

/// `me` tailing only `peer`, with the cold path disabled: gaps are all that is repaired.
fn gaps_only(peer: &str) -> ReplicationEngineConfig {
    let mut cfg = config("me", &[peer]);
    cfg.settings.cold_path.enabled = false;
    cfg
}

/// Starts `me` on `cfg`, lets it read `a`'s first write, then recreates `a`'s stream empty
/// and waits until `me` saw it and repaired: it now sits at `0-0` of the new stream.
async fn resumed_at_a_recreated_start(
    a: &MemoryStore,
    me: &MemoryStore,
    mesh: &MemoryMesh,
    cfg: &ReplicationEngineConfig,
    cursors: &Arc<MemoryCursorStore>,
) -> (
    ReplicationEngine<MemoryStore>,
    watch::Sender<ReplicationEngineConfig>,
) {
    a.put_local("early", "1");
    let (mut node, tx) = engine(me.clone(), cfg.clone(), mesh, cursors.clone());
    node.start().await.unwrap();
    eventually("early arrives", || me.item("early").is_some()).await;
    replication_testkit::MemoryPeer::new("a", a.clone()).reset_stream();
    eventually("the recreated stream is seen and its repair done", || {
        let health = &node.peer_manager().health()[0];
        health.gaps.recreated > 0 && !health.gap_unrepaired
    })
    .await;
    (node, tx)
}

/// A stream recreated empty is resumed from its start (cursor 0-0). Recreated again while
/// the node is down, after a write the node never read, it looks untouched from there:
/// every fact starts at zero again. The restart counts that resume point as a gap, so one
/// repair brings the lost write, also with the cold path disabled.
#[tokio::test(start_paused = true)]
async fn a_stream_recreated_again_while_resuming_from_its_start_is_repaired() {
    let (a, me) = (MemoryStore::new(), MemoryStore::new());
    let mesh = MemoryMesh::new(&[("a", &a)]);
    let cursors = Arc::new(MemoryCursorStore::new());
    let cfg = gaps_only("a");
    let (mut first, _t1) = resumed_at_a_recreated_start(&a, &me, &mesh, &cfg, &cursors).await;
    first.shutdown().await;
    let restarted = Arc::new(MemoryCursorStore::new());
    let durable = cursors.durable_cursors();
    assert_eq!(durable.len(), 1, "{durable:?}");
    for cursor in durable {
        assert_eq!(cursor.stream_id, StreamId::ZERO, "resumed at the new start");
        restarted.set(cursor).await.unwrap();
    }

    a.put_local("lost", "v");
    replication_testkit::MemoryPeer::new("a", a.clone()).reset_stream();
    a.put_local("later", "v");
    let (mut second, _t2) = engine(me.clone(), cfg, &mesh, restarted);
    second.start().await.unwrap();
    eventually("the later write arrives", || me.item("later").is_some()).await;
    eventually("and the one the lost stream held", || {
        me.item("lost").is_some()
    })
    .await;
    assert_eq!(me.items(), a.items());
    second.shutdown().await;
}

/// As above, while the engine runs: it resumed at the start of a recreated stream and,
/// before it read anything of it, lost the peer; meanwhile the stream took a write and was
/// recreated again. Reading from `0-0` after the outage cannot prove nothing was lost, so
/// the tailer reports a gap and one repair brings the write.
#[tokio::test(start_paused = true)]
async fn a_stream_recreated_again_during_an_outage_after_a_recreation_is_repaired() {
    use replication_testkit::MemoryPeer;

    let (a, me) = (MemoryStore::new(), MemoryStore::new());
    let mesh = MemoryMesh::new(&[("a", &a)]);
    let cursors = Arc::new(MemoryCursorStore::new());
    let cfg = gaps_only("a");
    let (mut node, _tx) = resumed_at_a_recreated_start(&a, &me, &mesh, &cfg, &cursors).await;
    let link = mesh.last_peer("a").unwrap();
    link.set_fail_all(true);
    eventually("a read of the stream fails", || {
        node.peer_manager().health()[0].last_error.is_some()
    })
    .await;
    a.put_local("lost", "v");
    MemoryPeer::new("a", a.clone()).reset_stream();
    a.put_local("later", "v");
    link.set_fail_all(false);
    eventually("the later write arrives", || me.item("later").is_some()).await;
    eventually("and the one the lost stream held", || {
        me.item("lost").is_some()
    })
    .await;
    assert_eq!(me.items(), a.items());
    node.shutdown().await;
}

/// One peer item the local store refuses for good: repair cycles still complete (the item
/// is skipped and counted), so the rest is repaired and tombstones are collected again.
#[tokio::test(start_paused = true)]
async fn an_item_the_store_refuses_does_not_stop_repair_or_tombstone_collection() {
    let (a, me) = (MemoryStore::new(), MemoryStore::new());
    a.put_local("bad", "refused here");
    a.put_local("good", "v");
    me.put_local("gone", "x");
    me.delete_local("gone");
    me.refuse_key("bad");
    let mesh = MemoryMesh::new(&[("a", &a)]);
    let mut cfg = config("me", &["a"]);
    cfg.settings.hot_path.enabled = false;
    cfg.settings.cold_path.interval = Duration::from_secs(1);
    cfg.settings.tombstones.retention = Duration::ZERO;
    let (recorder, recorded) = recorder();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let (mut engine, _tx) = engine(me.clone(), cfg, &mesh, Arc::new(MemoryCursorStore::new()));
    engine.start().await.unwrap();
    eventually("the rest is repaired", || me.item("good").is_some()).await;
    eventually("the tombstone is collected", || {
        me.tombstone("gone").is_none()
    })
    .await;
    assert!(recorded.counter(names::REPAIR_ITEMS_REFUSED, &[("peer", "a")]) >= 1);
    assert_eq!(
        recorded.counter(
            names::REPAIR_CYCLES,
            &[("peer", "a"), ("outcome", "failed")]
        ),
        0
    );
    engine.shutdown().await;
}

/// Wall-clock milliseconds, the clock repair cycles are timed by.
fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A delete made a minute ago elsewhere reaches us only now, after the peer's last
/// completed cycle: that cycle cannot have seen it, so the tombstone must stay until a
/// cycle that starts after we recorded it completes (the peer still holds the key, so
/// none does) and the old item must never come back from the peer.
#[tokio::test(start_paused = true)]
async fn a_delete_that_arrives_late_is_not_collected_before_the_peer_has_seen_it() {
    use replication_engine::{Change, SyncItem, Tombstone};

    let me = MemoryStore::with_clock(wall_ms);
    let peer = MemoryStore::new();
    let item = SyncItem::new("k", b"old".to_vec(), 1, 1);
    me.apply_change(Change::Put(item.clone())).unwrap();
    peer.apply_change(Change::Put(item)).unwrap();
    let mesh = MemoryMesh::new(&[("p", &peer)]);
    let mut cfg = config("me", &["p"]);
    cfg.settings.hot_path.enabled = false;
    cfg.settings.cold_path.interval = Duration::from_secs(1);
    cfg.settings.tombstones.retention = Duration::ZERO;
    let (recorder, recorded) = recorder();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let (mut engine, _tx) = engine(me.clone(), cfg, &mesh, Arc::new(MemoryCursorStore::new()));
    engine.start().await.unwrap();
    let in_sync = || {
        recorded.counter(
            names::REPAIR_CYCLES,
            &[("peer", "p"), ("outcome", "in_sync")],
        )
    };
    eventually("a cycle finds the trees equal", || in_sync() >= 1).await;

    me.apply_change(Change::Delete {
        key: "k".into(),
        tombstone: Tombstone {
            version: 2,
            deleted_at: wall_ms() - 60_000,
        },
    })
    .unwrap();
    let cycles = recorded.counter(names::REPAIR_CYCLES, &[("peer", "p")]);
    eventually("several more cycles ran", || {
        recorded.counter(names::REPAIR_CYCLES, &[("peer", "p")]) >= cycles + 4
    })
    .await;
    engine.shutdown().await;
    assert!(
        me.item("k").is_none(),
        "the deleted item came back from the peer"
    );
    assert!(
        me.tombstone("k").is_some(),
        "collected before the peer saw the delete"
    );
}

/// The last repair cycle of `peer` finished (completed or not) after `after_ms`.
fn repaired_since(
    engine: &ReplicationEngine<MemoryStore>,
    peer: &str,
    after_ms: i64,
    completed: bool,
) -> bool {
    engine
        .peer_manager()
        .health()
        .into_iter()
        .find(|p| p.node_id == peer)
        .and_then(|p| p.last_repair)
        .is_some_and(|r| r.finished_at_ms > after_ms && (r.completed || !completed))
}

/// Waits until the wall clock has passed `ms`.
async fn wall_past(ms: i64) {
    eventually("the wall clock passes the mark", || wall_ms() > ms).await;
}

/// A peer whose settings are reloaded keeps counting for tombstone collection while its
/// tasks drain: another peer's completed cycles alone must not collect a tombstone the
/// reloading peer has not been seen to apply.
#[tokio::test]
async fn a_peer_reloading_stays_in_the_collection_horizon_while_it_drains() {
    use replication_core::CdcEvent;
    use replication_engine::{PeerConfig, PeerConnector, Settings};
    use replication_testkit::{Gate, GatedCall, GatedPeer, MemoryPeer};

    let (a, b) = (MemoryStore::new(), MemoryStore::new());
    let me = MemoryStore::with_clock(wall_ms);
    me.put_local("k", "v");
    b.apply_change(replication_engine::Change::Put(me.item("k").unwrap()))
        .unwrap();
    // b's `read_tombstones` never answers once the gate holds (a peer call in flight).
    let gate = Gate::new(GatedCall::ReadTombstones, false);
    let connector: Arc<dyn PeerConnector> = {
        let (a, b, gate) = (a.clone(), b.clone(), gate.clone());
        Arc::new(move |peer: &PeerConfig, _: &Settings| {
            let backend: Arc<dyn replication_engine::PeerBackend> = if peer.node_id == "a" {
                Arc::new(MemoryPeer::new("a", a.clone()))
            } else {
                Arc::new(GatedPeer::new(
                    MemoryPeer::new("b", b.clone()),
                    gate.clone(),
                ))
            };
            Ok(backend)
        })
    };
    let mut cfg = config("me", &["a", "b"]);
    cfg.settings.cold_path.interval = Duration::from_millis(300);
    cfg.settings.tombstones.retention = Duration::ZERO;
    cfg.settings.shutdown_timeout = Duration::from_secs(4);
    let (mut engine, tx) = common::engine_with(
        &me,
        cfg.clone(),
        connector,
        Arc::new(MemoryCursorStore::new()),
    );
    engine.start().await.unwrap();
    let started = wall_ms();
    eventually("both peers completed a cycle", || {
        repaired_since(&engine, "a", started, true) && repaired_since(&engine, "b", started, true)
    })
    .await;
    let seen = engine
        .peer_manager()
        .health()
        .into_iter()
        .filter_map(|p| p.last_repair.map(|r| r.finished_at_ms))
        .max()
        .unwrap();
    wall_past(seen).await;
    me.delete_local("k");
    let deleted = wall_ms();
    // b still holds k: its cycles no longer complete. a completes (it never had k).
    eventually("a completed a cycle since", || {
        repaired_since(&engine, "a", deleted, true)
    })
    .await;
    assert!(me.tombstone("k").is_some(), "b has not seen the delete yet");

    // b's hot path gets a batch and hangs in the middle of it, then b is reloaded.
    gate.hold(true);
    MemoryPeer::new("b", b.clone()).append_event(&CdcEvent::Delete {
        key: "x".into(),
        stamp: None,
    });
    eventually("b's batch is in flight", || gate.held() > 0).await;
    let mut reloaded = cfg.clone();
    reloaded.peers[1].redis_url = "redis://user:secret@127.0.0.1:1".into();
    tx.send_replace(reloaded);
    let draining = wall_ms();
    eventually("a completes cycles while b drains", || {
        repaired_since(&engine, "a", draining + 600, true)
    })
    .await;
    assert!(
        me.tombstone("k").is_some(),
        "collected while the peer that has not seen it was draining"
    );
    gate.hold(false);
    engine.shutdown().await;
}

/// A connector that finds each peer's store by its URL, as a Redis connector finds a server.
fn by_url(stores: Vec<(&str, MemoryStore)>) -> Arc<dyn replication_engine::PeerConnector> {
    use replication_engine::{PeerConfig, Settings};
    let stores: Vec<(String, MemoryStore)> =
        stores.into_iter().map(|(u, s)| (u.to_owned(), s)).collect();
    Arc::new(move |peer: &PeerConfig, _: &Settings| {
        let store = stores
            .iter()
            .find(|(url, _)| *url == peer.redis_url)
            .map(|(_, s)| s.clone())
            .expect("a store at every URL the test configures");
        let backend: Arc<dyn replication_engine::PeerBackend> = Arc::new(
            replication_testkit::MemoryPeer::new(peer.node_id.clone(), store),
        );
        Ok(backend)
    })
}

/// A store whose clock starts at `at` ms and can be moved.
fn store_at(at: i64) -> (MemoryStore, Arc<std::sync::atomic::AtomicI64>) {
    use std::sync::atomic::{AtomicI64, Ordering};
    let now = Arc::new(AtomicI64::new(at));
    let clock = now.clone();
    (
        MemoryStore::with_clock(move || clock.fetch_add(1, Ordering::SeqCst)),
        now,
    )
}

/// Reloading a peer with a URL that names another server (another stream): its cursor in
/// the old stream means nothing there, so the new stream is read from its beginning.
#[tokio::test(start_paused = true)]
async fn a_reloaded_peer_that_names_another_stream_is_read_from_its_beginning() {
    use std::sync::atomic::Ordering;

    let (old, _) = store_at(5_000);
    for i in 0..5 {
        old.put_local(&format!("old.{i}"), "v");
    }
    let (new, new_clock) = store_at(1_000);
    for i in 0..5 {
        new.put_local(&format!("new.{i}"), "v");
    }
    // Its later entries have ids above the old stream's cursor.
    new_clock.store(9_000, Ordering::SeqCst);
    for i in 5..10 {
        new.put_local(&format!("new.{i}"), "v");
    }
    let me = MemoryStore::new();
    let connector = by_url(vec![
        ("redis://old:6379", old.clone()),
        ("redis://new:6379", new.clone()),
    ]);
    let mut cfg = config("me", &[]);
    cfg.peers = vec![replication_engine::PeerConfig::new("b", "redis://old:6379")];
    cfg.settings.cold_path.enabled = false;
    let (mut engine, tx) = common::engine_with(
        &me,
        cfg.clone(),
        connector,
        Arc::new(MemoryCursorStore::new()),
    );
    engine.start().await.unwrap();
    eventually("the old stream is read", || me.len() == 5).await;
    let mut moved = cfg.clone();
    moved.peers[0].redis_url = "redis://new:6379".into();
    tx.send_replace(moved);
    eventually("the new stream is read whole", || me.len() == 15).await;
    engine.shutdown().await;
}

/// Reloading a peer with a prefix that names another node's keys: the completed cycles of
/// the old one say nothing about the new one, so they no longer count for tombstone
/// collection; a tombstone the new one has not seen stays, and the old item it still holds
/// never comes back.
#[tokio::test]
async fn a_reloaded_peer_that_names_another_stream_loses_its_sync_evidence() {
    let me = MemoryStore::with_clock(wall_ms);
    let (old, new) = (MemoryStore::new(), MemoryStore::new());
    let item = me.put_local("k", "v");
    new.apply_change(replication_engine::Change::Put(item))
        .unwrap();
    me.delete_local("k");
    let deleted = wall_ms();
    let connector: Arc<dyn replication_engine::PeerConnector> = {
        let (old, new) = (old.clone(), new.clone());
        Arc::new(
            move |peer: &replication_engine::PeerConfig, _: &replication_engine::Settings| {
                let store = if peer.redis_prefix == "old:" {
                    old.clone()
                } else {
                    new.clone()
                };
                let backend: Arc<dyn replication_engine::PeerBackend> =
                    Arc::new(replication_testkit::MemoryPeer::new("b", store));
                Ok(backend)
            },
        )
    };
    let mut cfg = config("me", &["b"]);
    cfg.peers[0].redis_prefix = "old:".into();
    cfg.settings.hot_path.enabled = false;
    cfg.settings.cold_path.interval = Duration::from_millis(300);
    // Collection waits for both: every peer's evidence, and three seconds of age.
    cfg.settings.tombstones.retention = Duration::from_secs(3);
    let (mut engine, tx) = common::engine_with(
        &me,
        cfg.clone(),
        connector,
        Arc::new(MemoryCursorStore::new()),
    );
    engine.start().await.unwrap();
    // The old peer (which never had k) completes a cycle that started after the delete.
    eventually("the old peer completed a cycle", || {
        repaired_since(&engine, "b", deleted, true)
    })
    .await;
    let first = engine.peer_manager().health()[0]
        .last_repair
        .clone()
        .unwrap()
        .finished_at_ms;
    eventually("and another", || repaired_since(&engine, "b", first, true)).await;
    let mut moved = cfg.clone();
    moved.peers[0].redis_prefix = "new:".into();
    tx.send_replace(moved);
    // Past the retention: only the new peer's evidence could allow collection now.
    wall_past(deleted + 4_000).await;
    let cycles_done = wall_ms();
    eventually("the new peer's cycles ran", || {
        repaired_since(&engine, "b", cycles_done, false)
    })
    .await;
    engine.shutdown().await;
    assert!(
        me.item("k").is_none(),
        "the old item came back from a peer that never saw the delete"
    );
    assert!(me.tombstone("k").is_some());
}
