//! Cached per-peer facts that health checks read without I/O.

use crate::health::{PeerHealth, RepairHealth};
use replication_core::{ConnectionState, PeerBackend, PeerConfig, StreamId};
use std::sync::Mutex;

/// What the hot and cold paths last learnt about a peer.
#[derive(Debug, Default)]
pub(crate) struct PeerStatus {
    inner: Mutex<StatusInner>,
}

#[derive(Debug, Default, Clone)]
struct StatusInner {
    cursor: Option<StreamId>,
    lag_ms: Option<u64>,
    lag_entries: Option<u64>,
    catching_up: bool,
    last_error: Option<String>,
    last_repair: Option<RepairHealth>,
    /// Start time (ms, our clock) of the latest repair cycle that completed: the peer holds
    /// none of the keys of tombstones recorded before it (tombstone collection horizon).
    synced_since_ms: Option<i64>,
    /// Gaps detected in the peer's stream so far (each one wants a completed repair).
    gaps_seen: u64,
    /// `gaps_seen` as of the start of the latest completed repair cycle.
    gaps_repaired: u64,
}

impl PeerStatus {
    fn with<T>(&self, f: impl FnOnce(&mut StatusInner) -> T) -> T {
        // Plain data: a panic mid-update cannot leave it inconsistent in a harmful way.
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut inner)
    }

    pub(crate) fn set_cursor(&self, cursor: StreamId) {
        self.with(|s| s.cursor = Some(cursor));
    }

    pub(crate) fn set_lag(&self, ms: u64, entries: Option<u64>, catching_up: bool) {
        self.with(|s| {
            s.lag_ms = Some(ms);
            s.lag_entries = entries;
            s.catching_up = catching_up;
        });
    }

    pub(crate) fn lag_entries(&self) -> Option<u64> {
        self.with(|s| s.lag_entries)
    }

    pub(crate) fn set_error(&self, error: impl ToString) {
        let error = error.to_string();
        self.with(|s| s.last_error = Some(error));
    }

    pub(crate) fn clear_error(&self) {
        self.with(|s| s.last_error = None);
    }

    pub(crate) fn set_repair(&self, repair: RepairHealth, completed_cycle_started_ms: Option<i64>) {
        self.with(|s| {
            s.last_repair = Some(repair);
            if let Some(started) = completed_cycle_started_ms {
                s.synced_since_ms = Some(s.synced_since_ms.map_or(started, |old| old.max(started)));
            }
        });
    }

    /// Records a gap in the peer's stream: entries were lost to us until a repair cycle
    /// that starts from now completes.
    pub(crate) fn mark_gap(&self) {
        self.with(|s| s.gaps_seen += 1);
    }

    /// The gap count a repair cycle starting now would cover.
    pub(crate) fn gaps_seen(&self) -> u64 {
        self.with(|s| s.gaps_seen)
    }

    /// A repair cycle that started when `gaps_seen` was `covered` completed.
    pub(crate) fn gaps_repaired_up_to(&self, covered: u64) {
        self.with(|s| s.gaps_repaired = s.gaps_repaired.max(covered));
    }

    /// True while a detected gap waits for a completed repair cycle.
    pub(crate) fn gap_unrepaired(&self) -> bool {
        self.with(|s| s.gaps_seen > s.gaps_repaired)
    }

    pub(crate) fn synced_since_ms(&self) -> Option<i64> {
        self.with(|s| s.synced_since_ms)
    }

    /// Health of the peer: connection facts from the backend's cache, the rest from here.
    pub(crate) fn health(
        &self,
        config: &PeerConfig,
        backend: Option<&dyn PeerBackend>,
    ) -> PeerHealth {
        let inner = self.with(|s| s.clone());
        let connection = backend.map(|b| b.connection());
        let state = connection
            .as_ref()
            .map_or(ConnectionState::Closed, |c| c.state);
        let connected = state == ConnectionState::Connected;
        let circuit_open = connection.as_ref().is_some_and(|c| c.circuit_open);
        PeerHealth {
            node_id: config.node_id.clone(),
            enabled: config.enabled,
            connected,
            connection_state: state.to_string(),
            circuit_open,
            lag_ms: inner.lag_ms,
            lag_entries: inner.lag_entries,
            catching_up: inner.catching_up,
            cursor: inner.cursor.map(|c| c.to_string()),
            last_error: inner
                .last_error
                .or_else(|| connection.as_ref().and_then(|c| c.last_error.clone())),
            last_success_ms: connection.as_ref().and_then(|c| c.last_success_ms),
            server: connection.as_ref().and_then(|c| c.server.clone()),
            reconnects: connection.as_ref().map_or(0, |c| c.reconnects),
            failovers: connection.as_ref().map_or(0, |c| c.failovers),
            last_repair: inner.last_repair,
            gap_unrepaired: inner.gaps_seen > inner.gaps_repaired,
        }
    }
}
