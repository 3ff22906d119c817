//! `ReplicationEngine`: lifecycle, wiring and health of the whole engine.

use crate::circuit::SyncEngineCircuit;
use crate::clock::WallClock;
use crate::connector::{PeerConnector, RedisConnector};
use crate::error::{EngineError, Result};
use crate::health::{HealthCheck, PeerHistory};
use crate::lifecycle::Lifecycle;
use crate::metrics::ENGINE_STATE;
use crate::peer_manager::PeerManager;
use crate::reload::{peer_changes, reject_reason, PeerChange};
use crate::shared::Shared;
use crate::stop::{Stop, StopSwitch};
use replication_core::{
    CursorStore, EngineState, NoOpSyncEngine, ReplicationEngineConfig, Settings, SyncEngineRef,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Keeps the local store in sync with every peer of the mesh.
pub struct ReplicationEngine<S: SyncEngineRef = NoOpSyncEngine> {
    config: ReplicationEngineConfig,
    config_rx: Option<watch::Receiver<ReplicationEngineConfig>>,
    sync_engine: Arc<S>,
    circuit: Arc<SyncEngineCircuit>,
    state_tx: watch::Sender<EngineState>,
    peer_manager: Arc<PeerManager>,
    cursor_store: Option<Arc<dyn CursorStore>>,
    connector: Arc<dyn PeerConnector>,
    clock: WallClock,
    running: Option<Running<S>>,
}

/// What exists only between `start()` and `shutdown()`.
struct Running<S> {
    lifecycle: Arc<Lifecycle<S>>,
    reload_task: JoinHandle<()>,
    reload_switch: StopSwitch,
    sampler_task: JoinHandle<()>,
}

/// Builds an engine with custom backends (any `CursorStore`, any peer transport).
pub struct EngineBuilder<S: SyncEngineRef = NoOpSyncEngine> {
    config: ReplicationEngineConfig,
    config_rx: watch::Receiver<ReplicationEngineConfig>,
    sync_engine: Arc<S>,
    cursor_store: Option<Arc<dyn CursorStore>>,
    connector: Arc<dyn PeerConnector>,
    clock: WallClock,
}

impl EngineBuilder<NoOpSyncEngine> {
    fn new(
        config: ReplicationEngineConfig,
        config_rx: watch::Receiver<ReplicationEngineConfig>,
    ) -> Self {
        Self {
            config,
            config_rx,
            sync_engine: Arc::new(NoOpSyncEngine),
            cursor_store: None,
            connector: Arc::new(RedisConnector),
            clock: WallClock::default(),
        }
    }
}

impl<S: SyncEngineRef> EngineBuilder<S> {
    /// The local store replicated writes go to.
    pub fn sync_engine<T: SyncEngineRef>(self, sync_engine: Arc<T>) -> EngineBuilder<T> {
        EngineBuilder {
            config: self.config,
            config_rx: self.config_rx,
            sync_engine,
            cursor_store: self.cursor_store,
            connector: self.connector,
            clock: self.clock,
        }
    }

    /// A cursor store to use instead of opening SQLite at `cursor.sqlite_path`.
    pub fn cursor_store(mut self, store: Arc<dyn CursorStore>) -> Self {
        self.cursor_store = Some(store);
        self
    }

    /// How peer backends are made (default: Redis).
    pub fn peer_connector(mut self, connector: Arc<dyn PeerConnector>) -> Self {
        self.connector = connector;
        self
    }

    /// The wall clock (ms since the epoch) to read instead of the system's, e.g. a
    /// simulation's virtual one. It must be the clock the local store records its
    /// tombstones by: collection compares the two (docs/PROTOCOL.md, "Collection").
    pub fn wall_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.clock = WallClock::new(Arc::new(clock));
        self
    }

    /// The engine, in `EngineState::Created`.
    pub fn build(self) -> ReplicationEngine<S> {
        let circuit = Arc::new(SyncEngineCircuit::new(&self.config.settings.sync_engine));
        let (state_tx, _) = watch::channel(EngineState::Created);
        ReplicationEngine {
            config: self.config,
            config_rx: Some(self.config_rx),
            sync_engine: self.sync_engine,
            circuit,
            state_tx,
            peer_manager: Arc::new(PeerManager::default()),
            cursor_store: self.cursor_store,
            connector: self.connector,
            clock: self.clock,
            running: None,
        }
    }
}

impl ReplicationEngine<NoOpSyncEngine> {
    /// An engine over the no-op store (tests, standalone runs).
    pub fn new(
        config: ReplicationEngineConfig,
        config_rx: watch::Receiver<ReplicationEngineConfig>,
    ) -> Self {
        EngineBuilder::new(config, config_rx).build()
    }

    /// A builder, to swap the store, the cursor store or the peer transport.
    pub fn builder(
        config: ReplicationEngineConfig,
        config_rx: watch::Receiver<ReplicationEngineConfig>,
    ) -> EngineBuilder<NoOpSyncEngine> {
        EngineBuilder::new(config, config_rx)
    }
}

impl<S: SyncEngineRef> ReplicationEngine<S> {
    /// An engine replicating into `sync_engine` (the daemon's constructor).
    pub fn with_sync_engine(
        config: ReplicationEngineConfig,
        config_rx: watch::Receiver<ReplicationEngineConfig>,
        sync_engine: Arc<S>,
    ) -> Self {
        EngineBuilder::new(config, config_rx)
            .sync_engine(sync_engine)
            .build()
    }

    /// The local store.
    pub fn sync_engine(&self) -> &Arc<S> {
        &self.sync_engine
    }

    /// The circuit breaker around local-store writes.
    pub fn circuit(&self) -> &Arc<SyncEngineCircuit> {
        &self.circuit
    }

    /// The peers.
    pub fn peer_manager(&self) -> &Arc<PeerManager> {
        &self.peer_manager
    }

    /// Current lifecycle state.
    pub fn state(&self) -> EngineState {
        *self.state_tx.borrow()
    }

    /// A receiver that sees every state change.
    pub fn state_receiver(&self) -> watch::Receiver<EngineState> {
        self.state_tx.subscribe()
    }

    /// True while `Running`.
    pub fn is_running(&self) -> bool {
        self.state() == EngineState::Running
    }

    /// The configuration in force (the last accepted reload).
    pub fn config(&self) -> &ReplicationEngineConfig {
        &self.config
    }

    fn transition(
        &self,
        to: EngineState,
    ) -> std::result::Result<(), replication_core::InvalidTransition> {
        let mut result = Ok(());
        self.state_tx
            .send_modify(|state| match state.transition(to) {
                Ok(next) => *state = next,
                Err(e) => result = Err(e),
            });
        if result.is_ok() {
            tracing::info!(state = %to, "engine state");
            metrics::gauge!(ENGINE_STATE).set(f64::from(to.code()));
        }
        result
    }

    /// Opens the cursor store, connects peers and spawns one hot-path tailer per peer and
    /// the cold-path tasks. Returns promptly even when every peer is down.
    pub async fn start(&mut self) -> Result<()> {
        self.transition(EngineState::Connecting)
            .map_err(|e| EngineError::InvalidState {
                operation: "start",
                state: e.from,
            })?;
        match self.start_inner().await {
            Ok(()) => {
                self.transition(EngineState::Running)
                    .map_err(|e| EngineError::InvalidState {
                        operation: "start",
                        state: e.from,
                    })?;
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "engine failed to start");
                let _ = self.transition(EngineState::Failed);
                Err(e)
            }
        }
    }

    async fn start_inner(&mut self) -> Result<()> {
        self.config.validate()?;
        let cursors: Arc<dyn CursorStore> = match &self.cursor_store {
            Some(store) => store.clone(),
            None => Arc::new(replication_cursor::open_from_config(&self.config.cursor).await?),
        };
        let (settings_tx, settings_rx) = watch::channel(Arc::new(self.config.settings.clone()));
        let shared = Arc::new(Shared::new(
            self.sync_engine.clone(),
            (*self.circuit).clone(),
            cursors,
            self.clock.clone(),
            settings_rx,
        ));
        let lifecycle = Arc::new(Lifecycle {
            shared,
            manager: self.peer_manager.clone(),
            connector: self.connector.clone(),
        });
        let peers = self.config.peers.clone();
        let interval = self.config.settings.cold_path.interval;
        for (index, peer) in peers.iter().enumerate() {
            lifecycle
                .start_peer(peer.clone(), stagger(interval, index, peers.len()))
                .await;
        }
        let (reload_switch, reload_stop) = StopSwitch::new();
        let config_rx = self.config_rx.take().ok_or(EngineError::InvalidState {
            operation: "start",
            state: self.state(),
        })?;
        let sampler_task = tokio::spawn(crate::sampler::run(
            self.peer_manager.clone(),
            (*self.circuit).clone(),
            self.sync_engine.clone(),
            reload_stop.clone(),
        ));
        let reload_task = tokio::spawn(reload_loop(
            lifecycle.clone(),
            self.config.clone(),
            config_rx,
            settings_tx,
            reload_stop,
        ));
        self.running = Some(Running {
            lifecycle,
            reload_task,
            reload_switch,
            sampler_task,
        });
        Ok(())
    }

    /// Stops reading, lets in-flight batches finish (bounded by `settings.shutdown_timeout`),
    /// closes peer connections (never waiting on a dead peer), then flushes and closes the
    /// cursor store. Safe to call in any state; a second call does nothing.
    pub async fn shutdown(&mut self) {
        match self.state() {
            EngineState::Stopped | EngineState::ShuttingDown => return,
            EngineState::Created => {
                let _ = self.transition(EngineState::Stopped);
                return;
            }
            _ => {}
        }
        let _ = self.transition(EngineState::ShuttingDown);
        if let Some(running) = self.running.take() {
            let Running {
                lifecycle,
                mut reload_task,
                reload_switch,
                sampler_task,
            } = running;
            reload_switch.stop();
            // It only reads cached state: nothing to drain.
            sampler_task.abort();
            // One budget for the whole drain, however many steps it takes.
            let deadline = tokio::time::Instant::now() + self.config.settings.shutdown_timeout;
            if tokio::time::timeout_at(deadline, &mut reload_task)
                .await
                .is_err()
            {
                // It may be starting a peer: it must not outlive the engine.
                tracing::warn!("reload task did not stop in time; aborting it");
                reload_task.abort();
            }
            lifecycle.stop_all(deadline).await;
            let cursors = lifecycle.shared.cursors.clone();
            if let Err(e) = cursors.flush().await {
                tracing::error!(error = %e, "final cursor flush failed");
            }
            if let Err(e) = cursors.close().await {
                tracing::error!(error = %e, "closing the cursor store failed");
            }
        }
        let _ = self.transition(EngineState::Stopped);
    }

    /// Health from cached state only (no network I/O). It publishes the gauges it reports
    /// on; the engine's status sampler keeps them current whether or not anyone asks.
    pub async fn health_check(&self) -> HealthCheck {
        let state = self.state();
        let accepting = self.sync_engine.should_accept_writes();
        let circuit = self.circuit.state_name();
        let store = self.sync_engine.connection();
        let store_failovers = store.as_ref().map_or(0, |c| c.failovers);
        let peers = self.peer_manager.health();
        crate::sampler::publish(&self.circuit, &peers, store_failovers);
        let peers_connected = peers.iter().filter(|p| p.enabled && p.connected).count();
        let ready = state == EngineState::Running && accepting && !self.circuit.is_open();
        let healthy = ready
            && peers
                .iter()
                .filter(|p| p.enabled)
                .all(|p| p.connected && !p.circuit_open);
        HealthCheck {
            state,
            ready,
            healthy,
            sync_engine_accepting_writes: accepting,
            sync_engine_circuit: circuit.to_owned(),
            sync_engine_server: store.and_then(|c| c.server),
            sync_engine_failovers: store_failovers,
            peers_connected,
            peers_total: peers.len(),
            peers,
        }
    }
}

impl<S: SyncEngineRef> ReplicationEngine<S> {
    /// Every peer's status samples of the last few minutes (lag, applied rate), oldest
    /// first; taken every `SAMPLE_EVERY` while the engine runs.
    pub fn history(&self) -> Vec<PeerHistory> {
        self.peer_manager.history()
    }
}

impl<S: SyncEngineRef> Drop for ReplicationEngine<S> {
    /// Dropping a running engine without `shutdown` ends its tasks at once, as the end of
    /// the process would: nothing is drained, no cursor is flushed. Without this its tasks
    /// would go on replicating with no owner to stop them.
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.reload_task.abort();
            running.sampler_task.abort();
            running.lifecycle.abort_all();
        }
    }
}

impl<S: SyncEngineRef> std::fmt::Debug for ReplicationEngine<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicationEngine")
            .field("local_node_id", &self.config.local_node_id)
            .field("state", &self.state())
            .field("peers", &self.peer_manager)
            .finish_non_exhaustive()
    }
}

/// First repair of peer `index` of `count`: spread evenly over one interval.
fn stagger(interval: Duration, index: usize, count: usize) -> Duration {
    if count <= 1 {
        return interval;
    }
    let step = interval / u32::try_from(count).unwrap_or(u32::MAX);
    interval / 2 + step * u32::try_from(index).unwrap_or(0) / 2
}

/// Applies accepted config changes; an invalid config is logged and the old one stays.
async fn reload_loop<S: SyncEngineRef>(
    lifecycle: Arc<Lifecycle<S>>,
    mut current: ReplicationEngineConfig,
    mut config_rx: watch::Receiver<ReplicationEngineConfig>,
    settings_tx: watch::Sender<Arc<Settings>>,
    mut stop: Stop,
) {
    loop {
        tokio::select! {
            biased;
            _ = stop.stopped() => return,
            changed = config_rx.changed() => if changed.is_err() {
                // The host dropped its sender: no more reloads, but the engine runs on, and
                // `settings_tx` must live until shutdown (tasks watch it).
                stop.stopped().await;
                return;
            },
        }
        let new = config_rx.borrow_and_update().clone();
        if new == current {
            continue;
        }
        if let Some(reason) = reject_reason(&current, &new) {
            tracing::error!(%reason, "new configuration rejected; the running one stays");
            continue;
        }
        let drain = current.settings.shutdown_timeout;
        if new.settings != current.settings {
            tracing::info!("settings reloaded");
            settings_tx.send_replace(Arc::new(new.settings.clone()));
        }
        for change in peer_changes(&current, &new) {
            match change {
                PeerChange::Added(peer) => {
                    tracing::info!(peer = %peer.node_id, "reload: peer added");
                    lifecycle.start_peer(peer, Duration::ZERO).await;
                }
                PeerChange::Removed(node_id) => {
                    tracing::info!(peer = %node_id, "reload: peer removed (its cursor is kept)");
                    lifecycle.remove_peer(&node_id, drain).await;
                }
                PeerChange::Reconnect(peer) => {
                    tracing::info!(peer = %peer.node_id, "reload: peer settings changed; reconnecting");
                    lifecycle.reconnect_peer(peer, drain).await;
                }
                PeerChange::Retarget(peer) => {
                    tracing::info!(peer = %peer.node_id, url = %peer.redacted_url(), prefix = %peer.redis_prefix,
                        "reload: peer now names another stream; reading it from its beginning");
                    lifecycle.retarget_peer(peer, drain).await;
                }
            }
        }
        current = new;
    }
}
