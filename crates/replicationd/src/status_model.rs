//! The status report: one typed, serialisable snapshot that the status page, its
//! `/status.json` and `replicationd status` all render, so they cannot disagree.

use replication_engine::{HealthCheck, PeerHistory};
use serde::{Deserialize, Serialize};

/// What a running daemon reports about itself. Built from cached state only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct StatusReport {
    /// This node's id (`local_node_id`).
    pub(crate) node_id: String,
    /// The daemon's version.
    pub(crate) version: String,
    /// When the report was made, ms since the epoch.
    pub(crate) generated_at_ms: i64,
    /// Engine, store and per-peer health.
    pub(crate) health: HealthCheck,
    /// Per peer, the samples of the last few minutes (the page's sparklines).
    pub(crate) history: Vec<PeerHistory>,
    /// Seconds between samples, and so between the page's refreshes.
    pub(crate) sample_every_secs: u64,
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
