//! Test support shared by the workspace's tests: real `redis-server` processes on free
//! loopback ports (one per test, killed on drop), alone, as a Sentinel-watched primary and
//! replica ([`SentinelSet`]) or as a Redis Cluster ([`RedisCluster`]); plus in-memory
//! implementations of the core traits for algorithm tests that need no network, and
//! [`MinimalStore`], a store with only the required `SyncEngineRef` methods, and
//! [`MemoryMesh`], a peer connector over in-memory stores, and [`CrashCursorStore`],
//! cursors that a simulated crash loses unless flushed. Around them, one home for
//! what tests repeat: [`free_port`], an engine config for one real-Redis peer
//! ([`one_redis_peer`]), waiting on a condition instead of sleeping
//! ([`eventually`] and its kin), the `replicationd` process harness ([`Daemon`]), a
//! plain [`http_get`], [`FaultProxy`] (a TCP proxy that injects faults and WAN latency
//! into one link), [`GatedPeer`] (an in-memory peer whose chosen calls stop at a
//! [`Gate`] until released), metrics read back from a debugging recorder ([`Recorded`]), and
//! [`resp`], the one hand-written RESP client tests (and xtask's demo) probe Redis with.

mod cluster;
mod crash_cursors;
mod daemon;
mod engine_config;
mod gated_peer;
mod http;
mod lazy_tree;
mod memory_mesh;
mod memory_peer;
mod memory_store;
mod metrics;
mod minimal_store;
mod port;
mod proxy;
mod redis_server;
pub mod resp;
mod sentinel;
mod store_clock;
mod wait;

pub use cluster::RedisCluster;
pub use crash_cursors::CrashCursorStore;
pub use daemon::{replicationd_binary, wait_ready, Daemon};
pub use engine_config::one_redis_peer;
pub use gated_peer::{Gate, GatedCall, GatedPeer};
pub use http::{http_get, http_get_at};
pub use memory_mesh::MemoryMesh;
pub use memory_peer::{MemoryPeer, PeerCounters};
pub use memory_store::{MemoryStore, StoreCounters};
pub use metrics::Recorded;
pub use minimal_store::MinimalStore;
pub use port::free_port;
pub use proxy::{FaultProxy, LinkMode};
pub use redis_server::{RedisServer, RedisServerBuilder, TestkitError};
pub use sentinel::SentinelSet;
pub use wait::{
    eventually, eventually_async, eventually_some, eventually_some_async, wait_blocking, within,
    WAIT_LIMIT,
};
