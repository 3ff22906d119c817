//! A mixed mesh: node 0 on our node store, nodes 1 and 2 on sync-engine (each its own
//! redis-server and SQLite file). Every node writes concurrently: puts, new versions of
//! unchanged content, and deletes. Then node 2 stops, the others write on and their CDC
//! streams are trimmed past node 2's cursors; node 2 restarts (sync-engine and replication
//! engine, cursors from their SQLite file). All three must end with one Merkle root and every
//! key holding the conflict-order winner. The echo traffic sync-engine adds is measured.

mod support;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use replication_core::{SyncEngineRef, SyncError};
use replication_engine::{
    CursorStore, PeerConfig, ReplicationEngine, ReplicationEngineConfig, SqliteCursorStore,
};
use replication_node::{NodeStore, NodeStoreConfig};
use replication_sync_engine::SyncEngineStore;
use replication_testkit::{eventually_async, RedisServer};
use replication_tests::mesh::{fast_settings, observe};
use replication_tests::model::show;
use replication_tests::{workload, Model};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::SyncNode;
use tokio::sync::watch;

const SEED: u64 = 0x5e_2026;
const KEYS: usize = 24;
const OPS_PER_NODE: usize = 150;

/// Two-level ids (`m0.k0` ...): a real tree, and no id that is also a parent (sync-engine
/// loses the leaf of such an id, docs/PROTOCOL.md).
fn keys() -> Vec<String> {
    (0..KEYS).map(|i| format!("m{}.k{i}", i % 4)).collect()
}

/// What a node's local writes go through.
#[derive(Clone)]
enum Local {
    Node(NodeStore),
    SyncEngine(Arc<SyncEngineStore>),
}

impl Local {
    async fn content_of(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        match self {
            Local::Node(store) => store
                .get_item(key)
                .await
                .map(|item| item.map(|i| i.content))
                .map_err(|e| e.to_string()),
            Local::SyncEngine(store) => store.get(key).await.map_err(|e| e.to_string()),
        }
    }

    async fn put(&self, model: &Model, key: &str, content: Vec<u8>) -> Result<(), String> {
        match self {
            Local::Node(store) => workload::put(store, model, key, content).await,
            Local::SyncEngine(store) => {
                let item = retry(|| store.put(key, content.clone())).await?;
                model.record(key, item.stamp());
                Ok(())
            }
        }
    }

    /// A local delete; true when the key existed (and so a DEL entry was appended).
    async fn delete(&self, model: &Model, key: &str) -> Result<bool, String> {
        match self {
            Local::Node(store) => delete_recorded(store, model, key).await,
            Local::SyncEngine(store) => delete_recorded(&**store, model, key).await,
        }
    }

    async fn root(&self) -> Result<Option<String>, String> {
        match self {
            Local::Node(store) => store.merkle_root_hex().await.map_err(|e| e.to_string()),
            Local::SyncEngine(store) => store
                .get_merkle_root()
                .await
                .map(|root| root.map(hex))
                .map_err(|e| e.to_string()),
        }
    }
}

fn hex(hash: [u8; 32]) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// The repair cycles `engine` has run with its least repaired peer.
async fn repairs_run<S: SyncEngineRef>(engine: &ReplicationEngine<S>) -> u64 {
    let health = engine.health_check().await;
    health
        .peers
        .iter()
        .map(|p| p.repairs_run)
        .min()
        .unwrap_or(0)
}

/// Retries a local write while it fails with a retriable error, for up to 10 s.
async fn retry<T, F, Fut>(mut op: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SyncError>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match op().await {
            Ok(value) => return Ok(value),
            Err(e) if e.is_retriable() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// A local delete through `store`, its tombstone recorded in `model`.
async fn delete_recorded<S: SyncEngineRef>(
    store: &S,
    model: &Model,
    key: &str,
) -> Result<bool, String> {
    let existed = retry(|| store.delete(key.to_owned())).await?;
    if existed {
        let tombstone = store
            .get_tombstones(&[key.to_owned()])
            .await
            .map_err(|e| e.to_string())?
            .remove(0);
        // A replicated write may already have replaced it: then that write is in the
        // model already.
        if let Some(t) = tombstone {
            model.record(key, t.stamp());
        }
    }
    Ok(existed)
}

/// Counts of one node's local writes (each appends one entry to its CDC stream).
#[derive(Default)]
struct Writes {
    puts: AtomicU64,
    same_content: AtomicU64,
    deletes: AtomicU64,
}

impl Writes {
    fn total(&self) -> u64 {
        self.puts.load(Ordering::Relaxed)
            + self.same_content.load(Ordering::Relaxed)
            + self.deletes.load(Ordering::Relaxed)
    }
}

/// `ops` random local writes: 20% deletes, 20% new versions of the content the node holds
/// (when it holds the key), the rest new content.
async fn write(
    local: Local,
    model: Model,
    writes: Arc<Writes>,
    ops: usize,
    mut rng: StdRng,
) -> Result<(), String> {
    let keys = keys();
    for _ in 0..ops {
        let key = &keys[rng.random_range(0..keys.len())];
        let roll = rng.random_range(0..100);
        if roll < 20 {
            if local.delete(&model, key).await? {
                writes.deletes.fetch_add(1, Ordering::Relaxed);
            }
        } else if roll < 40 {
            match local.content_of(key).await? {
                Some(content) => {
                    local.put(&model, key, content).await?;
                    writes.same_content.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    local.put(&model, key, workload::content(&mut rng)).await?;
                    writes.puts.fetch_add(1, Ordering::Relaxed);
                }
            }
        } else {
            local.put(&model, key, workload::content(&mut rng)).await?;
            writes.puts.fetch_add(1, Ordering::Relaxed);
        }
        let pause = rng.random_range(0..=2_000u64);
        tokio::time::sleep(Duration::from_micros(pause)).await;
    }
    Ok(())
}

/// The mesh's addresses: node i is `(id, redis url, prefix)`.
fn engine_config(i: usize, nodes: &[(String, String, String)]) -> ReplicationEngineConfig {
    let mut config = ReplicationEngineConfig::new(nodes[i].0.clone());
    for (j, (id, url, prefix)) in nodes.iter().enumerate() {
        if j != i {
            let mut peer = PeerConfig::new(id.clone(), url.clone());
            peer.redis_prefix = prefix.clone();
            config.peers.push(peer);
        }
    }
    fast_settings(&mut config.settings, true, Duration::from_secs(1));
    config
}

/// A replication engine over `store`, its config channel kept alive beside it.
struct Running<S: SyncEngineRef> {
    engine: ReplicationEngine<S>,
    _config: watch::Sender<ReplicationEngineConfig>,
}

async fn start_engine<S: SyncEngineRef>(
    config: ReplicationEngineConfig,
    store: Arc<S>,
    cursors: Arc<dyn CursorStore>,
) -> Running<S> {
    let (tx, rx) = watch::channel(config.clone());
    let mut engine = ReplicationEngine::builder(config, rx)
        .sync_engine(store)
        .cursor_store(cursors)
        .build();
    engine.start().await.expect("starting the engine");
    Running {
        engine,
        _config: tx,
    }
}

/// Entries ever appended to a node's CDC stream (`XINFO STREAM` entries-added).
async fn entries_added(url: &str, prefix: &str) -> u64 {
    let mut conn = redis::Client::open(url)
        .expect("a valid URL")
        .get_multiplexed_async_connection()
        .await
        .expect("connecting");
    let info: redis::Value = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(replication_core::WireKeys::new(prefix).cdc())
        .query_async(&mut conn)
        .await
        .expect("XINFO STREAM");
    let redis::Value::Map(pairs) = info else {
        let redis::Value::Array(flat) = info else {
            panic!("XINFO STREAM reply: {info:?}");
        };
        let mut it = flat.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            if matches!(&k, redis::Value::BulkString(b) if b == b"entries-added") {
                return redis::from_redis_value(v).expect("an integer");
            }
        }
        panic!("no entries-added in XINFO STREAM");
    };
    for (k, v) in pairs {
        if matches!(&k, redis::Value::BulkString(b) if b == b"entries-added") {
            return redis::from_redis_value(v).expect("an integer");
        }
    }
    panic!("no entries-added in XINFO STREAM");
}

async fn trim(url: &str, prefix: &str, keep: u64) {
    let mut conn = redis::Client::open(url)
        .expect("a valid URL")
        .get_multiplexed_async_connection()
        .await
        .expect("connecting");
    let _: u64 = redis::cmd("XTRIM")
        .arg(replication_core::WireKeys::new(prefix).cdc())
        .arg("MAXLEN")
        .arg(keep)
        .query_async(&mut conn)
        .await
        .expect("XTRIM");
}

/// Every node holds the model's winner for every key; the first difference, described.
async fn check(locals: &[(&str, Local)], model: &Model) -> Result<(), String> {
    for (key, winner) in model.expected() {
        for (id, local) in locals {
            let held = match local {
                Local::Node(store) => observe(store, &key).await?,
                Local::SyncEngine(store) => observe(&**store, &key).await?,
            };
            if !held.satisfies(&winner) {
                return Err(format!(
                    "key {key:?}: model expects {}, {id} holds {held}",
                    show(&winner)
                ));
            }
        }
    }
    Ok(())
}

async fn roots(locals: &[(&str, Local)]) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for (_, local) in locals {
        out.push(
            local
                .root()
                .await
                .unwrap_or_else(|e| Some(format!("unreadable: {e}"))),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_sync_engine_nodes_and_a_node_store_converge_on_the_conflict_order() {
    let node_redis = RedisServer::builder()
        .start()
        .expect("starting redis-server (install it or run `cargo xtask test`)");
    let node_store = NodeStore::connect(NodeStoreConfig::new(node_redis.url()).with_prefix("n0:"))
        .await
        .expect("connecting the node store");
    let se1 = SyncNode::start("n1:").await;
    let mut se2 = SyncNode::start("n2:").await;
    let addresses = vec![
        ("mixed-0".to_owned(), node_redis.url(), "n0:".to_owned()),
        ("mixed-1".to_owned(), se1.redis.url(), "n1:".to_owned()),
        ("mixed-2".to_owned(), se2.redis.url(), "n2:".to_owned()),
    ];
    let cursor_file = se2.dir.path().join("cursors.db");
    let open_cursors = || async {
        Arc::new(
            SqliteCursorStore::open(&cursor_file, Default::default())
                .await
                .expect("opening node 2's cursor file"),
        ) as Arc<dyn CursorStore>
    };
    let mut e0 = start_engine(
        engine_config(0, &addresses),
        Arc::new(node_store.clone()),
        Arc::new(replication_engine::MemoryCursorStore::new()),
    )
    .await;
    let mut e1 = start_engine(
        engine_config(1, &addresses),
        se1.store.clone(),
        Arc::new(replication_engine::MemoryCursorStore::new()),
    )
    .await;
    let mut e2 = start_engine(
        engine_config(2, &addresses),
        se2.store.clone(),
        open_cursors().await,
    )
    .await;

    let model = Model::new();
    let writes: Vec<Arc<Writes>> = (0..3).map(|_| Arc::new(Writes::default())).collect();
    let locals = |se2_store: Arc<SyncEngineStore>| {
        vec![
            Local::Node(node_store.clone()),
            Local::SyncEngine(se1.store.clone()),
            Local::SyncEngine(se2_store),
        ]
    };

    // Phase 1: everyone writes at once.
    let mut handles = Vec::new();
    for (i, local) in locals(se2.store.clone()).into_iter().enumerate() {
        let rng = StdRng::seed_from_u64(SEED + i as u64);
        handles.push(tokio::spawn(write(
            local,
            model.clone(),
            writes[i].clone(),
            OPS_PER_NODE,
            rng,
        )));
    }
    workload::join_all(handles, &format!("seed {SEED:#x}, phase 1")).await;

    // Phase 2: node 2 stops; the others write on, and their streams are trimmed past node
    // 2's cursors.
    e2.engine.shutdown().await;
    se2.stop().await;
    let mut handles = Vec::new();
    for (i, local) in locals(se2.store.clone()).into_iter().enumerate().take(2) {
        let rng = StdRng::seed_from_u64(SEED + 10 + i as u64);
        handles.push(tokio::spawn(write(
            local,
            model.clone(),
            writes[i].clone(),
            OPS_PER_NODE / 2,
            rng,
        )));
    }
    workload::join_all(handles, &format!("seed {SEED:#x}, phase 2")).await;
    trim(&addresses[0].1, "n0:", 3).await;
    trim(&addresses[1].1, "n1:", 3).await;
    // Node 2's saved cursors now point before what the streams still hold.
    let saved = open_cursors().await;
    let cursors = saved.load_all().await.expect("reading node 2's cursors");
    saved.close().await.expect("closing node 2's cursor file");
    for (peer_id, url, prefix) in &addresses[..2] {
        let cursor = cursors
            .iter()
            .find(|c| &c.peer_id == peer_id)
            .expect("node 2 saved a cursor for each peer");
        let position = cursor
            .entries_added
            .expect("cursors carry the stream position");
        let added = entries_added(url, prefix).await;
        assert!(
            added - position > 3,
            "the trim must take entries node 2 has not read ({peer_id}: read {position} of {added})"
        );
    }

    // Phase 3: node 2 comes back (new sync-engine on the same Redis and SQLite file, new
    // replication engine on the same cursor file): the gap sends it to repair.
    se2.restart().await;
    e2 = start_engine(
        engine_config(2, &addresses),
        se2.store.clone(),
        open_cursors().await,
    )
    .await;
    let all = locals(se2.store.clone());
    let named: Vec<(&str, Local)> = ["node-store 0", "sync-engine 1", "sync-engine 2"]
        .into_iter()
        .zip(all)
        .collect();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let (converged, last) = loop {
        let r = roots(&named).await;
        let agree = r.windows(2).all(|w| w[0] == w[1]);
        let state = match check(&named, &model).await {
            Ok(()) if agree => break (true, String::new()),
            Ok(()) => format!("every key holds its winner, but the roots differ: {r:?}"),
            Err(diff) => diff,
        };
        if tokio::time::Instant::now() >= deadline {
            break (false, state);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(converged, "seed {SEED:#x}: not converged: {last}");
    // Stable: two more repair cycles on every engine change nothing (counted, not timed).
    let before = roots(&named).await;
    let ran = [
        repairs_run(&e0.engine).await,
        repairs_run(&e1.engine).await,
        repairs_run(&e2.engine).await,
    ];
    eventually_async("two more repair cycles on every engine", || async {
        repairs_run(&e0.engine).await >= ran[0] + 2
            && repairs_run(&e1.engine).await >= ran[1] + 2
            && repairs_run(&e2.engine).await >= ran[2] + 2
    })
    .await;
    assert_eq!(
        roots(&named).await,
        before,
        "seed {SEED:#x}: roots moved after convergence"
    );
    check(&named, &model).await.expect("still converged");

    // Echo traffic: a sync-engine node appends one entry per replicated put it applies
    // (its submit has no path to Redis that skips the stream); our node store appends none.
    let local: Vec<u64> = writes.iter().map(|w| w.total()).collect();
    let added = [
        entries_added(&addresses[0].1, "n0:").await,
        entries_added(&addresses[1].1, "n1:").await,
        entries_added(&addresses[2].1, "n2:").await,
    ];
    let changes: u64 = local.iter().sum();
    let echoes: Vec<u64> = added
        .iter()
        .zip(&local)
        .map(|(a, l)| a - l.min(a))
        .collect();
    assert_eq!(echoes[0], 0, "our node store never echoes");
    let foreign_puts = |i: usize| -> u64 {
        (0..3)
            .filter(|j| *j != i)
            .map(|j| {
                writes[j].puts.load(Ordering::Relaxed)
                    + writes[j].same_content.load(Ordering::Relaxed)
            })
            .sum()
    };
    for (i, echoed) in echoes.iter().enumerate().skip(1) {
        assert!(
            *echoed <= foreign_puts(i),
            "node {i} echoed {echoed} entries for {} puts by its peers: echoes must not feed on echoes",
            foreign_puts(i)
        );
    }
    for i in 0..3 {
        let read: u64 = (0..3).filter(|j| *j != i).map(|j| added[j]).sum();
        let elsewhere = changes - local[i];
        eprintln!(
            "echo: node {i}: {} local writes, {} entries appended ({} echoes); it reads {read} \
             entries for the {elsewhere} changes made on other nodes = {:.2} entries per change \
             (1.00 without echoes)",
            local[i],
            added[i],
            echoes[i],
            read as f64 / elsewhere as f64
        );
    }

    e0.engine.shutdown().await;
    e1.engine.shutdown().await;
    e2.engine.shutdown().await;
}
