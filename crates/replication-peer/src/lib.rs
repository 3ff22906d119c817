//! Peer backends of the mesh replication engine.
//!
//! - [`RedisPeer`]: `replication_core::PeerBackend` over a peer's Redis (fred 10): a
//!   blocking stream connection and a query connection, reconnecting by themselves,
//!   behind tower layers (circuit breaker, rate limit, retry, timeout; composed in
//!   `resilience/mod.rs`).
//! - [`CircuitBreaker`]: the breaker of those layers, usable on its own (the engine guards
//!   local-store writes with it).
//! - [`StreamTailer`]: tails any `PeerBackend`'s CDC stream: adaptive batch size, prefetch,
//!   decode with the core codec, gap and lag detection.

mod items;
mod redis;
mod resilience;
mod tail;

pub use redis::RedisPeer;
pub use resilience::circuit::{
    CallPermit, CircuitBreaker, CircuitCounters, CircuitOpenError, CircuitState,
};
pub use tail::{
    GapKind, GapReport, Lag, StreamTailer, TailBatch, TailEvent, TailOptions, TailPosition,
    TailStart, TailStatus, TailerHandle,
};
