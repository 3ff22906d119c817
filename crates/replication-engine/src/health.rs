//! Health report types: built from cached state only, never by network I/O.
//!
//! - `ready`: the engine is `Running` and the local store takes writes (its circuit is not
//!   open and it does not ask for backpressure). Readiness ignores peers: a node whose
//!   peers are all down still serves its own data and catches up when they return.
//! - `healthy`: ready, and every enabled peer is connected with a closed circuit.

use replication_core::EngineState;
use serde::Serialize;

/// Engine health, as `health_check()` returns it and `/health` serves it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HealthCheck {
    /// Lifecycle state.
    #[serde(serialize_with = "as_display")]
    pub state: EngineState,
    /// See the module docs.
    pub ready: bool,
    /// See the module docs.
    pub healthy: bool,
    /// `SyncEngineRef::should_accept_writes` as last seen.
    pub sync_engine_accepting_writes: bool,
    /// State of the local-store circuit breaker: `closed`, `open` or `half_open`.
    pub sync_engine_circuit: &'static str,
    /// The server holding the local store's data (a Sentinel-named primary, the Cluster
    /// primary of its slot), when the store reports one (`SyncEngineRef::connection`).
    pub sync_engine_server: Option<String>,
    /// Times that server changed (failovers of the local store's Redis).
    pub sync_engine_failovers: u64,
    /// Enabled peers whose connection is up.
    pub peers_connected: usize,
    /// Configured peers (enabled or not).
    pub peers_total: usize,
    /// Per-peer details, sorted by node id.
    pub peers: Vec<PeerHealth>,
}

/// Health of one peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PeerHealth {
    /// Peer node id.
    pub node_id: String,
    /// `false` when configured with `enabled = false`.
    pub enabled: bool,
    /// Connection is up.
    pub connected: bool,
    /// `connecting`, `connected`, `reconnecting` or `closed`.
    pub connection_state: String,
    /// The peer's circuit breaker is open (calls fail fast).
    pub circuit_open: bool,
    /// Milliseconds between the last applied entry and the peer's newest entry.
    pub lag_ms: Option<u64>,
    /// Entries the peer's stream holds beyond our cursor, when known.
    pub lag_entries: Option<u64>,
    /// Entries were still behind the peer after the last batch (the tailer is catching up).
    pub catching_up: bool,
    /// Id of the last entry applied (the cursor).
    pub cursor: Option<String>,
    /// Last error of the connection, tailer or repair, secrets redacted.
    pub last_error: Option<String>,
    /// Last successful call, ms since the epoch.
    pub last_success_ms: Option<i64>,
    /// The server holding the peer's stream (`host:port`: the primary a Sentinel named,
    /// the Cluster primary owning the stream's slot), once connected.
    pub server: Option<String>,
    /// Times the connection was re-established.
    pub reconnects: u64,
    /// Times `server` changed while connected: failovers of the peer's Redis.
    pub failovers: u64,
    /// Last repair cycle, if any ran.
    pub last_repair: Option<RepairHealth>,
    /// Entries of the peer's stream were lost to us (a gap: trimmed before we read them,
    /// or the stream was recreated) and no repair cycle has completed since. A repair runs
    /// at once, even with the cold path disabled, and is retried until it completes.
    pub gap_unrepaired: bool,
}

/// Outcome of the last cold-path cycle of a peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RepairHealth {
    /// When it finished, ms since the epoch.
    pub finished_at_ms: i64,
    /// Trees were equal, or every differing branch was walked within budget.
    pub completed: bool,
    /// Items applied locally.
    pub items_applied: u64,
    /// Error that aborted it, if any.
    pub error: Option<String>,
}

fn as_display<S: serde::Serializer>(state: &EngineState, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(state)
}
