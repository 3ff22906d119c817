//! `Clock`: where [`crate::MemoryStore`]'s timestamps come from, logical or supplied.

use std::sync::Arc;

/// Where the store's timestamps (`updated_at`, `deleted_at`, stream ids) come from.
#[derive(Clone)]
pub(crate) enum Clock {
    /// A logical clock: every reading returns the previous one plus one millisecond, so
    /// tests are deterministic and successive local writes get increasing times.
    Counter(i64),
    /// A caller-supplied clock (e.g. wall time, or a shared test clock).
    External(Arc<dyn Fn() -> i64 + Send + Sync>),
}

impl Clock {
    /// When the store records a tombstone, for collection: the engine compares it with
    /// the wall-clock start times of repair cycles, so a logical clock records wall time
    /// (as a real node's store does), and an external one its own reading.
    pub(crate) fn recording_time(&self) -> i64 {
        match self {
            Clock::Counter(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Clock::External(clock) => clock(),
        }
    }

    pub(crate) fn now(&mut self) -> i64 {
        match self {
            Clock::Counter(last) => {
                *last += 1;
                *last
            }
            Clock::External(clock) => clock(),
        }
    }
}
