//! The hot path: per peer, tail its stream and apply what it says, batch by batch.
//!
//! read batch (`StreamTailer`, prefetching) → fold each key's events → stamp deletes with the
//! peer's tombstones → compare with the local states (conflict order, echo dedup) →
//! apply through `SyncEngineCircuit` → set the cursor. The cursor is set only after the
//! batch is applied (or its entries deliberately rejected).

mod apply;
mod resolve;
mod task;

pub(crate) use task::HotPath;
