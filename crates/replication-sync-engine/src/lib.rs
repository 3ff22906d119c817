//! A [`SyncEngineRef`](replication_core::SyncEngineRef) for a real
//! [`sync_engine::SyncEngine`]: the replication engine replicates into a sync-engine store
//! running in the same process, as `ReplicationEngine::with_sync_engine(config, rx,
//! Arc::new(store))`.
//!
//! sync-engine is AGPL-3.0. This crate is opt-in: nothing else in the workspace depends on
//! it by default (the daemon links it only with its `sync-engine` feature).
//!
//! What sync-engine does with what the adapter hands it, and what the adapter adds so that
//! the engine's rules hold against it (conflict order, tombstones, version bumps with
//! unchanged content), is written down in docs/PROTOCOL.md, "sync-engine as the local store".

mod convert;
mod error;
mod merkle_reads;
mod states;
mod store;
mod tombstones;

pub use error::AdapterError;
pub use store::SyncEngineStore;
/// The sync-engine crate this adapter is built against, so that callers build their
/// `SyncEngine` from the same version.
pub use sync_engine;
