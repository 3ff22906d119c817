//! Metric names and per-peer handles, through the `metrics` facade (the host picks the
//! exporter). Every name is listed in docs/OPERATIONS.md; keep the two in step.

use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};

/// Entries read from a peer stream (good and bad).
pub const EVENTS_READ: &str = "replication_events_read_total";
/// Changes applied to the local store by the hot path.
pub const EVENTS_APPLIED: &str = "replication_events_applied_total";
/// Events dropped because the store already held exactly that write (echoes, replays).
pub const EVENTS_DEDUPED: &str = "replication_events_deduped_total";
/// Events dropped because the store held a write that wins the conflict order.
pub const EVENTS_STALE: &str = "replication_events_stale_total";
/// Events superseded by a later event for the same key within one batch.
pub const EVENTS_COLLAPSED: &str = "replication_events_collapsed_total";
/// Entries rejected as bad input, label `reason`.
pub const EVENTS_REJECTED: &str = "replication_events_rejected_total";
/// Entries per applied batch (histogram).
pub const BATCH_SIZE: &str = "replication_batch_size";
/// Seconds to apply one batch to the local store (histogram).
pub const APPLY_SECONDS: &str = "replication_apply_seconds";
/// Retries of failed local-store batch writes.
pub const APPLY_RETRIES: &str = "replication_apply_retries_total";
/// Milliseconds behind the peer's newest entry.
pub const LAG_MS: &str = "replication_lag_ms";
/// Entries behind the peer's newest entry, when known.
pub const LAG_ENTRIES: &str = "replication_lag_entries";
/// Gaps detected in a peer stream, label `kind` = `trimmed` | `recreated`.
pub const GAPS: &str = "replication_gaps_total";
/// Repair cycles, label `outcome` = `in_sync` | `repaired` | `partial` | `failed` | `skipped`.
pub const REPAIR_CYCLES: &str = "replication_repair_cycles_total";
/// Items applied by repair.
pub const REPAIR_ITEMS_APPLIED: &str = "replication_repair_items_applied_total";
/// Items fetched by repair.
pub const REPAIR_ITEMS_FETCHED: &str = "replication_repair_items_fetched_total";
/// Peer writes the local store refused for good during repair (skipped).
pub const REPAIR_ITEMS_REFUSED: &str = "replication_repair_items_refused_total";
/// Content bytes fetched by repair.
pub const REPAIR_BYTES_FETCHED: &str = "replication_repair_bytes_fetched_total";
/// Round trips to the peer made by repair.
pub const REPAIR_ROUND_TRIPS: &str = "replication_repair_round_trips_total";
/// 1 when the peer connection is up.
pub const PEER_CONNECTED: &str = "replication_peer_connected";
/// 1 when the peer circuit is open.
pub const PEER_CIRCUIT_OPEN: &str = "replication_peer_circuit_open";
/// Failovers of a peer's Redis seen by its connection (the server holding the stream
/// changed), label `peer`.
pub const PEER_FAILOVERS: &str = "replication_peer_failovers_total";
/// Reconnects of a peer's connections, label `peer`.
pub const PEER_RECONNECTS: &str = "replication_peer_reconnects_total";
/// Failovers of the local store's Redis (the server holding its data changed).
pub const SYNC_ENGINE_FAILOVERS: &str = "replication_sync_engine_failovers_total";
/// Local-store circuit: 0 closed, 1 half-open, 2 open.
pub const SYNC_ENGINE_CIRCUIT: &str = "replication_sync_engine_circuit_state";
/// Times the hot path paused because the store asked for backpressure.
pub const BACKPRESSURE_PAUSES: &str = "replication_backpressure_pauses_total";
/// Engine lifecycle state, as `EngineState::code()`.
pub const ENGINE_STATE: &str = "replication_engine_state";
/// Cursor store flush failures.
pub const CURSOR_FLUSH_ERRORS: &str = "replication_cursor_flush_errors_total";
/// Tombstones collected.
pub const TOMBSTONES_PURGED: &str = "replication_tombstones_purged_total";

/// Handles for one peer's hot-path metrics, registered once so the per-batch cost is an
/// atomic add.
#[derive(Clone)]
pub(crate) struct PeerMetrics {
    peer: String,
    pub(crate) read: Counter,
    pub(crate) applied: Counter,
    pub(crate) deduped: Counter,
    pub(crate) stale: Counter,
    pub(crate) collapsed: Counter,
    pub(crate) batch_size: Histogram,
    pub(crate) apply_seconds: Histogram,
    pub(crate) apply_retries: Counter,
    pub(crate) lag_ms: Gauge,
    pub(crate) lag_entries: Gauge,
}

impl PeerMetrics {
    pub(crate) fn new(peer: &str) -> Self {
        let label = [("peer", peer.to_owned())];
        Self {
            peer: peer.to_owned(),
            read: counter!(EVENTS_READ, &label),
            applied: counter!(EVENTS_APPLIED, &label),
            deduped: counter!(EVENTS_DEDUPED, &label),
            stale: counter!(EVENTS_STALE, &label),
            collapsed: counter!(EVENTS_COLLAPSED, &label),
            batch_size: histogram!(BATCH_SIZE, &label),
            apply_seconds: histogram!(APPLY_SECONDS, &label),
            apply_retries: counter!(APPLY_RETRIES, &label),
            lag_ms: gauge!(LAG_MS, &label),
            lag_entries: gauge!(LAG_ENTRIES, &label),
        }
    }

    pub(crate) fn rejected(&self, reason: &'static str) {
        counter!(EVENTS_REJECTED, "peer" => self.peer.clone(), "reason" => reason).increment(1);
    }

    pub(crate) fn gap(&self, kind: &'static str) {
        counter!(GAPS, "peer" => self.peer.clone(), "kind" => kind).increment(1);
    }

    pub(crate) fn repair(&self, outcome: &'static str) -> Counter {
        counter!(REPAIR_CYCLES, "peer" => self.peer.clone(), "outcome" => outcome)
    }

    /// Publishes the connection gauges of a peer from its health.
    pub(crate) fn publish_connection(health: &crate::health::PeerHealth) {
        let label = [("peer", health.node_id.clone())];
        gauge!(PEER_CONNECTED, &label).set(if health.connected { 1.0 } else { 0.0 });
        gauge!(PEER_CIRCUIT_OPEN, &label).set(if health.circuit_open { 1.0 } else { 0.0 });
        // Counted by the connection itself: published as they stand.
        counter!(PEER_FAILOVERS, &label).absolute(health.failovers);
        counter!(PEER_RECONNECTS, &label).absolute(health.reconnects);
    }

    pub(crate) fn repair_counter(&self, name: &'static str) -> Counter {
        counter!(name, "peer" => self.peer.clone())
    }
}
