//! The per-peer hot-path loop.

use super::apply::{apply_changes, Stopped};
use super::resolve::{collapse, decide_key, Decision, DeleteEvidence, KeyEvents};
use crate::controls::PeerControls;
use crate::metrics::{PeerMetrics, BACKPRESSURE_PAUSES};
use crate::shared::Shared;
use crate::status::PeerStatus;
use crate::stop::Stop;
use replication_core::{
    CdcEvent, Cursor, HeldState, LocalState, Next, PeerBackend, Retriable, StreamId, SyncEngineRef,
};
use replication_peer::{GapKind, StreamTailer, TailBatch, TailEvent, TailStart, TailerHandle};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How often a paused hot path re-asks `should_accept_writes` (a cheap, I/O-free call).
const BACKPRESSURE_POLL: Duration = Duration::from_millis(50);

/// Where a stopped tailer's successor starts: after everything it delivered (each
/// delivered batch was processed before the next was received).
fn resume_point(tailer: &TailerHandle) -> TailStart {
    let position = tailer.position();
    TailStart {
        after: position.after,
        entries_added: position.entries_added,
    }
}

/// The next tailer event; never resolves while no tailer runs.
async fn next_event(tailer: &mut Option<TailerHandle>) -> Option<TailEvent> {
    match tailer {
        Some(tailer) => tailer.recv().await,
        None => std::future::pending().await,
    }
}

/// The version a key's local state will be compared with: the highest its events carry.
fn version_hint(key: &KeyEvents, evidence: Option<&DeleteEvidence>) -> Option<u64> {
    let carried = key.events.iter().filter_map(|(_, event)| match event {
        CdcEvent::Put(item) => Some(item.version),
        CdcEvent::Delete { stamp, .. } => stamp.as_ref().map(|t| t.version),
    });
    let tombstone = match evidence {
        Some(DeleteEvidence::Tombstone(tombstone)) => Some(tombstone.version),
        _ => None,
    };
    carried.chain(tombstone).max()
}

/// One peer's hot path.
pub(crate) struct HotPath<S> {
    pub(crate) shared: Arc<Shared<S>>,
    pub(crate) peer: Arc<dyn PeerBackend>,
    pub(crate) status: Arc<PeerStatus>,
    pub(crate) metrics: PeerMetrics,
    pub(crate) repair_now: Arc<Notify>,
    pub(crate) controls: Arc<PeerControls>,
    pub(crate) stop: Stop,
}

impl<S: SyncEngineRef> HotPath<S> {
    /// Consumes tailer events until stopped. The batch in progress when the stop comes is
    /// finished (or abandoned if the store keeps failing) before the loop ends.
    ///
    /// The tailer runs only while `settings.hot_path.enabled` and the peer is not paused:
    /// disabling it by a reload or pausing it stops reading (remembering what was
    /// delivered), enabling or resuming it goes on from there.
    pub(crate) async fn run(mut self, start: TailStart) {
        let mut settings_rx = self.shared.settings_rx();
        let mut paused_rx = self.controls.paused_rx();
        // The settings sender lives as long as the engine runs; if it is gone, stop
        // watching rather than spin on a closed channel.
        let mut watching = true;
        let mut position = start;
        let mut tailer: Option<TailerHandle> = None;
        loop {
            let settings = self.shared.settings();
            let paused = *paused_rx.borrow_and_update();
            let reading = settings.hot_path.enabled && !paused;
            if reading && tailer.is_none() {
                tailer = Some(StreamTailer::spawn(
                    self.peer.clone(),
                    position,
                    crate::shared::tail_options(&settings),
                ));
            } else if !reading {
                if let Some(stopped) = tailer.take() {
                    let why = if paused {
                        "paused"
                    } else {
                        "hot path disabled"
                    };
                    tracing::info!(peer = %self.peer.node_id(), "{why}; stopped reading");
                    position = resume_point(&stopped);
                    stopped.stop().await;
                }
            }
            if !self.wait_until_store_accepts().await {
                break;
            }
            let event = tokio::select! {
                biased;
                _ = self.stop.stopped() => break,
                changed = settings_rx.changed(), if watching => {
                    match changed {
                        Ok(()) => {
                            let settings = settings_rx.borrow_and_update().clone();
                            if let Some(tailer) = &tailer {
                                tailer.set_options(crate::shared::tail_options(&settings));
                            }
                        }
                        Err(_) => watching = false,
                    }
                    continue;
                }
                // This task holds the controls, so their sender outlives the receiver.
                _ = paused_rx.changed() => continue,
                event = next_event(&mut tailer) => event,
            };
            let Some(event) = event else { break };
            match event {
                TailEvent::Batch(batch) => {
                    if self.process(batch).await.is_err() {
                        break;
                    }
                }
                TailEvent::Gap(gap) => self.on_gap(gap).await,
                TailEvent::Error(error) => {
                    tracing::warn!(peer = %self.peer.node_id(), error = %error, "stream read failed; the tailer retries");
                    self.status.set_error(error);
                }
            }
        }
        if let Some(tailer) = tailer {
            tailer.stop().await;
        }
    }

    /// Waits while the store asks for backpressure; false when stopped meanwhile.
    async fn wait_until_store_accepts(&mut self) -> bool {
        if self.shared.store.should_accept_writes() {
            return true;
        }
        metrics::counter!(BACKPRESSURE_PAUSES).increment(1);
        tracing::info!(peer = %self.peer.node_id(), "local store asks for backpressure; pausing reads");
        while !self.shared.store.should_accept_writes() {
            if !self.stop.sleep(BACKPRESSURE_POLL).await {
                return false;
            }
        }
        tracing::info!(peer = %self.peer.node_id(), "local store accepts writes again; resuming");
        true
    }

    async fn on_gap(&mut self, gap: replication_peer::GapReport) {
        // Repaired once even when the cold path is disabled (`ColdPath::run`). Marked first:
        // no cursor past the gap is recorded until that repair completes.
        self.status.mark_gap();
        match gap.kind {
            GapKind::Trimmed { lost } => {
                self.metrics.gap("trimmed");
                tracing::warn!(peer = %self.peer.node_id(), after = %gap.after, ?lost, resume = %gap.resume_from.after,
                    "entries after our cursor were trimmed from the peer's stream; repairing from its Merkle tree");
            }
            GapKind::Recreated => {
                self.metrics.gap("recreated");
                tracing::warn!(peer = %self.peer.node_id(), after = %gap.after, "the peer's stream was recreated; reading it from the start and repairing");
                // The old cursor means nothing in the new stream: record where we resume.
                self.checkpoint(gap.resume_from.after, gap.resume_from.entries_added)
                    .await;
            }
        }
        self.repair_now.notify_one();
    }

    /// Applies one batch and moves the cursor past it.
    async fn process(&mut self, batch: TailBatch) -> Result<(), Stopped> {
        let started = std::time::Instant::now();
        let TailBatch {
            records,
            last_id,
            position,
            lag,
            wire_bytes,
            content_bytes,
        } = batch;
        let read = records.len() as u64;
        self.metrics.bytes_read(wire_bytes, content_bytes);
        // Until this batch is applied we are behind by it too: health and the cold path's
        // "far behind" check must see that while a failing store holds the batch back.
        self.status
            .set_lag(lag.ms, lag.entries.map(|behind| behind + read), true);
        self.metrics.read.increment(read);
        self.metrics.batch_size.record(read as f64);
        let collapsed = collapse(records);
        self.metrics.collapsed.increment(collapsed.superseded);
        for rejected in &collapsed.rejected {
            tracing::warn!(peer = %self.peer.node_id(), entry = %rejected.entry_id, key = ?rejected.key,
                reason = %rejected.reason, "bad CDC entry skipped");
            self.metrics.rejected(rejected.reason.label());
        }

        let delete_evidence = self.delete_evidence(collapsed.delete_keys()).await?;
        let hints = collapsed
            .keys
            .iter()
            .map(|k| version_hint(k, delete_evidence.get(&k.key)))
            .collect();
        let local = self.local_states(collapsed.keys(), hints).await?;

        let mut changes = Vec::with_capacity(collapsed.keys.len());
        let (mut duplicates, mut stale) = (0u64, 0u64);
        for (KeyEvents { key, events }, local) in collapsed.keys.into_iter().zip(local) {
            let Ok(local) = local else {
                for (entry_id, _) in &events {
                    self.refuse(*entry_id, &key, "store_refused");
                }
                continue;
            };
            let evidence = delete_evidence
                .get(&key)
                .cloned()
                .unwrap_or(DeleteEvidence::Bare);
            let outcome = decide_key(events, local, &evidence);
            for (entry_id, reason) in outcome.refused {
                self.refuse(entry_id, &key, reason);
            }
            match outcome.decision {
                None => {}
                Some(Decision::Apply(change)) => changes.push(change),
                Some(Decision::Duplicate) => duplicates += 1,
                Some(Decision::Stale) => stale += 1,
                // `decide_key` lists refused events apart; it never decides a key this way.
                Some(Decision::Refused { .. }) => {}
            }
        }
        self.metrics.deduped.increment(duplicates);
        self.metrics.stale.increment(stale);

        let settings = self.shared.settings();
        let outcome = apply_changes(
            &*self.shared.store,
            &self.shared.writes,
            &self.shared.circuit,
            &settings.sync_engine,
            &self.metrics,
            changes,
            &mut self.stop,
        )
        .await?;
        self.metrics.applied.increment(outcome.applied);
        self.metrics
            .apply_seconds
            .record(started.elapsed().as_secs_f64());

        debug_assert_eq!(position.after, last_id);
        self.checkpoint(last_id, position.entries_added).await;
        self.status.set_lag(
            lag.ms,
            lag.entries,
            lag.entries.is_some_and(|behind| behind > 0),
        );
        self.metrics.lag_ms.set(lag.ms as f64);
        if let Some(entries) = lag.entries {
            self.metrics.lag_entries.set(entries as f64);
        }
        self.status.clear_error();
        Ok(())
    }

    /// What the writer still knows about each deleted key (docs/PROTOCOL.md, "How a delete
    /// travels"): its tombstone, or, without one, whether it holds the key again. One round
    /// trip for the tombstones; one more only for keys that have none.
    async fn delete_evidence(
        &mut self,
        keys: Vec<String>,
    ) -> Result<HashMap<String, DeleteEvidence>, Stopped> {
        let mut evidence = HashMap::with_capacity(keys.len());
        if keys.is_empty() {
            return Ok(evidence);
        }
        let peer = self.peer.clone();
        let tombstones = match self
            .retry("read the peer's tombstones", || peer.read_tombstones(&keys))
            .await?
        {
            Ok(tombstones) => tombstones,
            Err(e) => {
                // Unreadable for good: judged as if the writer kept no tombstones (counted);
                // its items still tell a superseded delete from a standing one.
                tracing::warn!(peer = %self.peer.node_id(), error = %e, keys = keys.len(),
                    "the peer's tombstones are unreadable; judging its deletes without them");
                for _ in &keys {
                    self.metrics.rejected("tombstones_unreadable");
                }
                vec![None; keys.len()]
            }
        };
        let mut without = Vec::new();
        for (key, tombstone) in keys.into_iter().zip(tombstones) {
            match tombstone {
                Some(tombstone) => {
                    evidence.insert(key, DeleteEvidence::Tombstone(tombstone));
                }
                None => without.push(key),
            }
        }
        if !without.is_empty() {
            let held = match self
                .retry("ask the peer which keys it holds", || {
                    peer.exists_many(&without)
                })
                .await?
            {
                Ok(held) => held,
                Err(e) => {
                    tracing::warn!(peer = %self.peer.node_id(), error = %e, keys = without.len(),
                        "the peer cannot say which keys it holds; its deletes without tombstones are not applied");
                    for key in without {
                        evidence.insert(key, DeleteEvidence::Unreadable);
                    }
                    return Ok(evidence);
                }
            };
            for (key, held) in without.into_iter().zip(held) {
                // A key the writer holds again was re-written after the delete there: the
                // delete is superseded. Only a key it holds in no form gets the bare rule.
                let seen = if held {
                    DeleteEvidence::Superseded
                } else {
                    DeleteEvidence::Bare
                };
                evidence.insert(key, seen);
            }
        }
        Ok(evidence)
    }

    /// What the store holds for every key, in order; `Err(())` for a key the store refuses
    /// to describe for good. A permanent refusal of the whole batch is narrowed down key by
    /// key, so one bad key cannot hold back the others. Keys the store cannot describe
    /// (no `local_states`) are derived from its tree and content, the search for their
    /// version starting at `hints` (the versions they will be compared with).
    async fn local_states(
        &mut self,
        keys: Vec<String>,
        hints: Vec<Option<u64>>,
    ) -> Result<Vec<Result<HeldState, ()>>, Stopped> {
        let store = self.shared.store.clone();
        let states: Vec<Result<Option<LocalState>, ()>> = match self
            .retry("read local states", || store.local_states(&keys))
            .await?
        {
            Ok(states) => states.into_iter().map(Ok).collect(),
            Err(_) => {
                let mut out = Vec::with_capacity(keys.len());
                for key in &keys {
                    let single = [key.clone()];
                    let state = self
                        .retry("read a local state", || store.local_states(&single))
                        .await?;
                    out.push(state.map(|mut s| s.pop().flatten()).map_err(|_| ()));
                }
                out
            }
        };
        let unknown: Vec<usize> = states
            .iter()
            .enumerate()
            .filter(|(_, state)| matches!(state, Ok(None)))
            .map(|(index, _)| index)
            .collect();
        let mut held: Vec<Result<HeldState, ()>> = states
            .into_iter()
            .map(|state| state.map(|s| HeldState::Known(s.unwrap_or(LocalState::Absent))))
            .collect();
        if unknown.is_empty() {
            return Ok(held);
        }
        let unknown_keys: Vec<String> = unknown.iter().map(|&i| keys[i].clone()).collect();
        let unknown_hints: Vec<Option<u64>> = unknown.iter().map(|&i| hints[i]).collect();
        let derived = self
            .retry("read the local tree and content", || {
                replication_merkle::derive_states(&*store, &unknown_keys, &unknown_hints)
            })
            .await?;
        match derived {
            Ok(derived) if derived.len() == unknown.len() => {
                for (index, derived) in unknown.into_iter().zip(derived) {
                    held[index] = Ok(HeldState::Derived(derived));
                }
            }
            _ => {
                for index in unknown {
                    held[index] = Err(());
                }
            }
        }
        Ok(held)
    }

    /// Counts and logs an event that is not applied as bad input.
    fn refuse(&self, entry_id: StreamId, key: &str, reason: &'static str) {
        tracing::warn!(peer = %self.peer.node_id(), entry = %entry_id, key, reason, "change not applied");
        self.metrics.rejected(reason);
    }

    /// Records the cursor, unless a gap waits for its repair: then the cursor store keeps
    /// the one from before the gap until the repair completes (`PeerStatus::hold_checkpoint`),
    /// so that a crash meanwhile finds the gap again instead of forgetting what it lost.
    async fn checkpoint(&mut self, stream_id: StreamId, entries_added: Option<u64>) {
        self.status.set_cursor(stream_id);
        let cursor = Cursor {
            peer_id: self.peer.node_id().to_owned(),
            stream_id,
            entries_added,
            updated_at_ms: self.shared.clock.now_ms(),
        };
        if let Some(cursor) = self.status.hold_checkpoint(cursor) {
            self.shared.record_cursor(cursor).await;
        }
    }

    /// Retries a read the batch cannot do without, with capped backoff, while its error is
    /// retriable; once stopping, until the drain deadline. A permanent error is returned at
    /// once (`Ok(Err(e))`): retrying it could only stall the stream.
    async fn retry<T, E, F, Fut>(
        &mut self,
        what: &str,
        mut call: F,
    ) -> Result<Result<T, E>, Stopped>
    where
        E: std::fmt::Display + Retriable,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut backoff = super::apply::retry_policy(&self.shared.settings().sync_engine).backoff();
        loop {
            let e = match call().await {
                Ok(value) => return Ok(Ok(value)),
                Err(e) => e,
            };
            self.status.set_error(format!("cannot {what}: {e}"));
            match backoff.next(&e) {
                Next::Retry(delay) => {
                    tracing::warn!(peer = %self.peer.node_id(), error = %e, "cannot {what}; retrying");
                    if !self.stop.sleep_in_flight(delay).await {
                        return Err(Stopped);
                    }
                }
                Next::Permanent | Next::Exhausted => {
                    tracing::error!(peer = %self.peer.node_id(), error = %e, "cannot {what}; the error is permanent, not retried");
                    return Ok(Err(e));
                }
            }
        }
    }
}
