//! Test support shared by the workspace's tests: real `redis-server` processes on free
//! loopback ports (one per test, killed on drop), plus in-memory implementations of the
//! core traits for algorithm tests that need no network, and [`MinimalStore`], a store
//! with only the required `SyncEngineRef` methods.

mod lazy_tree;
mod memory_peer;
mod memory_store;
mod minimal_store;
mod redis_server;
mod store_clock;

pub use memory_peer::{MemoryPeer, PeerCounters};
pub use memory_store::{MemoryStore, StoreCounters};
pub use minimal_store::MinimalStore;
pub use redis_server::{RedisServer, RedisServerBuilder, TestkitError};
