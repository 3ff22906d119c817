//! The mesh replication engine: keeps a node's local store in sync with every peer.
//!
//! Users depend on this crate alone. It re-exports the core types and traits, the cursor
//! and peer backends, and adds [`ReplicationEngine`], which wires them together:
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

pub use replication_core::{
    cdc, config, merkle, Change, ConfigError, ConnectionState, ConnectionStatus, ContentType,
    Cursor, CursorError, CursorStore, EngineState, LocalState, NoOpSyncEngine, PeerBackend,
    PeerConfig, PeerError, ReplicationEngineConfig, Settings, Stamp, StreamId, SyncEngineRef,
    SyncError, SyncItem, Tombstone,
};
pub use replication_cursor::{MemoryCursorStore, SqliteCursorStore};
pub use replication_peer::{CircuitState, RedisPeer};
