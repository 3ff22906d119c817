//! Peer backends of the mesh replication engine.
//!
//! - [`RedisPeer`]: `replication_core::PeerBackend` over a peer's Redis (fred 10): a
//!   blocking stream connection and a query connection, reconnecting by themselves,
//!   behind the tower layers of [`resilience`] (circuit breaker, rate limit, retry, timeout).
//! - [`StreamTailer`]: tails any `PeerBackend`'s CDC stream: adaptive batch size, prefetch,
//!   decode with the core codec, gap and lag detection.
//! - [`parse_item_json`] / [`parse_json_document`]: item layouts, shared with the node store.

mod items;
mod redis;
pub mod resilience;
mod tail;

pub use items::{parse_item_json, parse_json_document};
pub use redis::RedisPeer;
pub use resilience::circuit::{
    CallPermit, CircuitBreaker, CircuitBreakerLayer, CircuitBreakerService, CircuitCounters,
    CircuitOpenError, CircuitState,
};
pub use tail::{
    detect_gap, GapCheck, GapKind, GapReport, Lag, StreamTailer, TailBatch, TailEvent, TailOptions,
    TailPosition, TailStart, TailStatus, TailerHandle,
};
