//! Core of the mesh replication engine: value types, the traits the engine is built on,
//! the CDC codec, Merkle hashing rules, the conflict order, the engine state machine and
//! configuration.
//!
//! This crate performs no I/O and needs no async runtime (`cargo xtask ci` checks that it
//! depends on neither fred, rusqlite nor tokio). Backends implement its traits:
//! [`SyncEngineRef`] (the local store), [`CursorStore`] (checkpoints) and [`PeerBackend`]
//! (a peer's stream, tree and items).

mod backoff;
pub mod cdc;
pub mod config;
mod cursor;
mod held;
mod item;
mod item_json;
mod limits;
pub mod merkle;
mod peer;
mod redis_url;
mod retriable;
mod stamp;
mod state;
mod stream_id;
mod sync_engine;
mod tombstone_json;
pub mod wire_keys;

#[cfg(test)]
mod test_fixtures;

pub use backoff::{
    seed_jitter, Backoff, Jitter, Next, NoJitter, RetryError, RetryPolicy, SeededJitter,
};
pub use cdc::{CdcDecodeError, CdcDecoder, CdcEncoder, CdcEvent, DecodeLimits, RejectReason};
pub use config::{
    ColdPathSettings, ConfigError, CursorConfig, HotPathSettings, LimitSettings, PeerConfig,
    PeerSettings, PeerTlsConfig, ReplicationEngineConfig, Settings, SyncEngineSettings,
    TombstoneSettings,
};
pub use cursor::{Cursor, CursorError, CursorStore};
pub use held::{
    find_leaf_version, Derived, HeldState, Verdict, LOW_VERSIONS_SEARCHED, VERSION_SEARCH_RADIUS,
};
pub use item::{content_hash, content_hash_hex, parse_hash_hex, ContentType, SyncItem};
pub use item_json::{decode_item_json, encode_item_json, ItemJsonError};
pub use limits::ObjectIdLimits;
pub use peer::{
    CheckedRead, ConnectionState, ConnectionStatus, ItemRead, PeerBackend, PeerError, RawEntry,
    ReadRequest, ServingServer, StreamInfo, StreamLane,
};
pub use redis_url::{percent_decode, RedisTopology, RedisUrl};
pub use retriable::Retriable;
pub use stamp::{incoming_wins, LocalState, Stamp, StampKind, Tombstone};
pub use state::{EngineState, InvalidTransition};
pub use stream_id::{StreamId, StreamIdError};
pub use sync_engine::{Change, NoOpSyncEngine, SyncEngineRef, SyncError};
pub use tombstone_json::{
    decode_recorded_tombstone_json, decode_tombstone_json, encode_tombstone_json,
    TombstoneJsonError,
};
pub use wire_keys::WireKeys;

/// mockall mocks of the core traits (feature `mocks`), for other crates' unit tests.
#[cfg(any(test, feature = "mocks"))]
pub mod mocks {
    pub use crate::cursor::MockCursorStore;
    pub use crate::peer::MockPeerBackend;
    pub use crate::sync_engine::MockSyncEngineRef;
}
