//! Test support shared by the workspace's tests: real `redis-server` processes on free
//! loopback ports (one per test, killed on drop), plus in-memory implementations of the
//! core traits for algorithm tests that need no network.

mod redis_server;

pub use redis_server::{RedisServer, RedisServerBuilder, TestkitError};
