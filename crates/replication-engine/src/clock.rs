//! Wall-clock milliseconds, the unit of cursors, tombstones and stamps.

use std::sync::Arc;

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The wall clock the engine's decisions read (repair cycle start times, the tombstone
/// collection horizon, cursor timestamps): the system clock unless the host supplies one,
/// as a simulation on virtual time does. It must be the clock the local store records
/// tombstones by (docs/PROTOCOL.md, "Collection").
#[derive(Clone, Default)]
pub(crate) struct WallClock(Option<Arc<dyn Fn() -> i64 + Send + Sync>>);

impl WallClock {
    pub(crate) fn new(clock: Arc<dyn Fn() -> i64 + Send + Sync>) -> Self {
        Self(Some(clock))
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.0.as_ref().map_or_else(now_ms, |clock| clock())
    }
}

impl std::fmt::Debug for WallClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "WallClock(supplied)"
        } else {
            "WallClock(system)"
        })
    }
}
