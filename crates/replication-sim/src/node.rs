//! `Node`: one member of the simulated mesh: its store (full-featured or minimal), its
//! cursor file, its configuration, and the engine incarnation running now (if any).

use crate::world::World;
use replication_core::ReplicationEngineConfig;
use replication_engine::{ReplicationEngine, SyncEngineRef};
use replication_testkit::{CrashCursorStore, MemoryStore, MinimalStore};
use std::sync::Arc;
use tokio::sync::watch;

/// Which `SyncEngineRef` the engine sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `MemoryStore`: `local_states`, `apply_batch`, tombstones, purge.
    Full,
    /// `MinimalStore`: only the required methods (the same store underneath).
    Minimal,
}

/// A running engine over either kind of store.
enum Engine {
    Full(ReplicationEngine<MemoryStore>),
    Minimal(ReplicationEngine<MinimalStore>),
}

/// Wall clock of a node: virtual time, shifted by the node's skew.
pub(crate) type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// See the module docs.
pub(crate) struct Node {
    pub(crate) index: usize,
    pub(crate) kind: Kind,
    /// The store (for a minimal node, the store behind the minimal interface).
    pub(crate) store: MemoryStore,
    /// The cursor store of the incarnation running now (or of the next one).
    pub(crate) cursors: Arc<CrashCursorStore>,
    /// The configuration in force (what the next incarnation starts with).
    pub(crate) config: ReplicationEngineConfig,
    pub(crate) clock: Clock,
    engine: Option<Engine>,
    config_tx: Option<watch::Sender<ReplicationEngineConfig>>,
}

impl Node {
    pub(crate) fn new(
        index: usize,
        kind: Kind,
        store: MemoryStore,
        config: ReplicationEngineConfig,
        clock: Clock,
    ) -> Self {
        Self {
            index,
            kind,
            store,
            cursors: Arc::new(CrashCursorStore::new()),
            config,
            clock,
            engine: None,
            config_tx: None,
        }
    }

    /// Whether this node's engine holds its cursor of `peer` at a gap whose repair has not
    /// completed (false when it is not running).
    pub(crate) async fn gap_unrepaired(&self, peer: &str) -> bool {
        let health = match &self.engine {
            Some(Engine::Full(e)) => e.health_check().await,
            Some(Engine::Minimal(e)) => e.health_check().await,
            None => return false,
        };
        health
            .peers
            .iter()
            .any(|p| p.node_id == peer && p.gap_unrepaired)
    }

    pub(crate) fn is_running(&self) -> bool {
        self.engine.is_some()
    }

    /// Starts a new incarnation with the configuration in force.
    pub(crate) async fn start(&mut self, world: &Arc<World>) -> Result<(), String> {
        let (tx, rx) = watch::channel(self.config.clone());
        let engine = match self.kind {
            Kind::Full => Engine::Full(self.build(world, rx, self.store.clone())),
            Kind::Minimal => {
                Engine::Minimal(self.build(world, rx, MinimalStore::new(self.store.clone())))
            }
        };
        self.config_tx = Some(tx);
        let engine = self.engine.insert(engine);
        let started = match engine {
            Engine::Full(e) => e.start().await,
            Engine::Minimal(e) => e.start().await,
        };
        started.map_err(|e| e.to_string())
    }

    fn build<S: SyncEngineRef>(
        &self,
        world: &Arc<World>,
        rx: watch::Receiver<ReplicationEngineConfig>,
        store: S,
    ) -> ReplicationEngine<S> {
        let clock = self.clock.clone();
        ReplicationEngine::builder(self.config.clone(), rx)
            .sync_engine(Arc::new(store))
            .cursor_store(self.cursors.clone())
            .peer_connector(world.connector(self.index))
            .wall_clock(move || clock())
            .build()
    }

    /// The process dies: the engine is dropped without shutdown (its tasks end at once)
    /// and the cursors set since the last flush are lost.
    pub(crate) fn crash(&mut self) {
        self.engine = None;
        self.config_tx = None;
        self.cursors.crash();
        self.cursors = Arc::new(self.cursors.reopen());
    }

    /// A clean stop: drain, flush, close.
    pub(crate) async fn shutdown(&mut self) {
        match self.engine.take() {
            Some(Engine::Full(mut e)) => e.shutdown().await,
            Some(Engine::Minimal(mut e)) => e.shutdown().await,
            None => return,
        }
        self.config_tx = None;
        self.cursors = Arc::new(self.cursors.reopen());
    }

    /// Replaces the configuration; a running engine reloads it.
    pub(crate) fn reload(&mut self, config: ReplicationEngineConfig) {
        self.config = config;
        if let Some(tx) = &self.config_tx {
            tx.send_replace(self.config.clone());
        }
    }

    /// Repair cycles the running engine has run so far, over all its peers (0 when down).
    pub(crate) async fn repairs_run(&self) -> u64 {
        let health = match &self.engine {
            Some(Engine::Full(e)) => e.health_check().await,
            Some(Engine::Minimal(e)) => e.health_check().await,
            None => return 0,
        };
        health.peers.iter().map(|p| p.repairs_run).sum()
    }

    /// Peers the running engine has configured (0 when down).
    pub(crate) fn peers_configured(&self) -> usize {
        match &self.engine {
            Some(Engine::Full(e)) => e.peer_manager().len(),
            Some(Engine::Minimal(e)) => e.peer_manager().len(),
            None => 0,
        }
    }
}
