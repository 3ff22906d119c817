//! What every task of a running engine shares: the store, its circuit, the cursor store,
//! the wall clock and the live settings.

use crate::circuit::SyncEngineCircuit;
use crate::clock::WallClock;
use crate::write_gate::WriteGate;
use replication_core::{Cursor, CursorStore, Settings};
use replication_peer::TailOptions;
use std::sync::Arc;
use tokio::sync::watch;

/// Shared context of a running engine.
pub(crate) struct Shared<S> {
    pub(crate) store: Arc<S>,
    pub(crate) circuit: SyncEngineCircuit,
    /// The one way replicated writes reach the store (hot paths and repairs alike).
    pub(crate) writes: WriteGate,
    pub(crate) cursors: Arc<dyn CursorStore>,
    pub(crate) clock: WallClock,
    settings: watch::Receiver<Arc<Settings>>,
}

impl<S> Shared<S> {
    pub(crate) fn new(
        store: Arc<S>,
        circuit: SyncEngineCircuit,
        cursors: Arc<dyn CursorStore>,
        clock: WallClock,
        settings: watch::Receiver<Arc<Settings>>,
    ) -> Self {
        Self {
            store,
            circuit,
            writes: WriteGate::default(),
            cursors,
            clock,
            settings,
        }
    }

    /// The settings in force now (reloads replace them).
    pub(crate) fn settings(&self) -> Arc<Settings> {
        self.settings.borrow().clone()
    }

    /// Records a peer's cursor (the store coalesces; it flushes on its own schedule and at
    /// shutdown). A failure is logged and counted: the previous cursor stays, and reading
    /// again from it is harmless.
    pub(crate) async fn record_cursor(&self, cursor: Cursor) {
        let peer = cursor.peer_id.clone();
        if let Err(e) = self.cursors.set(cursor).await {
            tracing::error!(peer = %peer, error = %e, "cannot record the cursor");
            metrics::counter!(crate::metrics::CURSOR_FLUSH_ERRORS).increment(1);
        }
    }

    /// A receiver to be told of settings changes.
    pub(crate) fn settings_rx(&self) -> watch::Receiver<Arc<Settings>> {
        self.settings.clone()
    }
}

/// Tailer options from the hot-path and peer settings.
pub(crate) fn tail_options(settings: &Settings) -> TailOptions {
    TailOptions::from_settings(settings)
}
