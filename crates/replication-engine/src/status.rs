//! Cached per-peer facts that health checks read without I/O.
//!
//! The hot and cold paths write here as they work (through `PeerMetrics`, which counts in
//! the metrics facade and here at once); the status sampler adds a sample every few
//! seconds, from which health derives rates and the status page draws the lag sparkline.

use crate::health::{BytesRead, GapCounts, LagSample, PeerHealth, RepairHealth};
use crate::sync_evidence::{StreamEnd, SyncEvidence};
use replication_core::{ConnectionState, Cursor, PeerBackend, PeerConfig, StreamId};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Samples kept per peer: at one per `SAMPLE_EVERY` (engine.rs), five minutes.
pub(crate) const HISTORY_LEN: usize = 150;

/// Samples the applied rate of health is averaged over.
const RATE_WINDOW: usize = 5;

/// What the hot and cold paths last learnt about a peer.
#[derive(Debug, Default)]
pub(crate) struct PeerStatus {
    inner: Mutex<StatusInner>,
    /// Per-batch counts, kept as atomics: the hot path adds to them once per batch.
    applied: AtomicU64,
    wire_bytes: AtomicU64,
    content_bytes: AtomicU64,
}

#[derive(Debug, Default, Clone)]
struct StatusInner {
    cursor: Option<StreamId>,
    lag_ms: Option<u64>,
    lag_entries: Option<u64>,
    catching_up: bool,
    last_error: Option<String>,
    last_error_at_ms: Option<i64>,
    rejected: BTreeMap<&'static str, u64>,
    gaps: GapCounts,
    repairs_run: u64,
    last_repair: Option<RepairHealth>,
    last_difference: Option<RepairHealth>,
    /// Completed repair cycles as evidence for tombstone collection (the horizon).
    sync: SyncEvidence,
    /// Recent samples, oldest first, with the applied total each was taken at.
    history: VecDeque<(LagSample, u64)>,
    /// Gaps detected in the peer's stream so far (each one wants a completed repair).
    gaps_seen: u64,
    /// `gaps_seen` as of the start of the latest completed repair cycle.
    gaps_repaired: u64,
    /// The newest cursor the hot path did not record because a gap waited for its repair.
    held_checkpoint: Option<Cursor>,
}

impl PeerStatus {
    fn with<T>(&self, f: impl FnOnce(&mut StatusInner) -> T) -> T {
        // Plain data: a panic mid-update cannot leave it inconsistent in a harmful way.
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut inner)
    }

    /// The hot path has judged every entry up to `cursor`.
    pub(crate) fn set_cursor(&self, cursor: StreamId) {
        self.with(|s| {
            s.cursor = Some(cursor);
            s.sync.cursor_moved(cursor);
        });
    }

    pub(crate) fn set_lag(&self, ms: u64, entries: Option<u64>, catching_up: bool) {
        self.with(|s| {
            s.lag_ms = Some(ms);
            s.lag_entries = entries;
            s.catching_up = catching_up;
        });
    }

    pub(crate) fn lag_entries(&self) -> Option<u64> {
        self.with(|s| s.lag_entries)
    }

    pub(crate) fn set_error(&self, error: impl ToString) {
        let error = error.to_string();
        let at = crate::clock::now_ms();
        self.with(|s| {
            s.last_error = Some(error);
            s.last_error_at_ms = Some(at);
        });
    }

    pub(crate) fn clear_error(&self) {
        self.with(|s| {
            s.last_error = None;
            s.last_error_at_ms = None;
        });
    }

    pub(crate) fn count_applied(&self, changes: u64) {
        self.applied.fetch_add(changes, Ordering::Relaxed);
    }

    pub(crate) fn count_bytes_read(&self, wire: u64, content: u64) {
        self.wire_bytes.fetch_add(wire, Ordering::Relaxed);
        self.content_bytes.fetch_add(content, Ordering::Relaxed);
    }

    pub(crate) fn count_rejected(&self, reason: &'static str) {
        self.with(|s| *s.rejected.entry(reason).or_default() += 1);
    }

    pub(crate) fn count_gap(&self, kind: &'static str, at_ms: i64) {
        self.with(|s| {
            match kind {
                "recreated" => s.gaps.recreated += 1,
                _ => s.gaps.trimmed += 1,
            }
            s.gaps.last_at_ms = Some(at_ms);
        });
    }

    /// Records a cycle's outcome, numbering it; `completed` is a completed cycle's start time
    /// and where the peer's stream ended then.
    pub(crate) fn set_repair(&self, mut repair: RepairHealth, completed: Option<(i64, StreamEnd)>) {
        self.with(|s| {
            s.repairs_run += 1;
            repair.cycle = s.repairs_run;
            if repair.keys_different > 0 {
                s.last_difference = Some(repair.clone());
            }
            s.last_repair = Some(repair);
            if let Some((started_ms, end)) = completed {
                s.sync.cycle_completed(started_ms, end, s.cursor);
            }
        });
    }

    /// Records a gap in the peer's stream: entries were lost to us until a repair cycle
    /// that starts from now completes.
    pub(crate) fn mark_gap(&self) {
        self.with(|s| s.gaps_seen += 1);
    }

    /// The gap count a repair cycle starting now would cover.
    pub(crate) fn gaps_seen(&self) -> u64 {
        self.with(|s| s.gaps_seen)
    }

    /// A repair cycle that started when `gaps_seen` was `covered` completed. Returns the
    /// checkpoint held back meanwhile, to record now, once no gap waits any more.
    pub(crate) fn gaps_repaired_up_to(&self, covered: u64) -> Option<Cursor> {
        self.with(|s| {
            s.gaps_repaired = s.gaps_repaired.max(covered);
            if s.gaps_seen > s.gaps_repaired {
                return None;
            }
            s.held_checkpoint.take()
        })
    }

    /// The cursor to record now, or `None` when it is held back: while a gap waits for its
    /// repair, the cursor store keeps the one from before the gap (a crash then finds the
    /// gap again; a recorded cursor past it would forget what the gap lost).
    pub(crate) fn hold_checkpoint(&self, cursor: Cursor) -> Option<Cursor> {
        self.with(|s| {
            if s.gaps_seen > s.gaps_repaired {
                s.held_checkpoint = Some(cursor);
                None
            } else {
                s.held_checkpoint = None;
                Some(cursor)
            }
        })
    }

    /// True while a detected gap waits for a completed repair cycle.
    pub(crate) fn gap_unrepaired(&self) -> bool {
        self.with(|s| s.gaps_seen > s.gaps_repaired)
    }

    /// The start time of the latest completed cycle that counts for collection
    /// ([`SyncEvidence`]): the peer has seen every tombstone recorded before it.
    pub(crate) fn synced_since_ms(&self) -> Option<i64> {
        self.with(|s| s.sync.since_ms())
    }

    /// Adds a sample taken at `at_ms`, dropping the oldest beyond [`HISTORY_LEN`].
    pub(crate) fn sample(&self, at_ms: i64) {
        let applied = self.applied.load(Ordering::Relaxed);
        self.with(|s| {
            let applied_per_sec = s.history.back().map_or(0.0, |(prev, prev_applied)| {
                rate(applied.saturating_sub(*prev_applied), at_ms - prev.at_ms)
            });
            s.history.push_back((
                LagSample {
                    at_ms,
                    lag_ms: s.lag_ms,
                    lag_entries: s.lag_entries,
                    applied_per_sec,
                },
                applied,
            ));
            while s.history.len() > HISTORY_LEN {
                s.history.pop_front();
            }
        });
    }

    /// The kept samples, oldest first.
    pub(crate) fn history(&self) -> Vec<LagSample> {
        self.with(|s| s.history.iter().map(|(sample, _)| sample.clone()).collect())
    }

    /// Health of the peer: connection facts from the backend's cache, the rest from here.
    pub(crate) fn health(
        &self,
        config: &PeerConfig,
        backend: Option<&dyn PeerBackend>,
        paused: bool,
    ) -> PeerHealth {
        let inner = self.with(|s| s.clone());
        let connection = backend.map(|b| b.connection());
        let state = connection
            .as_ref()
            .map_or(ConnectionState::Closed, |c| c.state);
        let connected = state == ConnectionState::Connected;
        let circuit_open = connection.as_ref().is_some_and(|c| c.circuit_open);
        let applied_total = self.applied.load(Ordering::Relaxed);
        // The average over the last few samples (with their applied totals), now included.
        let now_ms = crate::clock::now_ms();
        let window_start = inner.history.len().saturating_sub(RATE_WINDOW);
        let applied_per_sec =
            inner
                .history
                .get(window_start)
                .map_or(0.0, |(oldest, applied_then)| {
                    rate(
                        applied_total.saturating_sub(*applied_then),
                        now_ms - oldest.at_ms,
                    )
                });
        PeerHealth {
            node_id: config.node_id.clone(),
            enabled: config.enabled,
            paused,
            connected,
            connection_state: state.to_string(),
            circuit_open,
            lag_ms: inner.lag_ms,
            lag_entries: inner.lag_entries,
            catching_up: inner.catching_up,
            cursor: inner.cursor.map(|c| c.to_string()),
            applied_total,
            applied_per_sec,
            rejected: inner
                .rejected
                .into_iter()
                .map(|(reason, n)| (reason.to_owned(), n))
                .collect(),
            gaps: inner.gaps,
            bytes_read: BytesRead {
                wire: self.wire_bytes.load(Ordering::Relaxed),
                content: self.content_bytes.load(Ordering::Relaxed),
            },
            last_error: inner
                .last_error
                .or_else(|| connection.as_ref().and_then(|c| c.last_error.clone())),
            last_error_at_ms: inner.last_error_at_ms,
            last_success_ms: connection.as_ref().and_then(|c| c.last_success_ms),
            server: connection.as_ref().and_then(|c| c.server.clone()),
            reconnects: connection.as_ref().map_or(0, |c| c.reconnects),
            failovers: connection.as_ref().map_or(0, |c| c.failovers),
            repairs_run: inner.repairs_run,
            last_repair: inner.last_repair,
            last_difference: inner.last_difference,
            gap_unrepaired: inner.gaps_seen > inner.gaps_repaired,
        }
    }
}

/// `count` per second over `elapsed_ms`; zero for an empty or backwards interval.
fn rate(count: u64, elapsed_ms: i64) -> f64 {
    if elapsed_ms <= 0 {
        return 0.0;
    }
    // Counts and intervals here stay far below 2^52: the conversions are exact.
    #[allow(clippy::cast_precision_loss)]
    let per_sec = count as f64 * 1000.0 / elapsed_ms as f64;
    (per_sec * 10.0).round() / 10.0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests panic on failure by design.
mod tests {
    use super::*;

    #[test]
    fn samples_give_rates_and_are_bounded() {
        let status = PeerStatus::default();
        status.set_lag(40, Some(2), true);
        status.sample(0);
        status.count_applied(30);
        status.sample(2_000);
        let history = status.history();
        assert_eq!(history.len(), 2);
        assert_eq!(history[0].applied_per_sec, 0.0);
        assert_eq!(history[1].applied_per_sec, 15.0);
        assert_eq!(history[1].lag_ms, Some(40));
        for i in 0..(HISTORY_LEN as i64 + 10) {
            status.sample(4_000 + i * 2_000);
        }
        let history = status.history();
        assert_eq!(history.len(), HISTORY_LEN);
        assert!(history.windows(2).all(|w| w[0].at_ms < w[1].at_ms));
    }

    #[test]
    fn counts_by_reason_and_kind_and_numbers_repairs() {
        let status = PeerStatus::default();
        status.count_rejected("hash_mismatch");
        status.count_rejected("hash_mismatch");
        status.count_rejected("too_large");
        status.count_gap("trimmed", 5);
        status.count_gap("recreated", 9);
        status.count_bytes_read(10, 25);
        let report = replication_merkle::CycleReport::default();
        let repair = RepairHealth::finished(&report, crate::health::RepairTrigger::Gap, 1, 2);
        status.set_repair(repair.clone(), None);
        status.set_repair(repair, Some((1, StreamEnd::NothingToRead)));
        let config = PeerConfig::new("b", "redis://127.0.0.1:1");
        let health = status.health(&config, None, true);
        assert!(health.paused);
        assert_eq!(health.rejected.get("hash_mismatch"), Some(&2));
        assert_eq!(health.rejected.get("too_large"), Some(&1));
        assert_eq!((health.gaps.trimmed, health.gaps.recreated), (1, 1));
        assert_eq!(health.gaps.last_at_ms, Some(9));
        assert_eq!(
            (health.bytes_read.wire, health.bytes_read.content),
            (10, 25)
        );
        assert_eq!(health.repairs_run, 2);
        assert_eq!(health.last_repair.unwrap().cycle, 2);
        assert_eq!(status.synced_since_ms(), Some(1));
    }

    #[test]
    fn the_last_cycle_that_found_differences_is_kept_apart() {
        let status = PeerStatus::default();
        let trigger = crate::health::RepairTrigger::Scheduled;
        let mut found = replication_merkle::CycleReport::default();
        found.keys_resolved = 3;
        status.set_repair(
            RepairHealth::finished(&found, trigger, 1, 2),
            Some((1, StreamEnd::NothingToRead)),
        );
        let mut equal = replication_merkle::CycleReport::default();
        equal.in_sync = true;
        status.set_repair(
            RepairHealth::finished(&equal, trigger, 3, 4),
            Some((3, StreamEnd::NothingToRead)),
        );
        let config = PeerConfig::new("b", "redis://127.0.0.1:1");
        let health = status.health(&config, None, false);
        assert_eq!(health.last_repair.map(|r| r.cycle), Some(2));
        let difference = health.last_difference.unwrap();
        assert_eq!((difference.cycle, difference.keys_different), (1, 3));
    }

    #[test]
    fn rates_round_to_a_tenth_and_ignore_empty_intervals() {
        assert_eq!(rate(1, 3_000), 0.3);
        assert_eq!(rate(5, 0), 0.0);
        assert_eq!(rate(5, -10), 0.0);
    }
}
