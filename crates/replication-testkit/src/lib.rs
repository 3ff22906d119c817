//! Test support shared by the workspace's tests: real `redis-server` processes on free
//! loopback ports (one per test, killed on drop), alone, as a Sentinel-watched primary and
//! replica ([`SentinelSet`]) or as a Redis Cluster ([`RedisCluster`]); plus in-memory
//! implementations of the core traits for algorithm tests that need no network, and
//! [`MinimalStore`], a store with only the required `SyncEngineRef` methods, and
//! [`CrashCursorStore`], cursors that a simulated crash loses unless flushed.

mod cluster;
mod crash_cursors;
mod lazy_tree;
mod memory_peer;
mod memory_store;
mod minimal_store;
mod redis_server;
mod sentinel;
mod store_clock;
mod wait;

pub use cluster::RedisCluster;
pub use crash_cursors::CrashCursorStore;
pub use memory_peer::{MemoryPeer, PeerCounters};
pub use memory_store::{MemoryStore, StoreCounters};
pub use minimal_store::MinimalStore;
pub use redis_server::{RedisServer, RedisServerBuilder, TestkitError};
pub use sentinel::SentinelSet;
