//! Metric names and per-peer handles, through the `metrics` facade (the host picks the
//! exporter). Every name is listed in docs/OPERATIONS.md and in [`ALL`]; keep them in step.
//!
//! The per-peer handles also count in the peer's cached status, so health reports the
//! same figures (applied, rejected by reason, gaps, bytes read) without reading the
//! exporter back.

use crate::status::PeerStatus;
use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};
use std::sync::Arc;

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
/// 1 while an operator has paused replication from the peer.
pub const PEER_PAUSED: &str = "replication_peer_paused";
/// Bytes read from a peer's stream as they came over the wire (content still compressed).
pub const READ_WIRE_BYTES: &str = "replication_read_wire_bytes_total";
/// Content bytes of the puts read from a peer's stream, after decompression.
pub const READ_CONTENT_BYTES: &str = "replication_read_content_bytes_total";

/// What kind of series a metric is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up; Prometheus names end in `_total`.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations in buckets; exported as `_bucket`, `_sum` and `_count` series.
    Histogram,
}

/// Every metric the engine emits, with its kind: dashboards and alert rules may only refer
/// to these (checked by a test of the daemon).
pub const ALL: &[(&str, MetricKind)] = &[
    (EVENTS_READ, MetricKind::Counter),
    (EVENTS_APPLIED, MetricKind::Counter),
    (EVENTS_DEDUPED, MetricKind::Counter),
    (EVENTS_STALE, MetricKind::Counter),
    (EVENTS_COLLAPSED, MetricKind::Counter),
    (EVENTS_REJECTED, MetricKind::Counter),
    (BATCH_SIZE, MetricKind::Histogram),
    (APPLY_SECONDS, MetricKind::Histogram),
    (APPLY_RETRIES, MetricKind::Counter),
    (LAG_MS, MetricKind::Gauge),
    (LAG_ENTRIES, MetricKind::Gauge),
    (GAPS, MetricKind::Counter),
    (REPAIR_CYCLES, MetricKind::Counter),
    (REPAIR_ITEMS_APPLIED, MetricKind::Counter),
    (REPAIR_ITEMS_FETCHED, MetricKind::Counter),
    (REPAIR_ITEMS_REFUSED, MetricKind::Counter),
    (REPAIR_BYTES_FETCHED, MetricKind::Counter),
    (REPAIR_ROUND_TRIPS, MetricKind::Counter),
    (PEER_CONNECTED, MetricKind::Gauge),
    (PEER_CIRCUIT_OPEN, MetricKind::Gauge),
    (PEER_PAUSED, MetricKind::Gauge),
    (PEER_FAILOVERS, MetricKind::Counter),
    (PEER_RECONNECTS, MetricKind::Counter),
    (SYNC_ENGINE_FAILOVERS, MetricKind::Counter),
    (SYNC_ENGINE_CIRCUIT, MetricKind::Gauge),
    (BACKPRESSURE_PAUSES, MetricKind::Counter),
    (ENGINE_STATE, MetricKind::Gauge),
    (CURSOR_FLUSH_ERRORS, MetricKind::Counter),
    (TOMBSTONES_PURGED, MetricKind::Counter),
    (READ_WIRE_BYTES, MetricKind::Counter),
    (READ_CONTENT_BYTES, MetricKind::Counter),
];

/// A counter that the peer's status reads too: the facade's handle plus the status total.
#[derive(Clone)]
pub(crate) struct AppliedCounter {
    counter: Counter,
    status: Arc<PeerStatus>,
}

impl AppliedCounter {
    pub(crate) fn increment(&self, changes: u64) {
        self.counter.increment(changes);
        self.status.count_applied(changes);
    }
}

/// Handles for one peer's hot-path metrics, registered once so the per-batch cost is an
/// atomic add.
#[derive(Clone)]
pub(crate) struct PeerMetrics {
    peer: String,
    status: Arc<PeerStatus>,
    pub(crate) read: Counter,
    pub(crate) applied: AppliedCounter,
    pub(crate) deduped: Counter,
    pub(crate) stale: Counter,
    pub(crate) collapsed: Counter,
    pub(crate) batch_size: Histogram,
    pub(crate) apply_seconds: Histogram,
    pub(crate) apply_retries: Counter,
    pub(crate) lag_ms: Gauge,
    pub(crate) lag_entries: Gauge,
    read_wire_bytes: Counter,
    read_content_bytes: Counter,
}

impl PeerMetrics {
    /// Handles that count into a status of their own (for tests of one layer).
    #[cfg(test)]
    pub(crate) fn new(peer: &str) -> Self {
        Self::with_status(peer, Arc::default())
    }

    /// Handles for `peer` that also count into its cached `status`.
    pub(crate) fn with_status(peer: &str, status: Arc<PeerStatus>) -> Self {
        let label = [("peer", peer.to_owned())];
        Self {
            peer: peer.to_owned(),
            read: counter!(EVENTS_READ, &label),
            applied: AppliedCounter {
                counter: counter!(EVENTS_APPLIED, &label),
                status: status.clone(),
            },
            status,
            deduped: counter!(EVENTS_DEDUPED, &label),
            stale: counter!(EVENTS_STALE, &label),
            collapsed: counter!(EVENTS_COLLAPSED, &label),
            batch_size: histogram!(BATCH_SIZE, &label),
            apply_seconds: histogram!(APPLY_SECONDS, &label),
            apply_retries: counter!(APPLY_RETRIES, &label),
            lag_ms: gauge!(LAG_MS, &label),
            lag_entries: gauge!(LAG_ENTRIES, &label),
            read_wire_bytes: counter!(READ_WIRE_BYTES, &label),
            read_content_bytes: counter!(READ_CONTENT_BYTES, &label),
        }
    }

    pub(crate) fn rejected(&self, reason: &'static str) {
        counter!(EVENTS_REJECTED, "peer" => self.peer.clone(), "reason" => reason).increment(1);
        self.status.count_rejected(reason);
    }

    pub(crate) fn gap(&self, kind: &'static str) {
        counter!(GAPS, "peer" => self.peer.clone(), "kind" => kind).increment(1);
        self.status.count_gap(kind, crate::clock::now_ms());
    }

    /// Bytes of one batch: as read over the wire, and the decoded content.
    pub(crate) fn bytes_read(&self, wire: u64, content: u64) {
        self.read_wire_bytes.increment(wire);
        self.read_content_bytes.increment(content);
        self.status.count_bytes_read(wire, content);
    }

    pub(crate) fn repair(&self, outcome: &'static str) -> Counter {
        counter!(REPAIR_CYCLES, "peer" => self.peer.clone(), "outcome" => outcome)
    }

    /// Publishes the connection and pause gauges of a peer from its health.
    pub(crate) fn publish_connection(health: &crate::health::PeerHealth) {
        let label = [("peer", health.node_id.clone())];
        let flag = |on: bool| if on { 1.0 } else { 0.0 };
        gauge!(PEER_CONNECTED, &label).set(flag(health.connected));
        gauge!(PEER_CIRCUIT_OPEN, &label).set(flag(health.circuit_open));
        gauge!(PEER_PAUSED, &label).set(flag(health.paused));
        // Counted by the connection itself: published as they stand.
        counter!(PEER_FAILOVERS, &label).absolute(health.failovers);
        counter!(PEER_RECONNECTS, &label).absolute(health.reconnects);
    }

    pub(crate) fn repair_counter(&self, name: &'static str) -> Counter {
        counter!(name, "peer" => self.peer.clone())
    }
}
