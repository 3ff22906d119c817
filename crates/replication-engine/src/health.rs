//! Health report types: built from cached state only, never by network I/O.
//!
//! - `ready`: the engine is `Running` and the local store takes writes (its circuit is not
//!   open and it does not ask for backpressure). Readiness ignores peers: a node whose
//!   peers are all down still serves its own data and catches up when they return.
//! - `healthy`: ready, and every enabled peer is connected with a closed circuit.
//!   A paused peer still counts: pausing is a decision, not a fault, and the page shows it.
//!
//! The types serialise and deserialise alike, so a program reading `/health` (the daemon's
//! `status` command, its status page) works with these types rather than untyped JSON.

use replication_core::EngineState;
use replication_merkle::CycleReport;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Engine health, as `health_check()` returns it and `/health` serves it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// Lifecycle state.
    pub state: EngineState,
    /// See the module docs.
    pub ready: bool,
    /// See the module docs.
    pub healthy: bool,
    /// `SyncEngineRef::should_accept_writes` as last seen.
    pub sync_engine_accepting_writes: bool,
    /// State of the local-store circuit breaker: `closed`, `open` or `half_open`.
    pub sync_engine_circuit: String,
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerHealth {
    /// Peer node id.
    pub node_id: String,
    /// `false` when configured with `enabled = false`.
    pub enabled: bool,
    /// An operator paused replication from this peer (in memory: a restart resumes it).
    pub paused: bool,
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
    /// Changes the hot path applied from this peer since the engine started.
    pub applied_total: u64,
    /// Changes applied per second, averaged over the last few status samples.
    pub applied_per_sec: f64,
    /// Entries rejected as bad input since the engine started, by reason (the `reason`
    /// label of `replication_events_rejected_total`).
    pub rejected: BTreeMap<String, u64>,
    /// Gaps found in the peer's stream since the engine started.
    pub gaps: GapCounts,
    /// Bytes read from the peer's stream since the engine started.
    pub bytes_read: BytesRead,
    /// Last error of the connection, tailer or repair, secrets redacted. It stays until
    /// the hot path applies a batch, so see `last_error_at_ms` for its age.
    pub last_error: Option<String>,
    /// When the hot path or repair recorded `last_error`, ms since the epoch (`None` for
    /// an error only the connection reports).
    pub last_error_at_ms: Option<i64>,
    /// Last successful call, ms since the epoch.
    pub last_success_ms: Option<i64>,
    /// Repair cycles that ran (or failed) since the engine started; skipped ones excluded.
    pub repairs_run: u64,
    /// The server holding the peer's stream (`host:port`: the primary a Sentinel named,
    /// the Cluster primary owning the stream's slot), once connected.
    pub server: Option<String>,
    /// Times the connection was re-established.
    pub reconnects: u64,
    /// Times `server` changed while connected: failovers of the peer's Redis.
    pub failovers: u64,
    /// Last repair cycle, if any ran.
    pub last_repair: Option<RepairHealth>,
    /// Last repair cycle that found keys different (it may be `last_repair`, or older
    /// when later cycles found the trees equal).
    pub last_difference: Option<RepairHealth>,
    /// Entries of the peer's stream were lost to us (a gap: trimmed before we read them,
    /// or the stream was recreated) and no repair cycle has completed since. A repair runs
    /// at once, even with the cold path disabled, and is retried until it completes.
    pub gap_unrepaired: bool,
}

/// Gaps found in one peer's stream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GapCounts {
    /// Entries after our cursor were trimmed before we read them.
    pub trimmed: u64,
    /// The stream was deleted and created anew.
    pub recreated: u64,
    /// When the latest gap was found, ms since the epoch.
    pub last_at_ms: Option<i64>,
}

/// Bytes read from one peer's stream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BytesRead {
    /// As they came over the wire: every field of every entry, content still compressed
    /// where the writer compressed it.
    pub wire: u64,
    /// Content bytes of the decoded puts, after decompression.
    pub content: u64,
}

/// What started a repair cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepairTrigger {
    /// The periodic schedule (`settings.cold_path.interval`), or the resumption of a cycle
    /// that ran out of budget.
    Scheduled,
    /// The hot path found a gap in the peer's stream.
    Gap,
    /// An operator asked for it.
    Operator,
}

impl RepairTrigger {
    /// The trigger's name as the status report's JSON spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Gap => "gap",
            Self::Operator => "operator",
        }
    }
}

impl std::fmt::Display for RepairTrigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Outcome of the last cold-path cycle of a peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairHealth {
    /// Number of this cycle among the peer's cycles since the engine started (1 is the first).
    pub cycle: u64,
    /// What started it.
    pub trigger: RepairTrigger,
    /// When it started, ms since the epoch.
    pub started_at_ms: i64,
    /// When it finished, ms since the epoch.
    pub finished_at_ms: i64,
    /// How long it ran, ms.
    pub duration_ms: u64,
    /// The Merkle roots were equal: nothing differed.
    pub in_sync: bool,
    /// Trees were equal, or every differing branch was walked within budget.
    pub completed: bool,
    /// Keys whose leaves differed and that the cycle resolved.
    pub keys_different: u64,
    /// Items read from the peer.
    pub items_fetched: u64,
    /// Content bytes of the items read from the peer.
    pub bytes_fetched: u64,
    /// Items applied locally.
    pub items_applied: u64,
    /// Local keys deleted because the peer's tombstone won.
    pub tombstones_applied: u64,
    /// Error that aborted it, if any.
    pub error: Option<String>,
}

impl RepairHealth {
    /// A cycle that ran to its end (`cycle` is filled in when it is recorded).
    pub(crate) fn finished(
        report: &CycleReport,
        trigger: RepairTrigger,
        started_at_ms: i64,
        finished_at_ms: i64,
    ) -> Self {
        Self {
            cycle: 0,
            trigger,
            started_at_ms,
            finished_at_ms,
            duration_ms: u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX),
            in_sync: report.in_sync,
            completed: report.in_sync || report.completed,
            keys_different: report.keys_resolved,
            items_fetched: report.items_fetched,
            bytes_fetched: report.bytes_fetched,
            items_applied: report.items_applied,
            tombstones_applied: report.tombstones_applied,
            error: None,
        }
    }

    /// A cycle that failed; nothing was changed locally.
    pub(crate) fn failed(
        error: String,
        trigger: RepairTrigger,
        started_at_ms: i64,
        finished_at_ms: i64,
    ) -> Self {
        Self {
            cycle: 0,
            trigger,
            started_at_ms,
            finished_at_ms,
            duration_ms: u64::try_from(finished_at_ms.saturating_sub(started_at_ms)).unwrap_or(0),
            in_sync: false,
            completed: false,
            keys_different: 0,
            items_fetched: 0,
            bytes_fetched: 0,
            items_applied: 0,
            tombstones_applied: 0,
            error: Some(error),
        }
    }
}

/// One status sample of a peer, taken every few seconds whether or not anyone asks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LagSample {
    /// When it was taken, ms since the epoch.
    pub at_ms: i64,
    /// `lag_ms` at that moment.
    pub lag_ms: Option<u64>,
    /// `lag_entries` at that moment.
    pub lag_entries: Option<u64>,
    /// Changes applied per second since the previous sample.
    pub applied_per_sec: f64,
}

/// The recent samples of one peer, oldest first (the last few minutes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerHistory {
    /// Peer node id.
    pub node_id: String,
    /// Samples, oldest first.
    pub samples: Vec<LagSample>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests panic on failure by design.
mod tests {
    use super::*;

    #[test]
    fn health_reads_back_what_it_serves() {
        let health = HealthCheck {
            state: EngineState::Running,
            ready: true,
            healthy: false,
            sync_engine_accepting_writes: true,
            sync_engine_circuit: "half_open".into(),
            sync_engine_server: Some("10.0.0.9:6379".into()),
            sync_engine_failovers: 1,
            peers_connected: 0,
            peers_total: 1,
            peers: vec![PeerHealth {
                node_id: "b".into(),
                enabled: true,
                paused: true,
                connected: false,
                connection_state: "reconnecting".into(),
                circuit_open: false,
                lag_ms: Some(3),
                lag_entries: None,
                catching_up: false,
                cursor: Some("1-0".into()),
                applied_total: 7,
                applied_per_sec: 1.5,
                rejected: BTreeMap::from([("hash_mismatch".into(), 2)]),
                gaps: GapCounts {
                    trimmed: 1,
                    recreated: 0,
                    last_at_ms: Some(5),
                },
                bytes_read: BytesRead {
                    wire: 10,
                    content: 20,
                },
                last_error: None,
                last_error_at_ms: None,
                last_success_ms: Some(9),
                server: None,
                reconnects: 2,
                failovers: 0,
                repairs_run: 1,
                last_repair: Some(RepairHealth::failed(
                    "peer b: closed".into(),
                    RepairTrigger::Operator,
                    1,
                    4,
                )),
                last_difference: None,
                gap_unrepaired: true,
            }],
        };
        let json = serde_json::to_string(&health).unwrap();
        assert!(json.contains("\"state\":\"Running\""), "{json}");
        assert!(json.contains("\"trigger\":\"operator\""), "{json}");
        let back: HealthCheck = serde_json::from_str(&json).unwrap();
        assert_eq!(back, health);
    }

    #[test]
    fn a_trigger_displays_as_its_json_spells_it() {
        for trigger in [
            RepairTrigger::Scheduled,
            RepairTrigger::Gap,
            RepairTrigger::Operator,
        ] {
            let json = serde_json::to_string(&trigger).unwrap();
            assert_eq!(json, format!("\"{trigger}\""));
        }
    }
}
