//! N in-process nodes: each a private `redis-server`, a [`NodeStore`] over it (behind a
//! [`Gate`]) and a [`ReplicationEngine`] whose connection to every peer goes through its
//! own [`FaultProxy`], so any single link can be cut, delayed or blackholed. A node may
//! instead keep its data behind Sentinel or on a Redis Cluster ([`Backend`]); its peers
//! then read it through that deployment's URL, without a proxy.

use crate::backend::{Backend, NodeRedis};
use crate::gate::Gate;
use crate::model::{show, Model, Observed};
use crate::scenario::Scenario;
use replication_core::{LocalState, SyncEngineRef};
use replication_cursor::MemoryCursorStore;
use replication_engine::{PeerConfig, ReplicationEngine, ReplicationEngineConfig, Settings};
use replication_node::{NodeStore, NodeStoreConfig};
use replication_testkit::FaultProxy;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// The engine type every mesh node runs.
pub type Engine = ReplicationEngine<Gate<NodeStore>>;

/// How a mesh is built.
#[derive(Clone, Debug)]
pub struct MeshOptions {
    /// Nodes.
    pub nodes: usize,
    /// redis-servers keep an append-only file (data survives a restart).
    pub persistence: bool,
    /// Run the cold path (Merkle repair). Off in scenarios that must prove the hot path
    /// alone loses nothing (repair would hide a lost event).
    pub cold_path: bool,
    /// Cold-path interval.
    pub cold_interval: Duration,
    /// `settings.hot_path.max_content_bytes`.
    pub max_content_bytes: usize,
    /// Each node's Redis deployment (index by node; missing entries are single servers).
    pub backends: Vec<Backend>,
    /// `settings.tombstones.retention` (zero: collect as soon as every peer has seen it).
    pub tombstone_retention: Duration,
}

impl MeshOptions {
    /// `nodes` nodes, no persistence, cold path every second.
    pub fn new(nodes: usize) -> Self {
        Self {
            nodes,
            persistence: false,
            cold_path: true,
            cold_interval: Duration::from_secs(1),
            max_content_bytes: 16 * 1024 * 1024,
            backends: vec![Backend::Single; nodes],
            tombstone_retention: replication_core::TombstoneSettings::default().retention,
        }
    }
}

/// One node of the mesh.
pub struct Node {
    /// Node id (`{scenario}-{index}`).
    pub id: String,
    /// Key prefix of its store (`n{index}:`; `{n{index}}:` on a Cluster, whose keys must
    /// share one slot).
    pub prefix: String,
    /// Its own Redis.
    pub redis: NodeRedis,
    /// Its store, behind the gate the engine writes through.
    pub store: Arc<Gate<NodeStore>>,
    engine: Option<Engine>,
    _config_tx: Option<watch::Sender<ReplicationEngineConfig>>,
}

impl Node {
    /// The store for local writes (the workload writes here, not through the gate).
    pub fn local(&self) -> NodeStore {
        self.store.inner().clone()
    }

    /// The engine, while running.
    pub fn engine(&self) -> Option<&Engine> {
        self.engine.as_ref()
    }

    /// What this node holds for `key`.
    pub async fn observe(&self, key: &str) -> Result<Observed, String> {
        observe(&*self.store, key)
            .await
            .map_err(|e| format!("on {}: {e}", self.id))
    }

    /// Ids of every item the node's Redis holds (`KEYS`, test-sized data only), sorted.
    pub fn item_ids(&self) -> Result<Vec<String>, String> {
        let pattern = format!("{}*", self.prefix);
        let holder = self.redis.holder().map_err(|e| e.to_string())?;
        let reply = replication_testkit::resp::command_str(holder.addr(), &["KEYS", &pattern])
            .map_err(|e| e.to_string())?;
        let mut ids: Vec<String> = reply
            .items()
            .iter()
            .filter_map(replication_testkit::resp::Reply::text)
            .filter_map(|k| k.strip_prefix(&self.prefix).map(str::to_owned))
            .filter(|id| replication_core::wire_keys::reserved_by(id).is_none())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// The Merkle root in hex (`None` when empty or unreadable, with the reason).
    pub async fn root(&self) -> Result<Option<String>, String> {
        self.local()
            .merkle_root_hex()
            .await
            .map_err(|e| format!("root of {}: {e}", self.id))
    }
}

/// A running mesh.
pub struct Mesh {
    /// Seed, scale, name.
    pub scenario: Scenario,
    /// The nodes, by index.
    pub nodes: Vec<Node>,
    /// `links[i][j]`: the proxy node i's engine uses to reach node j's Redis (None for
    /// i == j, and for a node j behind Sentinel or on a Cluster, read through its URL).
    pub links: Vec<Vec<Option<FaultProxy>>>,
    options: MeshOptions,
}

impl Mesh {
    /// Starts every redis-server, store, proxy and engine.
    ///
    /// # Panics
    /// When redis-server is missing or a node cannot start (the test cannot run).
    pub async fn start(scenario: &Scenario, options: MeshOptions) -> Self {
        let mut nodes = Vec::new();
        for i in 0..options.nodes {
            let backend = options.backends.get(i).copied().unwrap_or_default();
            let prefix = match backend {
                Backend::Cluster => format!("{{n{i}}}:"),
                Backend::Single | Backend::Sentinel => format!("n{i}:"),
            };
            let start = || NodeRedis::start(backend, options.persistence, &prefix);
            let redis = match backend {
                Backend::Single => start(),
                // Forming a Sentinel set or a Cluster takes seconds of waiting.
                Backend::Sentinel | Backend::Cluster => tokio::task::block_in_place(start),
            }
            .expect("starting redis-server (install it or run `cargo xtask test`)");
            let store =
                NodeStore::connect(NodeStoreConfig::new(redis.url()).with_prefix(prefix.clone()))
                    .await
                    .expect("connecting the node store");
            nodes.push(Node {
                id: format!("{}-{i}", scenario.name),
                prefix,
                redis,
                store: Arc::new(Gate::new(store)),
                engine: None,
                _config_tx: None,
            });
        }
        let mut links = Vec::new();
        for i in 0..nodes.len() {
            let mut row = Vec::new();
            for (j, peer) in nodes.iter().enumerate() {
                row.push(if i == j || peer.redis.is_ha() {
                    None
                } else {
                    Some(
                        FaultProxy::start(peer.redis.addr())
                            .await
                            .expect("starting a proxy"),
                    )
                });
            }
            links.push(row);
        }
        let mut mesh = Self {
            scenario: scenario.clone(),
            nodes,
            links,
            options,
        };
        for i in 0..mesh.nodes.len() {
            mesh.start_engine(i).await;
        }
        mesh
    }

    /// The engine configuration of node `i`: every other node as a peer, through its proxy,
    /// with short intervals so that scenarios converge in seconds.
    pub fn engine_config(&self, i: usize) -> ReplicationEngineConfig {
        let mut config = ReplicationEngineConfig::new(self.nodes[i].id.clone());
        for (j, peer) in self.nodes.iter().enumerate() {
            let url = match &self.links[i][j] {
                Some(proxy) => proxy.redis_url(),
                None if i != j => peer.redis.url(),
                None => continue,
            };
            let mut p = PeerConfig::new(peer.id.clone(), url);
            p.redis_prefix = peer.prefix.clone();
            config.peers.push(p);
        }
        fast_settings(
            &mut config.settings,
            self.options.cold_path,
            self.options.cold_interval,
        );
        config.settings.hot_path.max_content_bytes = self.options.max_content_bytes;
        config.settings.tombstones.retention = self.options.tombstone_retention;
        config
    }

    /// Starts node `i`'s engine (cursors in memory: a fresh engine re-reads every stream).
    ///
    /// # Panics
    /// When the engine refuses to start.
    pub async fn start_engine(&mut self, i: usize) {
        let config = self.engine_config(i);
        self.start_engine_with(i, config).await;
    }

    /// Stops node `i`'s engine (if running) and starts it again with `config`.
    ///
    /// # Panics
    /// When the engine refuses to start.
    pub async fn start_engine_with(&mut self, i: usize, config: ReplicationEngineConfig) {
        if let Some(mut running) = self.nodes[i].engine.take() {
            running.shutdown().await;
        }
        let (tx, rx) = watch::channel(config.clone());
        let mut engine = ReplicationEngine::builder(config, rx)
            .sync_engine(self.nodes[i].store.clone())
            .cursor_store(Arc::new(MemoryCursorStore::new()))
            .build();
        engine.start().await.expect("starting the engine");
        self.nodes[i].engine = Some(engine);
        self.nodes[i]._config_tx = Some(tx);
    }

    /// Graceful shutdown of every engine.
    pub async fn shutdown(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut engine) = node.engine.take() {
                engine.shutdown().await;
            }
        }
    }

    /// The proxy node `from` uses to reach node `to`.
    ///
    /// # Panics
    /// When `from == to` (a node has no link to itself), or node `to` is behind Sentinel
    /// or on a Cluster (read without a proxy).
    pub fn link(&self, from: usize, to: usize) -> &FaultProxy {
        self.links[from][to]
            .as_ref()
            .expect("no proxy on this link (the same node, or a Sentinel or Cluster node)")
    }

    /// Cuts node `k` off from every other node, both directions (blackhole: reads hang
    /// until timeouts, as a real partition does).
    pub fn partition(&self, k: usize) {
        for other in 0..self.nodes.len() {
            if other != k {
                self.link(k, other).partition();
                self.link(other, k).partition();
            }
        }
    }

    /// Heals every link.
    pub fn heal_all(&self) {
        for row in &self.links {
            for proxy in row.iter().flatten() {
                proxy.heal();
            }
        }
    }

    /// Waits (up to `deadline`) until every node has the same Merkle root, unchanged for a
    /// second, then checks every node against the model. Panics with the seed and the first
    /// difference (key, expected winner, and what each node holds).
    pub async fn assert_converged(&self, model: &Model, deadline: Duration) {
        let quiet = self.wait_quiescent(deadline).await;
        if let Err(diff) = self.check(model).await {
            panic!(
                "{}",
                self.scenario
                    .context(&format!("not converged ({quiet}): {diff}"))
            );
        }
        if let Err(roots) = quiet_roots(&quiet) {
            let expected = model.expected();
            let mut extra = Vec::new();
            for node in &self.nodes {
                let ids = node.item_ids().unwrap_or_default();
                let outside: Vec<&String> = ids
                    .iter()
                    .filter(|id| !expected.contains_key(*id))
                    .collect();
                if !outside.is_empty() {
                    extra.push(format!(
                        "{} holds ids outside the model: {outside:?}",
                        node.id
                    ));
                }
            }
            panic!(
                "{}",
                self.scenario
                    .context(&format!("{roots}; {}", extra.join("; ")))
            );
        }
    }

    /// Polls the roots until they agree and stay unchanged for one second.
    async fn wait_quiescent(&self, deadline: Duration) -> Quiet {
        let end = Instant::now() + deadline;
        let mut stable_since: Option<(Instant, Vec<Option<String>>)> = None;
        loop {
            let mut roots = Vec::new();
            for node in &self.nodes {
                roots.push(
                    node.root()
                        .await
                        .unwrap_or_else(|e| Some(format!("unreadable: {e}"))),
                );
            }
            let agree = roots.windows(2).all(|w| w[0] == w[1]);
            match &stable_since {
                Some((since, seen)) if agree && *seen == roots => {
                    if since.elapsed() >= Duration::from_secs(1) {
                        return Quiet::Agreed;
                    }
                }
                _ if agree => stable_since = Some((Instant::now(), roots.clone())),
                _ => stable_since = None,
            }
            if Instant::now() >= end {
                return Quiet::TimedOut(
                    self.nodes.iter().map(|n| n.id.clone()).zip(roots).collect(),
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Compares every node with the model; the first difference, described, on failure.
    pub async fn check(&self, model: &Model) -> Result<(), String> {
        check_nodes(&self.nodes.iter().collect::<Vec<_>>(), &model.expected()).await
    }
}

/// Short block, timeout, backoff and circuit intervals so that a test mesh converges in
/// seconds; the cold path on or off, at `cold_interval`.
pub fn fast_settings(s: &mut Settings, cold_path: bool, cold_interval: Duration) {
    s.hot_path.block_timeout = Duration::from_millis(100);
    s.cold_path.enabled = cold_path;
    s.cold_path.interval = cold_interval;
    s.peer.connect_timeout = Duration::from_secs(1);
    s.peer.command_timeout = Duration::from_secs(1);
    s.peer.circuit_open_for = Duration::from_millis(500);
    s.peer.reconnect_initial_delay = Duration::from_millis(50);
    s.peer.reconnect_max_delay = Duration::from_millis(500);
    s.sync_engine.circuit_open_for = Duration::from_millis(300);
    s.sync_engine.retry_initial_delay = Duration::from_millis(20);
    s.sync_engine.retry_max_delay = Duration::from_millis(300);
    s.shutdown_timeout = Duration::from_secs(2);
}

/// Checks `nodes` against `expected` key by key (sorted), stopping at the first difference.
pub async fn check_nodes(
    nodes: &[&Node],
    expected: &BTreeMap<String, replication_core::Stamp>,
) -> Result<(), String> {
    for (key, winner) in expected {
        let mut held = Vec::new();
        for node in nodes {
            held.push((node.id.as_str(), node.observe(key).await?));
        }
        if let Some((id, state)) = held.iter().find(|(_, s)| !s.satisfies(winner)) {
            let all: Vec<String> = held.iter().map(|(n, s)| format!("{n}: {s}")).collect();
            return Err(format!(
                "key {key:?}: model expects {}, node {id} holds {state}; all nodes: [{}] ({} keys checked in order)",
                show(winner),
                all.join("; "),
                expected.len()
            ));
        }
    }
    Ok(())
}

/// What `store` holds for `key`.
pub async fn observe<S: SyncEngineRef>(store: &S, key: &str) -> Result<Observed, String> {
    let states = store
        .local_states(&[key.to_owned()])
        .await
        .map_err(|e| format!("reading {key}: {e}"))?;
    Ok(match states.into_iter().next().flatten() {
        Some(LocalState::Present(stamp)) => Observed::Item(stamp),
        Some(LocalState::Deleted(t)) => Observed::Tombstone(t.stamp()),
        Some(LocalState::Absent) | None => Observed::Absent,
    })
}

/// Checks one store against `expected`; the first difference, described.
pub async fn check_store<S: SyncEngineRef>(
    id: &str,
    store: &S,
    expected: &BTreeMap<String, replication_core::Stamp>,
) -> Result<(), String> {
    for (key, winner) in expected {
        let held = observe(store, key).await?;
        if !held.satisfies(winner) {
            return Err(format!(
                "key {key:?}: model expects {}, node {id} holds {held}",
                show(winner)
            ));
        }
    }
    Ok(())
}

/// Outcome of waiting for quiescence.
#[derive(Debug)]
enum Quiet {
    Agreed,
    TimedOut(Vec<(String, Option<String>)>),
}

impl std::fmt::Display for Quiet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Quiet::Agreed => write!(f, "roots agreed"),
            Quiet::TimedOut(roots) => write!(f, "roots never agreed: {roots:?}"),
        }
    }
}

fn quiet_roots(quiet: &Quiet) -> Result<(), String> {
    match quiet {
        Quiet::Agreed => Ok(()),
        Quiet::TimedOut(_) => Err(format!(
            "every modelled key matches, but {quiet} (a key outside the model?)"
        )),
    }
}
