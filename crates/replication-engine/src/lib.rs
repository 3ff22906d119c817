//! The mesh replication engine: keeps a node's local store in sync with every peer.
//!
//! Users depend on this crate alone. It re-exports, by name, the core types and traits a
//! host needs (config, the store and peer traits, the CDC encoder and the Merkle hashing
//! rules a store must follow), the cursor and peer backends, and adds [`ReplicationEngine`], which wires them together:
//! a hot path per peer (tail its CDC stream, resolve conflicts, apply, checkpoint) and a
//! cold path per peer (Merkle repair), with health, metrics, live reload and graceful
//! shutdown. See docs/ARCHITECTURE.md.

mod circuit;
mod clock;
mod cold_path;
mod connector;
mod controls;
mod engine;
mod error;
mod guarded_store;
mod health;
mod hot_path;
mod lifecycle;
pub mod metrics;
mod peer_manager;
pub mod preview;
mod reload;
mod sampler;
mod shared;
mod status;
mod stop;
mod sync_evidence;
mod write_gate;

pub use circuit::SyncEngineCircuit;
pub use connector::{PeerConnector, RedisConnector};
pub use controls::ControlError;
pub use engine::{EngineBuilder, ReplicationEngine};
pub use error::{EngineError, Result};
pub use health::{
    BytesRead, GapCounts, HealthCheck, LagSample, PeerHealth, PeerHistory, RepairHealth,
    RepairTrigger,
};
pub use peer_manager::PeerManager;
pub use sampler::SAMPLE_EVERY;

// Core types by name, not core's modules: what a host configures, implements (a store
// writes its own CDC entries and keeps the Merkle tree by the same rules) and reads back.
pub use replication_core::config::{redact_url, redact_urls_in, validate_redis_url};
pub use replication_core::merkle::{interior_hash, leaf_hash, MerkleTree};
pub use replication_core::{
    CdcEncoder, CdcEvent, Change, ColdPathSettings, ConfigError, ConnectionState, ConnectionStatus,
    ContentType, Cursor, CursorConfig, CursorError, CursorStore, EngineState, HotPathSettings,
    LimitSettings, LocalState, NoOpSyncEngine, PeerBackend, PeerConfig, PeerError, PeerSettings,
    PeerTlsConfig, ReplicationEngineConfig, Settings, Stamp, StreamId, SyncEngineRef,
    SyncEngineSettings, SyncError, SyncItem, Tombstone, TombstoneSettings,
};
pub use replication_cursor::{MemoryCursorStore, SqliteCursorStore};
pub use replication_peer::{CircuitState, RedisPeer};
