//! What an operator sees and does, over in-memory stores and peers: pausing and resuming a
//! peer (also across a reload that reconnects it), asking for a repair now, the health
//! figures (applied, rejected by reason, gaps, bytes read, last repair) and the status
//! sampler that keeps history and gauges current without anyone calling `health_check()`.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::config;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use replication_engine::metrics as names;
use replication_engine::{
    ControlError, MemoryCursorStore, PeerBackend, PeerHealth, RepairTrigger, ReplicationEngine,
    ReplicationEngineConfig, SAMPLE_EVERY,
};
use replication_testkit::{
    eventually, eventually_some_async, Gate, GatedCall, GatedPeer, MemoryMesh, MemoryPeer,
    MemoryStore,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

type Engine = ReplicationEngine<MemoryStore>;

fn engine(
    store: &MemoryStore,
    config: ReplicationEngineConfig,
    mesh: &MemoryMesh,
) -> (Engine, watch::Sender<ReplicationEngineConfig>) {
    let (tx, rx) = watch::channel(config.clone());
    let engine = ReplicationEngine::builder(config, rx)
        .sync_engine(Arc::new(store.clone()))
        .peer_connector(Arc::new(mesh.connector()))
        .cursor_store(Arc::new(MemoryCursorStore::new()))
        .build();
    (engine, tx)
}

async fn peer(engine: &Engine, id: &str) -> PeerHealth {
    let health = engine.health_check().await;
    health.peers.into_iter().find(|p| p.node_id == id).unwrap()
}

/// Polls the health of peer `id` until `check` holds, and returns it.
async fn peer_until(
    engine: &Engine,
    id: &str,
    what: &str,
    check: impl Fn(&PeerHealth) -> bool,
) -> PeerHealth {
    let check = &check;
    eventually_some_async(what, move || async move {
        let health = peer(engine, id).await;
        check(&health).then_some(health)
    })
    .await
}

fn stream_reads(mesh: &MemoryMesh, id: &str) -> u64 {
    mesh.last_peer(id).unwrap().counters().stream_reads
}

#[tokio::test(start_paused = true)]
async fn a_paused_peer_is_not_read_until_resumed_and_a_reload_keeps_the_pause() {
    let (a, b, me) = (MemoryStore::new(), MemoryStore::new(), MemoryStore::new());
    let mesh = MemoryMesh::new(&[("a", &a), ("b", &b)]);
    let cfg = config("me", &["a", "b"]);
    let (mut engine, tx) = engine(&me, cfg.clone(), &mesh);
    engine.start().await.unwrap();
    a.put_local("a.before", "1");
    eventually("a's first write arrives", || me.item("a.before").is_some()).await;

    assert_eq!(engine.peer_manager().pause("a"), Ok(true));
    assert_eq!(
        engine.peer_manager().pause("a"),
        Ok(false),
        "already paused"
    );
    assert!(peer(&engine, "a").await.paused);
    a.put_local("a.paused", "1");
    b.put_local("b.meanwhile", "1");
    eventually("b still replicates", || me.item("b.meanwhile").is_some()).await;
    // A running tailer reads every block timeout (50 ms); a stopped one never again.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let reads = stream_reads(&mesh, "a");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        stream_reads(&mesh, "a"),
        reads,
        "no stream read while paused"
    );
    assert!(me.item("a.paused").is_none());
    let health = engine.health_check().await;
    assert!(health.healthy, "a pause is not a fault: {health:?}");
    assert_eq!(
        engine.peer_manager().request_repair("a"),
        Err(ControlError::PeerPaused { peer: "a".into() })
    );

    // A reload that reconnects `a` (its URL changed) keeps it paused.
    let mut reloaded = cfg.clone();
    reloaded.peers[0].redis_url = "redis://127.0.0.1:2".into();
    tx.send(reloaded).unwrap();
    eventually("a was reconnected by the reload", || {
        mesh.connects("a") == 2
    })
    .await;
    let a_health = peer(&engine, "a").await;
    assert!(a_health.paused, "{a_health:?}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        stream_reads(&mesh, "a"),
        0,
        "the new connection is not read either"
    );
    assert!(me.item("a.paused").is_none());

    assert_eq!(engine.peer_manager().resume("a"), Ok(true));
    eventually("a's paused write arrives after resume", || {
        me.item("a.paused").is_some()
    })
    .await;
    assert!(!peer(&engine, "a").await.paused);
    assert_eq!(
        engine.peer_manager().pause("nobody"),
        Err(ControlError::UnknownPeer {
            peer: "nobody".into()
        })
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn an_operator_repair_runs_at_once_even_with_periodic_repair_off() {
    let (a, b, me) = (MemoryStore::new(), MemoryStore::new(), MemoryStore::new());
    let mesh = MemoryMesh::new(&[("a", &a), ("b", &b)]);
    let mut cfg = config("me", &["a", "b"]);
    cfg.settings.cold_path.enabled = false;
    cfg.settings.hot_path.enabled = false; // only a repair can bring anything
    cfg.peers[1].enabled = false;
    for i in 0..3 {
        a.put_local(&format!("k.{i}"), "content");
    }
    let (mut engine, _tx) = engine(&me, cfg, &mesh);
    engine.start().await.unwrap();
    assert!(peer(&engine, "a").await.last_repair.is_none());

    engine.peer_manager().request_repair("a").unwrap();
    eventually("the requested cycle copies the items", || me.len() == 3).await;
    let a_health = peer_until(&engine, "a", "the cycle is recorded", |p| {
        p.last_repair.is_some()
    })
    .await;
    let repair = a_health.last_repair.clone().unwrap();
    assert_eq!(repair.trigger, RepairTrigger::Operator);
    assert_eq!(repair.cycle, 1);
    assert_eq!(a_health.repairs_run, 1);
    assert!(!repair.in_sync && repair.completed, "{repair:?}");
    assert_eq!(repair.keys_different, 3);
    assert_eq!(repair.items_fetched, 3);
    assert_eq!(repair.items_applied, 3);
    assert_eq!(repair.bytes_fetched, 3 * "content".len() as u64);
    assert!(repair.finished_at_ms >= repair.started_at_ms);

    assert_eq!(
        engine.peer_manager().request_repair("b"),
        Err(ControlError::PeerDisabled { peer: "b".into() })
    );
    assert_eq!(
        engine.peer_manager().request_repair("c"),
        Err(ControlError::UnknownPeer { peer: "c".into() })
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn health_counts_applied_rejected_gaps_and_bytes_read() {
    let (a, me) = (MemoryStore::new(), MemoryStore::new());
    let mesh = MemoryMesh::new(&[("a", &a)]);
    let cursors = Arc::new(MemoryCursorStore::new());
    let start = |cursors: Arc<MemoryCursorStore>| {
        let (_tx, rx) = watch::channel(config("me", &["a"]));
        ReplicationEngine::builder(config("me", &["a"]), rx)
            .sync_engine(Arc::new(me.clone()))
            .peer_connector(Arc::new(mesh.connector()))
            .cursor_store(cursors)
            .build()
    };
    let content = "x".repeat(600); // compressible: travels zstd-compressed
    a.put_local("k.1", content.as_str());
    a.put_local("k.2", "short");
    let writer = MemoryPeer::new("a", a.clone());
    writer.append_raw(vec![(Bytes::from("op"), Bytes::from("PUT"))]);
    let mut engine = start(cursors.clone());
    engine.start().await.unwrap();
    let health = peer_until(&engine, "a", "the bad entry is counted", |p| {
        !p.rejected.is_empty()
    })
    .await;
    assert_eq!(health.applied_total, 2, "{health:?}");
    assert_eq!(health.rejected.get("missing_field"), Some(&1), "{health:?}");
    assert_eq!(health.bytes_read.content, 605);
    assert!(
        health.bytes_read.wire > 0 && health.bytes_read.wire < health.bytes_read.content,
        "{:?}",
        health.bytes_read
    );
    assert_eq!(health.gaps.trimmed, 0);
    engine.shutdown().await;

    // While the engine is down, entries are written and trimmed away: the restarted
    // engine finds the gap past its cursor and counts it.
    for i in 0..10 {
        a.put_local(&format!("missed.{i}"), "v");
    }
    writer.trim_to(2);
    let mut engine = start(cursors);
    engine.start().await.unwrap();
    let health = peer_until(&engine, "a", "the gap is counted", |p| p.gaps.trimmed > 0).await;
    assert_eq!(health.gaps.recreated, 0);
    assert!(health.gaps.last_at_ms.is_some());
    eventually("repair brings what was trimmed", || me.len() == 12).await;
    let health = peer_until(&engine, "a", "the gap's repair is recorded", |p| {
        p.last_repair.is_some()
    })
    .await;
    assert_eq!(
        health.last_repair.unwrap().trigger,
        RepairTrigger::Gap,
        "the periodic interval is an hour: only the gap started it"
    );
    engine.shutdown().await;
}

/// Every gauge's value, from one snapshot (a snapshot drains what it reads).
fn gauges(snapshotter: &Snapshotter) -> HashMap<(String, Vec<(String, String)>), f64> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| match value {
            DebugValue::Gauge(g) => {
                let key = key.key();
                let labels = key
                    .labels()
                    .map(|l| (l.key().to_owned(), l.value().to_owned()))
                    .collect();
                Some(((key.name().to_owned(), labels), g.into_inner()))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_sampler_keeps_history_and_gauges_without_health_checks() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let (a, me) = (MemoryStore::new(), MemoryStore::new());
    let mesh = MemoryMesh::new(&[("a", &a)]);
    let (mut engine, _tx) = engine(&me, config("me", &["a"]), &mesh);
    engine.start().await.unwrap();
    a.put_local("k", "v");
    eventually("k arrives", || me.item("k").is_some()).await;
    engine.peer_manager().pause("a").unwrap();
    tokio::time::sleep(SAMPLE_EVERY * 3).await;

    let history = engine.history();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].node_id, "a");
    assert!(history[0].samples.len() >= 3, "{history:?}");
    assert!(history[0].samples.iter().any(|s| s.lag_ms.is_some()));
    // No health_check() call so far: the sampler published these.
    let gauges = gauges(&snapshotter);
    let peer_a = |name: &str| gauges.get(&(name.to_owned(), vec![("peer".into(), "a".into())]));
    assert_eq!(peer_a(names::PEER_PAUSED), Some(&1.0), "{gauges:?}");
    assert_eq!(peer_a(names::PEER_CONNECTED), Some(&1.0), "{gauges:?}");
    assert_eq!(
        gauges.get(&(names::SYNC_ENGINE_CIRCUIT.to_owned(), vec![])),
        Some(&0.0)
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn a_peer_being_reconnected_stays_in_health_and_can_be_paused() {
    let (a, me) = (MemoryStore::new(), MemoryStore::new());
    // Every `close` waits until the test lets it finish: a reconnect is then caught half
    // way, with the old connection closing.
    let gate = Gate::new(GatedCall::Close, true);
    let connector = {
        let (a, gate) = (a.clone(), gate.clone());
        Arc::new(
            move |peer: &replication_engine::PeerConfig, _: &replication_engine::Settings| {
                Ok(Arc::new(GatedPeer::new(
                    MemoryPeer::new(peer.node_id.clone(), a.clone()),
                    gate.clone(),
                )) as Arc<dyn PeerBackend>)
            },
        )
    };
    let cfg = config("me", &["a"]);
    let (mut engine, tx) = common::engine_with(
        &me,
        cfg.clone(),
        connector,
        Arc::new(MemoryCursorStore::new()),
    );
    engine.start().await.unwrap();
    let mut reloaded = cfg;
    reloaded.peers[0].redis_url = "redis://127.0.0.1:2".into();
    tx.send(reloaded).unwrap();
    gate.reached().await;

    // The old connection is closing: the peer is still configured, and still controllable.
    let health = engine.health_check().await;
    assert_eq!(health.peers_total, 1, "{health:?}");
    assert_eq!(engine.peer_manager().pause("a"), Ok(true));
    gate.release_one();
    let a_health = peer_until(&engine, "a", "the new connection is up", |p| p.connected).await;
    assert!(a_health.paused, "{a_health:?}");
    gate.release_one(); // the shutdown's close
    engine.shutdown().await;
}
