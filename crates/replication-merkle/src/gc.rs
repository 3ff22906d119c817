//! The tombstone-collection horizon (docs/PROTOCOL.md "Deletes and tombstones", Collection).

use std::time::Duration;

/// The `recorded_before_ms` to pass to `SyncEngineRef::purge_tombstones`, or `None` when no
/// tombstone may be collected yet.
///
/// A tombstone may go once the local store recorded it more than `retention` ago and every
/// peer has completed a repair cycle (`CycleReport::completed`) that started after the
/// store recorded it (times by the local wall clock, never the deleter's).
/// `last_complete_cycle_starts` holds, per configured peer, the start time (ms) of its most
/// recent completed cycle, `None` if it has none yet: then nothing is collected, because
/// that peer may still hold the deleted items. With no peers, only retention applies.
pub fn gc_horizon(
    now_ms: i64,
    retention: Duration,
    last_complete_cycle_starts: &[Option<i64>],
) -> Option<i64> {
    let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    let by_age = now_ms.saturating_sub(retention_ms);
    last_complete_cycle_starts
        .iter()
        .try_fold(by_age, |horizon, start| {
            start.map(|start| horizon.min(start))
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests panic on failure by design.
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);
    const NOW: i64 = 30 * 86_400_000;

    #[test]
    fn retention_bounds_the_horizon_when_peers_are_current() {
        assert_eq!(
            gc_horizon(NOW, 7 * DAY, &[Some(NOW - 1_000), Some(NOW - 60_000)]),
            Some(NOW - 7 * 86_400_000)
        );
    }

    #[test]
    fn the_slowest_peer_bounds_the_horizon() {
        let old = NOW - 10 * 86_400_000;
        assert_eq!(gc_horizon(NOW, 7 * DAY, &[Some(NOW), Some(old)]), Some(old));
    }

    #[test]
    fn a_peer_without_a_completed_cycle_blocks_collection() {
        assert_eq!(gc_horizon(NOW, DAY, &[Some(NOW), None]), None);
    }

    #[test]
    fn without_peers_only_retention_applies_and_huge_retention_saturates() {
        assert_eq!(gc_horizon(NOW, DAY, &[]), Some(NOW - 86_400_000));
        assert_eq!(
            gc_horizon(NOW, Duration::MAX, &[]),
            Some(NOW.saturating_sub(i64::MAX))
        );
    }
}
