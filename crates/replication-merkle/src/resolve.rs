//! Deciding differing keys: read the local stamps and the peer's items (for keys its tree
//! lists) or tombstones (for keys only we have), and keep a change only where the peer's
//! write wins the conflict order. Reads only; the cycle applies the changes afterwards.

use crate::error::{check_len, RepairError, Side};
use crate::report::CycleReport;
use crate::source::{RepairPeer, RepairTarget};
use crate::state::Candidate;
use crate::ReadStage;
use futures::future::{try_join, try_join_all};
use replication_core::{content_hash_hex, Change, HeldState, ItemRead, Tombstone, Verdict};

/// What to do about one differing key.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// The peer's write wins: apply it.
    Apply(Change),
    /// The local item is newer (or the same write): the peer will fetch it from us.
    LocalNewer,
    /// Our tombstone beats the peer's item: the peer has not applied the delete yet.
    PeerHoldsDeleted,
    /// The peer could not read its item.
    Unreadable,
    /// The peer's tree listed the key but the item was gone when read.
    Vanished,
    /// Local-only key without a winning peer tombstone: keep it.
    KeepLocalOnly,
    /// The local item cannot be ordered against the peer's write (a store without
    /// `local_states` whose version could not be found): left as it is.
    LocalUndetermined,
}

/// Decides a key the peer's tree lists, from the peer's read and our state.
pub(crate) fn decide_item(key: &str, read: ItemRead, local: &HeldState) -> Decision {
    let deleted_here = local.is_deleted();
    match read {
        ItemRead::Present(item)
            if item.key != key
                || content_hash_hex(&item.content) != item.content_hash.to_ascii_lowercase() =>
        {
            // A backend bug or corruption; never store what we cannot vouch for.
            tracing::warn!(
                key,
                "peer returned an item that does not match its key or hash; skipped"
            );
            if deleted_here {
                Decision::PeerHoldsDeleted
            } else {
                Decision::Unreadable
            }
        }
        ItemRead::Present(item) => match local.judge(&item.stamp()) {
            Verdict::Wins => Decision::Apply(Change::Put(item)),
            Verdict::Undetermined => Decision::LocalUndetermined,
            Verdict::Same | Verdict::Loses if deleted_here => Decision::PeerHoldsDeleted,
            Verdict::Same | Verdict::Loses => Decision::LocalNewer,
        },
        // An unreadable item may be an old version of a key we deleted: the peer may not
        // have applied the delete, which matters for tombstone collection.
        ItemRead::Unreadable { .. } if deleted_here => Decision::PeerHoldsDeleted,
        ItemRead::Unreadable { reason } => {
            tracing::debug!(key, %reason, "peer item unreadable; skipped");
            Decision::Unreadable
        }
        ItemRead::Absent => Decision::Vanished,
    }
}

/// Decides a key only we have: delete it only when the peer holds a tombstone that beats it.
/// "The peer lacks the key" alone never deletes (the peer may not have it yet).
pub(crate) fn decide_local_only(
    key: &str,
    tombstone: Option<Tombstone>,
    local: &HeldState,
) -> Decision {
    match tombstone {
        Some(tombstone) => match local.judge(&tombstone.stamp()) {
            Verdict::Wins => Decision::Apply(Change::Delete {
                key: key.to_owned(),
                tombstone,
            }),
            Verdict::Undetermined => Decision::LocalUndetermined,
            Verdict::Same | Verdict::Loses => Decision::KeepLocalOnly,
        },
        None => Decision::KeepLocalOnly,
    }
}

/// Resolves `candidates` in batches of `batch` keys, all batches at once; returns the
/// changes to apply and counts everything in `report`.
pub(crate) async fn resolve<L: RepairTarget, P: RepairPeer>(
    local: &L,
    peer: &P,
    candidates: Vec<Candidate>,
    batch: usize,
    report: &mut CycleReport,
) -> Result<Vec<Change>, RepairError> {
    let chunks: Vec<&[Candidate]> = candidates.chunks(batch).collect();
    let decided =
        try_join_all(chunks.iter().map(|chunk| resolve_chunk(local, peer, chunk))).await?;
    let mut changes = Vec::new();
    for (chunk, outcome) in chunks.iter().zip(decided) {
        report.local_round_trips += outcome.local_calls;
        report.peer_round_trips += outcome.peer_calls;
        report.keys_resolved += chunk.len() as u64;
        for (decision, fetched_bytes) in outcome.decided {
            if let Some(bytes) = fetched_bytes {
                report.items_fetched += 1;
                report.bytes_fetched += bytes;
            }
            match decision {
                Decision::Apply(change) => changes.push(change),
                Decision::LocalNewer => report.items_skipped_older += 1,
                Decision::PeerHoldsDeleted => {
                    report.items_skipped_older += 1;
                    report.deletes_pending_on_peer += 1;
                }
                Decision::Unreadable => report.items_unreadable += 1,
                Decision::Vanished => report.items_vanished += 1,
                Decision::KeepLocalOnly => report.local_only_kept += 1,
                Decision::LocalUndetermined => report.local_undetermined += 1,
            }
        }
    }
    Ok(changes)
}

/// A decision plus the content bytes fetched for it (`None` when no item was fetched).
type Decided = (Decision, Option<u64>);

/// What one batch of keys came to.
struct Chunk {
    /// Decisions in candidate order.
    decided: Vec<Decided>,
    /// Calls made to the peer.
    peer_calls: u64,
    /// Calls made to the local store.
    local_calls: u64,
}

/// One batch: local stamps, peer items and peer tombstones read concurrently.
/// Keys the store cannot describe are then derived from its tree and content.
async fn resolve_chunk<L: RepairTarget, P: RepairPeer>(
    local: &L,
    peer: &P,
    chunk: &[Candidate],
) -> Result<Chunk, RepairError> {
    let node_id = peer.node_id();
    let keys: Vec<String> = chunk.iter().map(|c| c.key.clone()).collect();
    let on_peer: Vec<String> = chunk
        .iter()
        .filter(|c| c.on_peer)
        .map(|c| c.key.clone())
        .collect();
    let local_only: Vec<String> = chunk
        .iter()
        .filter(|c| !c.on_peer)
        .map(|c| c.key.clone())
        .collect();
    let peer_error = |stage| {
        move |source| RepairError::Peer {
            peer: node_id.to_owned(),
            stage,
            source,
        }
    };

    let states = async {
        let got = local
            .local_states(&keys)
            .await
            .map_err(|source| RepairError::LocalRead {
                peer: node_id.to_owned(),
                stage: ReadStage::LocalStates,
                source,
            })?;
        check_len(
            node_id,
            Side::Local,
            ReadStage::LocalStates,
            keys.len(),
            got,
        )
    };
    let items = async {
        if on_peer.is_empty() {
            return Ok(Vec::new());
        }
        let got = peer
            .read_items(&on_peer)
            .await
            .map_err(peer_error(ReadStage::Items))?;
        check_len(node_id, Side::Peer, ReadStage::Items, on_peer.len(), got)
    };
    let tombstones = async {
        if local_only.is_empty() {
            return Ok(Vec::new());
        }
        let got = peer
            .read_tombstones(&local_only)
            .await
            .map_err(peer_error(ReadStage::Tombstones))?;
        check_len(
            node_id,
            Side::Peer,
            ReadStage::Tombstones,
            local_only.len(),
            got,
        )
    };
    let (states, (items, tombstones)) = try_join(states, try_join(items, tombstones)).await?;
    let calls = u64::from(!on_peer.is_empty()) + u64::from(!local_only.is_empty());

    // What the peer says of each key, in candidate order.
    let mut items = items.into_iter();
    let mut tombstones = tombstones.into_iter();
    let reads: Vec<PeerSays> = chunk
        .iter()
        .map(|candidate| {
            if candidate.on_peer {
                PeerSays::Item(items.next().unwrap_or(ItemRead::Absent))
            } else {
                PeerSays::Tombstone(tombstones.next().flatten())
            }
        })
        .collect();
    let held = held_states(local, node_id, &keys, states, &reads).await?;

    let mut out = Vec::with_capacity(chunk.len());
    for ((candidate, state), read) in chunk.iter().zip(&held.states).zip(reads) {
        let decided = match read {
            PeerSays::Item(read) => {
                let bytes = match &read {
                    ItemRead::Present(item) => Some(item.content.len() as u64),
                    _ => None,
                };
                (decide_item(&candidate.key, read, state), bytes)
            }
            PeerSays::Tombstone(tombstone) => {
                (decide_local_only(&candidate.key, tombstone, state), None)
            }
        };
        out.push(decided);
    }
    Ok(Chunk {
        decided: out,
        peer_calls: calls,
        local_calls: 1 + u64::from(held.derived),
    })
}

/// The peer's side of one differing key.
enum PeerSays {
    /// The key is in the peer's tree: its item.
    Item(ItemRead),
    /// The key is only ours: the peer's tombstone for it, if any.
    Tombstone(Option<Tombstone>),
}

impl PeerSays {
    /// The version the local state will be compared with.
    fn version(&self) -> Option<u64> {
        match self {
            PeerSays::Item(ItemRead::Present(item)) => Some(item.version),
            PeerSays::Tombstone(Some(tombstone)) => Some(tombstone.version),
            _ => None,
        }
    }
}

/// Local states of a chunk, with the ones the store could not describe derived from its
/// tree and content (one more local round trip, only for such stores).
struct Held {
    states: Vec<HeldState>,
    derived: bool,
}

async fn held_states<L: RepairTarget>(
    local: &L,
    node_id: &str,
    keys: &[String],
    states: Vec<Option<replication_core::LocalState>>,
    reads: &[PeerSays],
) -> Result<Held, RepairError> {
    let unknown: Vec<usize> = states
        .iter()
        .enumerate()
        .filter(|(_, state)| state.is_none())
        .map(|(index, _)| index)
        .collect();
    let mut held: Vec<HeldState> = states
        .into_iter()
        .map(|state| HeldState::Known(state.unwrap_or(replication_core::LocalState::Absent)))
        .collect();
    if unknown.is_empty() {
        return Ok(Held {
            states: held,
            derived: false,
        });
    }
    let unknown_keys: Vec<String> = unknown.iter().map(|&i| keys[i].clone()).collect();
    let hints: Vec<Option<u64>> = unknown.iter().map(|&i| reads[i].version()).collect();
    let derived = local
        .derive_states(&unknown_keys, &hints)
        .await
        .map_err(|source| RepairError::LocalRead {
            peer: node_id.to_owned(),
            stage: ReadStage::LocalStates,
            source,
        })?;
    let derived = check_len(
        node_id,
        Side::Local,
        ReadStage::LocalStates,
        unknown_keys.len(),
        derived,
    )?;
    for (index, derived) in unknown.into_iter().zip(derived) {
        held[index] = HeldState::Derived(derived);
    }
    Ok(Held {
        states: held,
        derived: true,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests panic on failure by design.
mod tests {
    use super::*;
    use replication_core::{Derived, LocalState, Stamp, SyncItem};

    const NOTHING: HeldState = HeldState::Derived(Derived::Absent);

    fn known(state: LocalState) -> HeldState {
        HeldState::Known(state)
    }

    fn item(version: u64, at: i64) -> SyncItem {
        SyncItem::new("k", b"peer".to_vec(), version, at)
    }

    #[test]
    fn a_newer_peer_item_is_applied_an_older_one_skipped() {
        let local = known(LocalState::Present(Stamp::put(2, 5, &"0".repeat(64))));
        assert_eq!(
            decide_item("k", ItemRead::Present(item(3, 0)), &local),
            Decision::Apply(Change::Put(item(3, 0)))
        );
        assert_eq!(
            decide_item("k", ItemRead::Present(item(2, 4)), &local),
            Decision::LocalNewer
        );
        assert_eq!(
            decide_item("k", ItemRead::Present(item(1, 0)), &NOTHING),
            Decision::Apply(Change::Put(item(1, 0)))
        );
    }

    #[test]
    fn a_peer_item_behind_our_tombstone_is_pending_on_the_peer() {
        let local = known(LocalState::Deleted(Tombstone {
            version: 3,
            deleted_at: 1,
        }));
        assert_eq!(
            decide_item("k", ItemRead::Present(item(2, 9)), &local),
            Decision::PeerHoldsDeleted
        );
        let unreadable = ItemRead::Unreadable {
            reason: "json".into(),
        };
        assert_eq!(
            decide_item("k", unreadable.clone(), &local),
            Decision::PeerHoldsDeleted
        );
        assert_eq!(decide_item("k", unreadable, &NOTHING), Decision::Unreadable);
        assert_eq!(
            decide_item("k", ItemRead::Absent, &NOTHING),
            Decision::Vanished
        );
    }

    #[test]
    fn items_that_do_not_match_their_key_or_hash_are_never_applied() {
        let mut wrong_key = item(9, 9);
        wrong_key.key = "other".into();
        assert_eq!(
            decide_item("k", ItemRead::Present(wrong_key), &NOTHING),
            Decision::Unreadable
        );
        let mut wrong_hash = item(9, 9);
        wrong_hash.content = b"tampered".to_vec();
        assert_eq!(
            decide_item("k", ItemRead::Present(wrong_hash), &NOTHING),
            Decision::Unreadable
        );
    }

    #[test]
    fn local_only_keys_are_deleted_only_by_a_winning_peer_tombstone() {
        let local = known(LocalState::Present(Stamp::put(2, 5, &"0".repeat(64))));
        let newer = Tombstone {
            version: 3,
            deleted_at: 0,
        };
        assert_eq!(
            decide_local_only("k", Some(newer.clone()), &local),
            Decision::Apply(Change::Delete {
                key: "k".into(),
                tombstone: newer
            })
        );
        assert_eq!(
            decide_local_only(
                "k",
                Some(Tombstone {
                    version: 2,
                    deleted_at: 4
                }),
                &local
            ),
            Decision::KeepLocalOnly
        );
        assert_eq!(
            decide_local_only("k", None, &local),
            Decision::KeepLocalOnly
        );
    }

    #[test]
    fn a_store_without_local_states_is_judged_by_its_derived_versions() {
        let held = HeldState::Derived(Derived::Versioned {
            version: 5,
            content_hash: content_hash_hex(b"mine"),
        });
        assert_eq!(
            decide_item("k", ItemRead::Present(item(4, 99)), &held),
            Decision::LocalNewer
        );
        assert_eq!(
            decide_item("k", ItemRead::Present(item(6, 0)), &held),
            Decision::Apply(Change::Put(item(6, 0)))
        );
        let older = Tombstone {
            version: 3,
            deleted_at: i64::MAX,
        };
        assert_eq!(
            decide_local_only("k", Some(older), &held),
            Decision::KeepLocalOnly
        );
        let newer = Tombstone {
            version: 6,
            deleted_at: 0,
        };
        assert!(matches!(
            decide_local_only("k", Some(newer), &held),
            Decision::Apply(Change::Delete { .. })
        ));
        let undetermined = HeldState::Derived(Derived::Undetermined);
        assert_eq!(
            decide_item("k", ItemRead::Present(item(9, 9)), &undetermined),
            Decision::LocalUndetermined
        );
    }
}
