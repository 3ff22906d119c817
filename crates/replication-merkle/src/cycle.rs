//! One repair cycle against one peer: compare roots, walk the differing branches level by
//! level, resolve differing keys within the cycle's budgets, then apply the peer's winning
//! writes in batches.
//!
//! All reads of a cycle (both trees, local stamps, the peer's items and tombstones) happen
//! before its first local write, so a peer that fails mid-cycle changes nothing locally:
//! the cycle returns the error and the next one starts again from the roots. The changes
//! held back meanwhile are bounded by the item and byte budgets: items are sized before
//! they are read, and only those that fit the byte budget are fetched (see `fit.rs`).

use crate::error::RepairError;
use crate::fit::fitting;
use crate::report::{Budget, CycleReport};
use crate::resolve::resolve;
use crate::settings::RepairSettings;
use crate::source::{LocalStore, PeerSource, RepairPeer, RepairTarget};
use crate::state::{Candidate, NodePair, RepairState};
use crate::walk::expand;
use crate::ReadStage;
use futures::future::try_join;
use replication_core::{Change, PeerBackend, SyncEngineRef};
use std::time::Instant;

/// Runs one repair cycle of the local store `local` from `peer`; see [`repair_cycle_with`].
pub async fn repair_cycle<S: SyncEngineRef>(
    local: &S,
    peer: &dyn PeerBackend,
    settings: &RepairSettings,
    state: &mut RepairState,
) -> Result<CycleReport, RepairError> {
    repair_cycle_with(&LocalStore(local), &PeerSource(peer), settings, state).await
}

/// Runs one repair cycle over any pair of sources.
///
/// Pass the same `state` to every cycle for this peer: a cycle that runs out of budget
/// leaves its frontier there and the next one resumes it. On error the state is reset
/// (nothing was applied, so the next cycle simply starts over).
pub async fn repair_cycle_with<L: RepairTarget, P: RepairPeer>(
    local: &L,
    peer: &P,
    settings: &RepairSettings,
    state: &mut RepairState,
) -> Result<CycleReport, RepairError> {
    let started = Instant::now();
    let mut report = CycleReport::default();
    let outcome = run(local, peer, settings, state, &mut report).await;
    report.duration = started.elapsed();
    match outcome {
        Ok(()) => {
            tracing::debug!(peer = peer.node_id(), ?report, "repair cycle done");
            Ok(report)
        }
        Err(error) => {
            state.reset();
            Err(error)
        }
    }
}

async fn run<L: RepairTarget, P: RepairPeer>(
    local: &L,
    peer: &P,
    settings: &RepairSettings,
    state: &mut RepairState,
    report: &mut CycleReport,
) -> Result<(), RepairError> {
    let node_id = peer.node_id();
    if !local.should_accept_writes() {
        return Err(RepairError::Backpressure {
            peer: node_id.to_owned(),
        });
    }
    let fresh = !state.walking;
    report.resumed = !fresh;
    if fresh {
        let local_root = async {
            local
                .get_merkle_root()
                .await
                .map_err(|source| RepairError::LocalRead {
                    peer: node_id.to_owned(),
                    stage: ReadStage::Root,
                    source,
                })
        };
        let peer_root = async {
            peer.get_merkle_root()
                .await
                .map_err(|source| RepairError::Peer {
                    peer: node_id.to_owned(),
                    stage: ReadStage::Root,
                    source,
                })
        };
        let (local_root, peer_root) = try_join(local_root, peer_root).await?;
        report.local_round_trips += 1;
        report.peer_round_trips += 1;
        if local_root == peer_root {
            report.in_sync = true;
            report.walked = true;
            report.completed = true;
            return Ok(());
        }
        state.reset();
        state.frontier.push_back(NodePair {
            path: String::new(),
            local: local_root,
            peer: peer_root,
        });
        state.walking = true;
    }

    let changes = collect_changes(local, peer, settings, state, report).await?;
    if state.frontier.is_empty() && state.candidates.is_empty() {
        state.walking = false;
    } else if report.budget_exhausted.is_none() {
        report.budget_exhausted = Some(Budget::Items);
    }
    report.walked = fresh && report.budget_exhausted.is_none();
    report.completed = report.walked && report.deletes_pending_on_peer == 0;
    apply(local, node_id, changes, settings.batch(), report).await
}

/// Walks and resolves until the walk is done or a budget runs out; reads only.
async fn collect_changes<L: RepairTarget, P: RepairPeer>(
    local: &L,
    peer: &P,
    settings: &RepairSettings,
    state: &mut RepairState,
    report: &mut CycleReport,
) -> Result<Vec<Change>, RepairError> {
    let mut changes = Vec::new();
    let mut items_left = settings.max_items();
    // Bytes of the budget spent: the peer's sizes of the items admitted (what travels),
    // or the content fetched where that is more (an item the peer could not size).
    let mut spent: u64 = 0;
    loop {
        // Walk only as far as the remaining budget can resolve: a huge difference is then
        // walked across several cycles instead of listed whole in one.
        while state.candidates.len() < items_left && !state.frontier.is_empty() {
            let take = state.frontier.len().min(settings.step());
            let pairs: Vec<NodePair> = state.frontier.drain(..take).collect();
            let found = expand(local, peer, pairs, settings.batch(), report).await?;
            state.frontier.extend(found.nodes);
            state.candidates.extend(found.candidates);
        }
        if state.candidates.is_empty() || items_left == 0 {
            return Ok(changes);
        }
        if spent >= settings.max_bytes() {
            report.budget_exhausted = Some(Budget::Bytes);
            return Ok(changes);
        }
        let remaining = settings.max_bytes() - spent;
        let take = state.candidates.len().min(items_left).min(settings.step());
        let next: Vec<Candidate> = state.candidates.range(..take).cloned().collect();
        let batch = settings.batch();
        let fit = fitting(peer, &next, remaining, spent > 0, batch, report).await?;
        if fit.keys == 0 {
            report.budget_exhausted = Some(Budget::Bytes);
            return Ok(changes);
        }
        let group = state.candidates.drain(..fit.keys).collect();
        let fetched_before = report.bytes_fetched;
        changes.extend(resolve(local, peer, group, batch, report).await?);
        let fetched = report.bytes_fetched - fetched_before;
        spent = spent.saturating_add(fit.sized_bytes.max(fetched));
        items_left -= fit.keys;
    }
}

/// Applies the collected changes in batches; the store re-checks the conflict order.
///
/// A batch the store refuses for good (not retriable: one change it can never hold, such
/// as a reserved id or a payload over its cap) is applied again change by change, so that
/// only the refused ones are skipped (counted in `items_refused`) and the cycle goes on.
/// A retriable failure aborts the cycle, as a failed read does.
async fn apply<L: RepairTarget>(
    local: &L,
    node_id: &str,
    changes: Vec<Change>,
    batch: usize,
    report: &mut CycleReport,
) -> Result<(), RepairError> {
    let total = changes.len();
    let mut applied = 0;
    let mut changes = changes.into_iter().peekable();
    while changes.peek().is_some() {
        let chunk: Vec<Change> = changes.by_ref().take(batch).collect();
        let len = chunk.len();
        report.local_round_trips += 1;
        match local.apply(chunk.clone()).await {
            Ok(()) => {
                count_applied(&chunk, report);
                applied += len;
            }
            Err(source) if source.is_retriable() => {
                return Err(RepairError::LocalWrite {
                    peer: node_id.to_owned(),
                    applied,
                    total,
                    source,
                });
            }
            Err(_) => {
                for change in chunk {
                    report.local_round_trips += 1;
                    let single = [change];
                    match local.apply(single.to_vec()).await {
                        Ok(()) => count_applied(&single, report),
                        Err(source) if source.is_retriable() => {
                            return Err(RepairError::LocalWrite {
                                peer: node_id.to_owned(),
                                applied,
                                total,
                                source,
                            });
                        }
                        Err(error) => {
                            let [change] = single;
                            tracing::warn!(peer = node_id, key = change.key(), %error,
                                "the local store refuses this repair for good; skipped");
                            report.items_refused += 1;
                        }
                    }
                    applied += 1;
                }
            }
        }
    }
    Ok(())
}

/// Counts applied puts and deletes.
fn count_applied(changes: &[Change], report: &mut CycleReport) {
    for change in changes {
        match change {
            Change::Put(_) => report.items_applied += 1,
            Change::Delete { .. } => report.tombstones_applied += 1,
        }
    }
}
