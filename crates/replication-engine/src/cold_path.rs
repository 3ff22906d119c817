//! The cold path: per peer, a Merkle repair cycle every `settings.cold_path.interval`
//! (staggered across peers), at once when the hot path reports a gap, with backoff after
//! failures, and skipped while the peer's tailer is far behind (the stream will bring
//! what a cycle would fetch). After each cycle, tombstones every peer has seen are collected.
//!
//! A gap is repaired even with `cold_path.enabled = false`: entries lost from the stream
//! reach us no other way, so cycles run (resumed, retried with backoff) until one that
//! started after the gap completes; health shows the gap as unrepaired until then.
//!
//! An operator's request runs a cycle at once even when periodic repair is disabled or the
//! tailer is behind; while the peer is paused, no cycle runs at all.

use crate::controls::PeerControls;
use crate::guarded_store::GuardedStore;
use crate::health::{RepairHealth, RepairTrigger};
use crate::metrics::{self, PeerMetrics, TOMBSTONES_PURGED};
use crate::peer_manager::PeerManager;
use crate::shared::Shared;
use crate::status::PeerStatus;
use crate::stop::Stop;
use crate::sync_evidence::StreamEnd;
use replication_core::{Backoff, PeerBackend, RetryPolicy, StreamInfo, SyncEngineRef};
use replication_merkle::{repair_cycle_with, PeerSource, RepairSettings, RepairState};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Delay before resuming a cycle that ran out of budget: soon, but not in a tight loop.
const RESUME_AFTER_BUDGET: Duration = Duration::from_millis(200);

/// One peer's repair scheduler.
pub(crate) struct ColdPath<S> {
    pub(crate) shared: Arc<Shared<S>>,
    pub(crate) peer: Arc<dyn PeerBackend>,
    pub(crate) status: Arc<PeerStatus>,
    pub(crate) metrics: PeerMetrics,
    pub(crate) repair_now: Arc<Notify>,
    pub(crate) controls: Arc<PeerControls>,
    pub(crate) stop: Stop,
    pub(crate) manager: Weak<PeerManager>,
    /// First cycle's delay: spreads peers over the interval so they do not all walk at once.
    pub(crate) first_delay: Duration,
}

impl<S: SyncEngineRef> ColdPath<S> {
    pub(crate) async fn run(mut self) {
        let mut state = RepairState::default();
        let mut next = Instant::now() + self.first_delay;
        let mut interval = self.shared.settings().cold_path.interval;
        let mut settings_rx = self.shared.settings_rx();
        let mut watching = true;
        let mut failures: Option<Backoff> = None;
        loop {
            let trigger = tokio::select! {
                biased;
                _ = self.stop.stopped() => return,
                _ = self.controls.repair_requested() => RepairTrigger::Operator,
                _ = self.repair_now.notified() => RepairTrigger::Gap,
                changed = settings_rx.changed(), if watching => {
                    match changed {
                        // A new interval applies to the wait in progress: a cycle due within
                        // the new interval runs then, not after the old one.
                        Ok(()) => {
                            let new = settings_rx.borrow_and_update().cold_path.interval;
                            if new != interval {
                                next = next.min(Instant::now() + new);
                                interval = new;
                            }
                        }
                        Err(_) => watching = false,
                    }
                    continue;
                }
                _ = tokio::time::sleep_until(next) => RepairTrigger::Scheduled,
            };
            let settings = self.shared.settings();
            let cold = &settings.cold_path;
            interval = cold.interval;
            // Set before anything can `continue`: a past deadline would spin.
            next = Instant::now() + cold.interval;
            if self.controls.is_paused() {
                tracing::debug!(peer = %self.peer.node_id(), "peer paused; repair cycle skipped");
                self.metrics.repair("skipped").increment(1);
                continue;
            }
            let gaps = self.status.gaps_seen();
            let repairing_gap = self.status.gap_unrepaired();
            // Cycles that go on repairing a gap are the gap's, whatever woke them.
            let trigger = match trigger {
                RepairTrigger::Scheduled if repairing_gap => RepairTrigger::Gap,
                other => other,
            };
            if !cold.enabled && !repairing_gap && trigger != RepairTrigger::Operator {
                continue;
            }
            let behind = self.status.lag_entries().unwrap_or(0);
            if trigger == RepairTrigger::Scheduled && behind > cold.skip_when_lag_entries_over {
                tracing::debug!(peer = %self.peer.node_id(), behind, "tailer far behind; repair cycle skipped");
                self.metrics.repair("skipped").increment(1);
                continue;
            }
            let started_ms = self.shared.clock.now_ms();
            let stream_end = tokio::select! {
                biased;
                _ = self.stop.stopped() => return,
                end = stream_end(&*self.peer, settings.hot_path.enabled) => end,
            };
            let repair_settings = RepairSettings::from(cold);
            let target = GuardedStore::new(
                &*self.shared.store,
                &self.shared.writes,
                &self.shared.circuit,
            );
            let source = PeerSource(&*self.peer);
            let result = tokio::select! {
                biased;
                _ = self.stop.stopped() => return,
                result = repair_cycle_with(&target, &source, &repair_settings, &mut state) => result,
            };
            match result {
                Ok(report) => {
                    failures = None;
                    let outcome = if report.in_sync {
                        "in_sync"
                    } else if report.completed {
                        "repaired"
                    } else {
                        "partial"
                    };
                    self.metrics.repair(outcome).increment(1);
                    self.metrics
                        .repair_counter(metrics::REPAIR_ITEMS_APPLIED)
                        .increment(report.items_applied);
                    self.metrics
                        .repair_counter(metrics::REPAIR_ITEMS_FETCHED)
                        .increment(report.items_fetched);
                    self.metrics
                        .repair_counter(metrics::REPAIR_ITEMS_REFUSED)
                        .increment(report.items_refused);
                    self.metrics
                        .repair_counter(metrics::REPAIR_BYTES_FETCHED)
                        .increment(report.bytes_fetched);
                    self.metrics
                        .repair_counter(metrics::REPAIR_ROUND_TRIPS)
                        .increment(report.peer_round_trips);
                    if report.items_applied > 0 || !report.in_sync {
                        tracing::info!(peer = %self.peer.node_id(), ?report, "repair cycle");
                    }
                    let completed = report.in_sync || report.completed;
                    self.status.set_repair(
                        RepairHealth::finished(
                            &report,
                            trigger,
                            started_ms,
                            self.shared.clock.now_ms(),
                        ),
                        completed.then_some((started_ms, stream_end)),
                    );
                    // A gap wants what we lacked brought, not the peer's deletes applied
                    // (those it applies when it repairs from us): resuming soon would only
                    // walk again to the same pending deletes.
                    if report.walked {
                        if let Some(held) = self.status.gaps_repaired_up_to(gaps) {
                            self.shared.record_cursor(held).await;
                        }
                    } else {
                        next = Instant::now() + RESUME_AFTER_BUDGET.min(cold.interval);
                    }
                    self.collect_tombstones(&settings).await;
                }
                Err(error) => {
                    self.metrics.repair("failed").increment(1);
                    tracing::warn!(peer = %self.peer.node_id(), error = %error, "repair cycle failed; nothing was changed locally");
                    self.status.set_repair(
                        RepairHealth::failed(
                            error.to_string(),
                            trigger,
                            started_ms,
                            self.shared.clock.now_ms(),
                        ),
                        None,
                    );
                    // Cycles are periodic whatever failed: the policy spaces them out
                    // (unbounded, so a delay always comes) and the interval caps it.
                    let backoff = failures.get_or_insert_with(|| {
                        RetryPolicy::new(Duration::from_secs(1).min(cold.interval), cold.interval)
                            .backoff()
                    });
                    next = Instant::now() + backoff.next_delay().unwrap_or(cold.interval);
                }
            }
        }
    }

    /// Drops tombstones that every configured peer has seen (docs/PROTOCOL.md).
    async fn collect_tombstones(&self, settings: &replication_core::Settings) {
        let Some(manager) = self.manager.upgrade() else {
            return;
        };
        let synced = manager.synced_since_all();
        let Some(horizon) = replication_merkle::gc_horizon(
            self.shared.clock.now_ms(),
            settings.tombstones.retention,
            &synced,
        ) else {
            return;
        };
        match self.shared.store.purge_tombstones(horizon).await {
            Ok(0) => {}
            Ok(purged) => {
                tracing::info!(purged, horizon, "collected tombstones every peer has seen");
                ::metrics::counter!(TOMBSTONES_PURGED).increment(purged);
            }
            Err(e) => tracing::warn!(error = %e, "cannot collect tombstones"),
        }
    }
}

/// Where the peer's stream ends now, as a cycle starts: its writes older than what the
/// cycle will find are all before that end, and a completed cycle counts for collection
/// only once the hot path has read that far (`SyncEvidence`). Read before the walk, so
/// the end is never older than the state the walk sees.
async fn stream_end(peer: &dyn PeerBackend, hot_path_enabled: bool) -> StreamEnd {
    if !hot_path_enabled {
        // No hot path reads the stream, so none of its entries can reach the store.
        return StreamEnd::NothingToRead;
    }
    match peer.stream_info().await {
        Ok(Some(StreamInfo {
            last_entry: Some(last),
            ..
        })) => StreamEnd::At(last),
        Ok(_) => StreamEnd::NothingToRead,
        Err(e) => {
            tracing::debug!(peer = %peer.node_id(), error = %e, "stream end unknown; this cycle will not count for tombstone collection");
            StreamEnd::Unknown
        }
    }
}
