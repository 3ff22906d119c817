//! Engine configuration: inert serde data with documented defaults, validated once.
//!
//! Field names are user-facing and fixed. Unknown fields are an error naming the
//! field; durations are humantime strings (`"5s"`, `"2m"`). [`ReplicationEngineConfig::validate`]
//! checks what serde cannot and names the bad field (`peers[1].redis_url`).

pub use crate::limits::LimitSettings;
use crate::redis_url::RedisUrl;
pub use crate::redis_url::{redact_url, redact_urls_in, validate_redis_url};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Top-level engine configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicationEngineConfig {
    /// This node's id (required). Peers with this id are refused.
    pub local_node_id: String,
    /// Peers to replicate from. Default: none.
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
    /// Tuning of the hot path, cold path and resilience layers.
    #[serde(default)]
    pub settings: Settings,
    /// Cursor checkpoint store.
    #[serde(default)]
    pub cursor: CursorConfig,
}

impl ReplicationEngineConfig {
    /// A config with defaults everywhere and no peers.
    pub fn new(local_node_id: impl Into<String>) -> Self {
        Self {
            local_node_id: local_node_id.into(),
            peers: Vec::new(),
            settings: Settings::default(),
            cursor: CursorConfig::default(),
        }
    }

    /// Checks what serde cannot: the error names the offending field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.local_node_id.trim().is_empty() {
            return Err(ConfigError::new("local_node_id", "must not be empty"));
        }
        let mut seen = HashSet::new();
        for (i, peer) in self.peers.iter().enumerate() {
            let field = |name: &str| format!("peers[{i}].{name}");
            if peer.node_id.trim().is_empty() {
                return Err(ConfigError::new(field("node_id"), "must not be empty"));
            }
            if peer.node_id == self.local_node_id {
                return Err(ConfigError::new(
                    field("node_id"),
                    format!("{:?} is this node's own id (local_node_id)", peer.node_id),
                ));
            }
            if !seen.insert(peer.node_id.as_str()) {
                return Err(ConfigError::new(
                    field("node_id"),
                    format!("duplicate peer id {:?}", peer.node_id),
                ));
            }
            let url = RedisUrl::parse(&peer.redis_url)
                .map_err(|why| ConfigError::new(field("redis_url"), why))?;
            if let Some(tls) = &peer.tls {
                if !url.tls {
                    return Err(ConfigError::new(
                        field("tls"),
                        "TLS settings need a rediss:// (or rediss-sentinel://, rediss-cluster://) redis_url",
                    ));
                }
                if tls.cert_file.is_some() != tls.key_file.is_some() {
                    return Err(ConfigError::new(
                        field("tls"),
                        "cert_file and key_file go together",
                    ));
                }
            }
        }
        self.settings.validate()?;
        if self.cursor.sqlite_path.as_os_str().is_empty() {
            return Err(ConfigError::new("cursor.sqlite_path", "must not be empty"));
        }
        Ok(())
    }

    /// The peer with this id.
    pub fn peer(&self, node_id: &str) -> Option<&PeerConfig> {
        self.peers.iter().find(|p| p.node_id == node_id)
    }
}

/// One peer of the mesh.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// The peer's node id (unique, not `local_node_id`).
    pub node_id: String,
    /// `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS; or a Sentinel
    /// (`redis-sentinel://…?sentinelServiceName=…`) or Cluster (`redis-cluster://…`) URL,
    /// see [`RedisUrl`]. Never logged.
    pub redis_url: String,
    /// Prefix of every key the peer writes, with its trailing separator (`"node-b:"`). Default `""`.
    #[serde(default)]
    pub redis_prefix: String,
    /// `false` keeps the peer configured but idle (not connected). Default `true`.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// TLS material for `rediss://` peers. Default: system roots, no client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<PeerTlsConfig>,
}

impl PeerConfig {
    /// An enabled peer with no prefix.
    pub fn new(node_id: impl Into<String>, redis_url: impl Into<String>) -> Self {
        Self {
            node_id: node_id.into(),
            redis_url: redis_url.into(),
            redis_prefix: String::new(),
            enabled: true,
            tls: None,
        }
    }

    /// The URL with any password replaced by `***`, safe to log or show.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.redis_url)
    }
}

impl fmt::Debug for PeerConfig {
    // Hand-written so the password in `redis_url` never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerConfig")
            .field("node_id", &self.node_id)
            .field("redis_url", &self.redacted_url())
            .field("redis_prefix", &self.redis_prefix)
            .field("enabled", &self.enabled)
            .field("tls", &self.tls)
            .finish()
    }
}

/// TLS settings of a `rediss://` peer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerTlsConfig {
    /// PEM file of CA certificates to trust instead of the system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (with `key_file`) for mutual TLS.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

/// Tuning knobs, all with defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Real-time stream tailing.
    #[serde(default)]
    pub hot_path: HotPathSettings,
    /// Periodic Merkle repair.
    #[serde(default)]
    pub cold_path: ColdPathSettings,
    /// Peer calls: timeouts, retries, circuit breaker, reconnects.
    #[serde(default)]
    pub peer: PeerSettings,
    /// Writes into the local store: circuit breaker and retry backoff.
    #[serde(default)]
    pub sync_engine: SyncEngineSettings,
    /// Tombstone retention.
    #[serde(default)]
    pub tombstones: TombstoneSettings,
    /// Bounds on input from peers and local clients.
    #[serde(default)]
    pub limits: LimitSettings,
    /// Longest `shutdown()` waits for in-flight batches. Default `"10s"`.
    #[serde(default = "default_shutdown_timeout", with = "humantime_serde")]
    pub shutdown_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            hot_path: HotPathSettings::default(),
            cold_path: ColdPathSettings::default(),
            peer: PeerSettings::default(),
            sync_engine: SyncEngineSettings::default(),
            tombstones: TombstoneSettings::default(),
            limits: LimitSettings::default(),
            shutdown_timeout: default_shutdown_timeout(),
        }
    }
}

impl Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        let hot = &self.hot_path;
        if hot.batch_size == 0 {
            return Err(ConfigError::new(
                "settings.hot_path.batch_size",
                "must be at least 1",
            ));
        }
        if hot.max_batch_size < hot.batch_size {
            return Err(ConfigError::new(
                "settings.hot_path.max_batch_size",
                format!("must be at least batch_size ({})", hot.batch_size),
            ));
        }
        if hot.block_timeout.is_zero() {
            return Err(ConfigError::new(
                "settings.hot_path.block_timeout",
                "must be positive",
            ));
        }
        if hot.max_content_bytes == 0 {
            return Err(ConfigError::new(
                "settings.hot_path.max_content_bytes",
                "must be positive",
            ));
        }
        let cold = &self.cold_path;
        if cold.interval.is_zero() {
            return Err(ConfigError::new(
                "settings.cold_path.interval",
                "must be positive",
            ));
        }
        if cold.max_items_per_cycle == 0 {
            return Err(ConfigError::new(
                "settings.cold_path.max_items_per_cycle",
                "must be at least 1",
            ));
        }
        if cold.max_bytes_per_cycle == 0 {
            return Err(ConfigError::new(
                "settings.cold_path.max_bytes_per_cycle",
                "must be positive",
            ));
        }
        if cold.batch_size == 0 {
            return Err(ConfigError::new(
                "settings.cold_path.batch_size",
                "must be at least 1",
            ));
        }
        let peer = &self.peer;
        if peer.command_timeout.is_zero() {
            return Err(ConfigError::new(
                "settings.peer.command_timeout",
                "must be positive",
            ));
        }
        if peer.connect_timeout.is_zero() {
            return Err(ConfigError::new(
                "settings.peer.connect_timeout",
                "must be positive",
            ));
        }
        if peer.circuit_failure_threshold == 0 {
            return Err(ConfigError::new(
                "settings.peer.circuit_failure_threshold",
                "must be at least 1",
            ));
        }
        if self.sync_engine.circuit_failure_threshold == 0 {
            return Err(ConfigError::new(
                "settings.sync_engine.circuit_failure_threshold",
                "must be at least 1",
            ));
        }
        if peer.reconnect_max_delay < peer.reconnect_initial_delay {
            return Err(ConfigError::new(
                "settings.peer.reconnect_max_delay",
                "must be at least reconnect_initial_delay",
            ));
        }
        if self.shutdown_timeout.is_zero() {
            return Err(ConfigError::new(
                "settings.shutdown_timeout",
                "must be positive",
            ));
        }
        self.limits.validate()
    }
}

/// Hot path: tailing peer streams.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HotPathSettings {
    /// `false` disables tailing (cold path only). Default `true`.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Entries per read to start with; adapted between 1 and `max_batch_size`. Default 100.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Upper bound of the adaptive batch size. Default 1000.
    #[serde(default = "default_max_batch_size")]
    pub max_batch_size: usize,
    /// How long one read blocks waiting for new entries. Default `"5s"`.
    #[serde(default = "default_block_timeout", with = "humantime_serde")]
    pub block_timeout: Duration,
    /// Largest decompressed content accepted from a stream entry. Default 16 MiB.
    #[serde(default = "default_max_content_bytes")]
    pub max_content_bytes: usize,
}

impl Default for HotPathSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            batch_size: default_batch_size(),
            max_batch_size: default_max_batch_size(),
            block_timeout: default_block_timeout(),
            max_content_bytes: default_max_content_bytes(),
        }
    }
}

/// Cold path: Merkle comparison and repair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColdPathSettings {
    /// `false` disables periodic repair; a gap in a peer's stream is still repaired (once,
    /// until a cycle completes). Default `true`.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Time between repair cycles per peer (staggered across peers). Default `"60s"`.
    #[serde(default = "default_cold_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Most items fetched per cycle and peer; the next cycle resumes. Default 1000.
    #[serde(default = "default_max_items_per_cycle")]
    pub max_items_per_cycle: usize,
    /// Most bytes of items fetched per cycle and peer. Default 64 MiB. Items are sized at
    /// the peer first and only those that fit are fetched; the rest wait for the next
    /// cycle. A cycle exceeds it only to read, alone, one item larger than the whole budget
    /// (or, from a peer that cannot size its items, by its last item, read one at a time).
    #[serde(default = "default_max_bytes_per_cycle")]
    pub max_bytes_per_cycle: u64,
    /// Most paths or keys in one batched peer call. Default 500.
    #[serde(default = "default_cold_batch_size")]
    pub batch_size: usize,
    /// Skip the periodic cycle for a peer whose tailer is this many entries behind
    /// (it is catching up; a cycle now would fetch what the stream brings anyway). Default 10000.
    #[serde(default = "default_skip_lag_entries")]
    pub skip_when_lag_entries_over: u64,
}

impl Default for ColdPathSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: default_cold_interval(),
            max_items_per_cycle: default_max_items_per_cycle(),
            max_bytes_per_cycle: default_max_bytes_per_cycle(),
            batch_size: default_cold_batch_size(),
            skip_when_lag_entries_over: default_skip_lag_entries(),
        }
    }
}

/// Peer calls: the tower stack around them and the connection upkeep.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerSettings {
    /// Timeout of one connection attempt. Default `"5s"`.
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Timeout of one non-blocking command attempt. Default `"5s"`.
    #[serde(default = "default_command_timeout", with = "humantime_serde")]
    pub command_timeout: Duration,
    /// Extra attempts of a failed repair read (tree, items, sizes) or ping; stream reads
    /// and the hot path's reads are retried by their callers instead. Default 2.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Consecutive failures that open a peer's circuit. Default 5.
    #[serde(default = "default_failure_threshold")]
    pub circuit_failure_threshold: u32,
    /// How long an open circuit fails fast before letting a probe through. Default `"30s"`.
    #[serde(default = "default_peer_open_for", with = "humantime_serde")]
    pub circuit_open_for: Duration,
    /// First reconnect delay; doubles up to `reconnect_max_delay`, with jitter. Default `"100ms"`.
    #[serde(default = "default_reconnect_initial", with = "humantime_serde")]
    pub reconnect_initial_delay: Duration,
    /// Cap of the reconnect delay. Default `"10s"`.
    #[serde(default = "default_reconnect_max", with = "humantime_serde")]
    pub reconnect_max_delay: Duration,
    /// Most calls per second to one peer (cold path reads); `None` is unlimited. Default none.
    #[serde(default)]
    pub max_requests_per_second: Option<u32>,
}

impl Default for PeerSettings {
    fn default() -> Self {
        Self {
            connect_timeout: default_connect_timeout(),
            command_timeout: default_command_timeout(),
            retries: default_retries(),
            circuit_failure_threshold: default_failure_threshold(),
            circuit_open_for: default_peer_open_for(),
            reconnect_initial_delay: default_reconnect_initial(),
            reconnect_max_delay: default_reconnect_max(),
            max_requests_per_second: None,
        }
    }
}

/// Writes into the local store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncEngineSettings {
    /// Consecutive failed writes that open the store circuit. Default 5.
    #[serde(default = "default_failure_threshold")]
    pub circuit_failure_threshold: u32,
    /// How long the open circuit waits before a probe write. Default `"5s"`.
    #[serde(default = "default_store_open_for", with = "humantime_serde")]
    pub circuit_open_for: Duration,
    /// First retry delay of a failed batch; doubles up to `retry_max_delay`. Default `"50ms"`.
    #[serde(default = "default_retry_initial", with = "humantime_serde")]
    pub retry_initial_delay: Duration,
    /// Cap of the retry delay. Default `"5s"`.
    #[serde(default = "default_retry_max", with = "humantime_serde")]
    pub retry_max_delay: Duration,
}

impl Default for SyncEngineSettings {
    fn default() -> Self {
        Self {
            circuit_failure_threshold: default_failure_threshold(),
            circuit_open_for: default_store_open_for(),
            retry_initial_delay: default_retry_initial(),
            retry_max_delay: default_retry_max(),
        }
    }
}

/// Tombstones: how long deletes are remembered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TombstoneSettings {
    /// Minimum age before a tombstone may be collected, even once every peer has seen it.
    /// Default `"7days"`.
    #[serde(default = "default_tombstone_retention", with = "humantime_serde")]
    pub retention: Duration,
}

impl Default for TombstoneSettings {
    fn default() -> Self {
        Self {
            retention: default_tombstone_retention(),
        }
    }
}

/// Cursor checkpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CursorConfig {
    /// SQLite database file. Default `"replication_cursors.db"`.
    #[serde(default = "default_sqlite_path")]
    pub sqlite_path: PathBuf,
    /// Longest time a cursor stays unflushed. Default `"1s"`.
    #[serde(default = "default_flush_interval", with = "humantime_serde")]
    pub flush_interval: Duration,
}

impl Default for CursorConfig {
    fn default() -> Self {
        Self {
            sqlite_path: default_sqlite_path(),
            flush_interval: default_flush_interval(),
        }
    }
}

/// A configuration value that is not acceptable; names the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {field}: {message}")]
pub struct ConfigError {
    /// Dotted path of the field, e.g. `peers[1].redis_url`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_batch_size() -> usize {
    100
}
fn default_max_batch_size() -> usize {
    1000
}
fn default_block_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_max_content_bytes() -> usize {
    crate::cdc::DecodeLimits::DEFAULT_MAX_DECOMPRESSED_BYTES
}
fn default_cold_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_max_items_per_cycle() -> usize {
    1000
}
fn default_max_bytes_per_cycle() -> u64 {
    64 * 1024 * 1024
}
fn default_cold_batch_size() -> usize {
    500
}
fn default_skip_lag_entries() -> u64 {
    10_000
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_command_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_retries() -> u32 {
    2
}
fn default_failure_threshold() -> u32 {
    5
}
fn default_peer_open_for() -> Duration {
    Duration::from_secs(30)
}
fn default_reconnect_initial() -> Duration {
    Duration::from_millis(100)
}
fn default_reconnect_max() -> Duration {
    Duration::from_secs(10)
}
fn default_store_open_for() -> Duration {
    Duration::from_secs(5)
}
fn default_retry_initial() -> Duration {
    Duration::from_millis(50)
}
fn default_retry_max() -> Duration {
    Duration::from_secs(5)
}
fn default_tombstone_retention() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}
fn default_shutdown_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_sqlite_path() -> PathBuf {
    PathBuf::from("replication_cursors.db")
}
fn default_flush_interval() -> Duration {
    Duration::from_secs(1)
}

#[cfg(test)]
mod tests;
