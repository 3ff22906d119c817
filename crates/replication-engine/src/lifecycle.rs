//! Starting and stopping one peer's tasks (tailer, hot path, cold path).

use crate::cold_path::ColdPath;
use crate::connector::PeerConnector;
use crate::controls::PeerControls;
use crate::hot_path::HotPath;
use crate::metrics::PeerMetrics;
use crate::peer_manager::{PeerManager, PeerSlot, RunningPeer};
use crate::shared::Shared;
use crate::status::PeerStatus;
use crate::stop::StopSwitch;
use replication_core::{Cursor, PeerConfig, StreamId, SyncEngineRef};
use replication_peer::TailStart;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Longest wait for a peer's connections to close on shutdown: a dead peer must not hang it.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Starts and stops peers of one engine.
pub(crate) struct Lifecycle<S> {
    pub(crate) shared: Arc<Shared<S>>,
    pub(crate) manager: Arc<PeerManager>,
    pub(crate) connector: Arc<dyn PeerConnector>,
}

impl<S: SyncEngineRef> Lifecycle<S> {
    /// Adds `config` and, when enabled, connects it and spawns its tasks. Never waits for
    /// the peer: an unreachable one keeps reconnecting and shows in health.
    pub(crate) async fn start_peer(&self, config: PeerConfig, first_repair_delay: Duration) {
        let (status, controls) = self.manager.state_of(&config.node_id).unwrap_or_else(|| {
            (
                Arc::new(PeerStatus::default()),
                Arc::new(PeerControls::default()),
            )
        });
        let running = if config.enabled {
            self.spawn(&config, &status, &controls, first_repair_delay)
                .await
        } else {
            None
        };
        if !config.enabled {
            tracing::info!(peer = %config.node_id, "peer disabled in config; kept idle");
        }
        self.manager.insert(PeerSlot {
            config,
            status,
            controls,
            running,
        });
    }

    async fn spawn(
        &self,
        config: &PeerConfig,
        status: &Arc<PeerStatus>,
        controls: &Arc<PeerControls>,
        first_repair_delay: Duration,
    ) -> Option<RunningPeer> {
        let settings = self.shared.settings();
        let backend = match self.connector.connect(config, &settings) {
            Ok(backend) => backend,
            Err(e) => {
                tracing::error!(peer = %config.node_id, error = %e, "cannot set up peer");
                status.set_error(e);
                return None;
            }
        };
        let checkpoint = self.checkpoint_of(&config.node_id).await;
        let start = checkpoint.unwrap_or_default();
        if let Some(cursor) = start.after.gt(&StreamId::ZERO).then_some(start.after) {
            status.set_cursor(cursor);
        }
        let repair_now = Arc::new(Notify::new());
        if checkpoint.is_some_and(|c| c.after == StreamId::ZERO) {
            // Recorded at the start of a recreated stream before anything of it was read:
            // a stream recreated again since looks untouched from there (every fact starts
            // at zero again), so what that stream held and lost would go unseen. Counted as
            // a gap: one repair cycle brings it (the permit wakes the cold path at once).
            tracing::info!(peer = %config.node_id, "resuming at the start of a recreated stream; repairing once");
            status.mark_gap();
            repair_now.notify_one();
        }
        tracing::info!(peer = %config.node_id, url = %config.redacted_url(), after = %start.after, "starting peer");
        let (switch, stop) = StopSwitch::new();
        let metrics = PeerMetrics::with_status(&config.node_id, status.clone());
        let hot = HotPath {
            shared: self.shared.clone(),
            peer: backend.clone(),
            status: status.clone(),
            metrics: metrics.clone(),
            repair_now: repair_now.clone(),
            controls: controls.clone(),
            stop: stop.clone(),
        };
        let cold = ColdPath {
            shared: self.shared.clone(),
            peer: backend.clone(),
            status: status.clone(),
            metrics,
            repair_now: repair_now.clone(),
            controls: controls.clone(),
            stop,
            manager: Arc::downgrade(&self.manager),
            first_delay: first_repair_delay,
        };
        let tasks = vec![tokio::spawn(hot.run(start)), tokio::spawn(cold.run())];
        Some(RunningPeer {
            backend,
            switch,
            tasks,
            repair_now,
        })
    }

    /// The peer's checkpointed position, if any (without one its stream is read from the
    /// beginning).
    async fn checkpoint_of(&self, node_id: &str) -> Option<TailStart> {
        // A peer re-added by a reload resumes where it was: `load_all` sees cursors set but
        // not yet flushed (CursorStore contract), so no flush is needed to read them back.
        match self.shared.cursors.load_all().await {
            Ok(cursors) => cursors
                .into_iter()
                .find(|c| c.peer_id == node_id)
                .map(|c| TailStart {
                    after: c.stream_id,
                    entries_added: c.entries_added,
                }),
            Err(e) => {
                // Without a cursor the stream is read from the start: re-applying is harmless.
                tracing::error!(peer = %node_id, error = %e, "cannot load cursor; reading the stream from the start");
                None
            }
        }
    }

    /// Stops and removes a peer; its cursor stays in the store.
    pub(crate) async fn remove_peer(&self, node_id: &str, drain: Duration) {
        if let Some(slot) = self.manager.remove(node_id) {
            stop_slot(slot, Instant::now() + drain).await;
        }
    }

    /// Restarts a peer with new settings (TLS, credentials, enabled...) on the same stream, from its
    /// cursor. The peer stays configured while its tasks drain, so its sync evidence keeps
    /// counting for tombstone collection.
    pub(crate) async fn reconnect_peer(&self, config: PeerConfig, drain: Duration) {
        self.stop_tasks(&config.node_id, drain).await;
        self.start_peer(config, Duration::ZERO).await;
    }

    /// Restarts a peer that now names another stream (server, database or prefix): as
    /// [`reconnect_peer`](Self::reconnect_peer), but its cursor and status (sync evidence,
    /// gaps, lag) are reset first: the new stream is read from its beginning and must
    /// complete repair cycles of its own.
    pub(crate) async fn retarget_peer(&self, config: PeerConfig, drain: Duration) {
        self.stop_tasks(&config.node_id, drain).await;
        self.manager.reset_status(&config.node_id);
        self.forget_cursor(&config.node_id).await;
        // The new stream holds only its recent changes, not everything its node holds (it
        // may even have been recreated since we last read it): like a gap, it wants one
        // completed repair cycle, also with the cold path disabled.
        if let Some((status, _)) = self.manager.state_of(&config.node_id) {
            status.mark_gap();
        }
        self.start_peer(config, Duration::ZERO).await;
    }

    /// Stops a peer's running tasks (waiting up to `drain`), keeping it configured.
    async fn stop_tasks(&self, node_id: &str, drain: Duration) {
        if let Some(running) = self.manager.take_running(node_id) {
            stop_running(node_id, running, Instant::now() + drain).await;
        }
    }

    /// Records the beginning of the stream as the peer's cursor.
    async fn forget_cursor(&self, node_id: &str) {
        let cursor = Cursor {
            peer_id: node_id.to_owned(),
            stream_id: StreamId::ZERO,
            entries_added: Some(0),
            updated_at_ms: self.shared.clock.now_ms(),
        };
        if let Err(e) = self.shared.cursors.set(cursor).await {
            // The old cursor stays: the tailer then finds the new stream recreated or
            // behind it, or reads from there; the repair cycle a gap triggers covers it.
            tracing::error!(peer = %node_id, error = %e, "cannot reset the cursor of a peer that names another stream");
            metrics::counter!(crate::metrics::CURSOR_FLUSH_ERRORS).increment(1);
        }
    }

    /// Ends every peer's tasks at once, draining nothing (the engine was dropped).
    pub(crate) fn abort_all(&self) {
        for slot in self.manager.take_all() {
            for task in slot.running.into_iter().flat_map(|running| running.tasks) {
                task.abort();
            }
        }
    }

    /// Stops every peer concurrently, all done by `deadline`.
    pub(crate) async fn stop_all(&self, deadline: Instant) {
        let slots = self.manager.take_all();
        futures::future::join_all(slots.into_iter().map(|slot| stop_slot(slot, deadline))).await;
    }
}

async fn stop_slot(mut slot: PeerSlot, deadline: Instant) {
    if let Some(running) = slot.running.take() {
        stop_running(&slot.config.node_id, running, deadline).await;
    }
}

/// Signals the tasks, waits for them to finish their batch, then closes the peer; all by
/// `deadline` (the caller's whole budget, e.g. `settings.shutdown_timeout`).
async fn stop_running(node_id: &str, running: RunningPeer, deadline: Instant) {
    // A batch in flight may keep retrying its write until the deadline, then set its cursor.
    running.switch.stop_draining(deadline);
    for mut task in running.tasks {
        if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
            tracing::warn!(peer = %node_id, "peer task did not finish in time; abandoning it");
            task.abort();
        }
    }
    // Closing is a courtesy to the peer (QUIT); a dead one gets what is left of the budget.
    let close_by = deadline
        .max(Instant::now())
        .min(Instant::now() + CLOSE_TIMEOUT);
    if tokio::time::timeout_at(close_by, running.backend.close())
        .await
        .is_err()
    {
        tracing::warn!(peer = %node_id, "closing the peer's connections timed out");
    }
}
