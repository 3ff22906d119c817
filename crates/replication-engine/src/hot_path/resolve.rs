//! Turning one decoded batch into the changes to apply: group the events per key, stamp
//! deletes, drop duplicates (echoes) and changes that lose the conflict order.
//!
//! Pure: the caller fetches the peer's tombstones and the local states, then applies what
//! [`decide_key`] says. Keeping I/O out makes every rule here testable in isolation.
//!
//! A key's events of one batch are folded in stream order, each decided against the state
//! the ones before it left ([`decide_key`]), so a batch ends exactly where reading the same
//! entries one batch each would: where the batches split never changes an outcome. (Only
//! keeping each key's last event would lose, for instance, the put a bare delete removes.)

use replication_core::{
    incoming_wins, CdcDecodeError, CdcEvent, Change, LocalState, Stamp, StreamId, Tombstone,
};
use std::collections::HashMap;

/// One batch record as the tailer delivers it.
pub(crate) type Record = (StreamId, Result<CdcEvent, CdcDecodeError>);

/// The events of one key within a batch, in stream order.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct KeyEvents {
    /// Object id.
    pub(crate) key: String,
    /// `(entry id, event)`, oldest first.
    pub(crate) events: Vec<(StreamId, CdcEvent)>,
}

impl KeyEvents {
    fn has_delete(&self) -> bool {
        self.events
            .iter()
            .any(|(_, e)| matches!(e, CdcEvent::Delete { .. }))
    }
}

/// A batch grouped per key, keys in stream order of their last events.
#[derive(Debug, Default)]
pub(crate) struct Collapsed {
    /// Each key's events.
    pub(crate) keys: Vec<KeyEvents>,
    /// Entries rejected as bad input.
    pub(crate) rejected: Vec<CdcDecodeError>,
    /// Events followed by a later event for the same key in the same batch.
    pub(crate) superseded: u64,
}

impl Collapsed {
    /// Keys with a delete event, for the peer tombstone lookup.
    pub(crate) fn delete_keys(&self) -> Vec<String> {
        self.keys
            .iter()
            .filter(|k| k.has_delete())
            .map(|k| k.key.clone())
            .collect()
    }

    /// Every key, in order, for the local state lookup.
    pub(crate) fn keys(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.key.clone()).collect()
    }
}

/// Groups a batch per key. A peer's stream is its apply order, so the events of a key are
/// kept in stream order for [`decide_key`] to fold.
pub(crate) fn collapse(records: Vec<Record>) -> Collapsed {
    let mut out = Collapsed::default();
    let mut slot_of: HashMap<String, usize> = HashMap::new();
    let mut slots: Vec<Option<KeyEvents>> = Vec::with_capacity(records.len());
    for (id, record) in records {
        let event = match record {
            Err(rejected) => {
                out.rejected.push(rejected);
                continue;
            }
            Ok(event) => event,
        };
        // A key moves to the slot of its latest event, keeping its earlier ones.
        let mut group = match slot_of.get(event.key()).and_then(|&i| slots[i].take()) {
            Some(group) => {
                out.superseded += 1;
                group
            }
            None => KeyEvents {
                key: event.key().to_owned(),
                events: Vec::new(),
            },
        };
        group.events.push((id, event));
        slot_of.insert(group.key.clone(), slots.len());
        slots.push(Some(group));
    }
    out.keys = slots.into_iter().flatten().collect();
    out
}

/// What happens to one event (or, from [`decide_key`], to one key's events).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Apply this change.
    Apply(Change),
    /// The store already holds exactly this write (an echo or a replay).
    Duplicate,
    /// The store holds a write that beats this one.
    Stale,
    /// The store cannot tell (no `local_states`): ask `is_current` before applying.
    CheckCurrent(Change),
    /// Not applied: bad input, counted under the `reason` label.
    Refused {
        /// Object id.
        key: String,
        /// Metric label of the reason.
        reason: &'static str,
    },
}

/// What the writer of a `DEL` entry still knows about the key when we read the entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DeleteEvidence {
    /// Its tombstone: the delete's exact stamp.
    Tombstone(Tombstone),
    /// No tombstone, but it holds the key again: a later write replaced the delete there
    /// (our node stores drop a tombstone when a newer put beats it).
    Superseded,
    /// Neither tombstone nor item (a sync-engine writer keeps no tombstones, or ours was
    /// collected): the bare-delete rule.
    Bare,
    /// The writer's items could not be read for good (a permanent error): whether a later
    /// write replaced the delete there cannot be told, so the delete is not applied (the
    /// cold path compares the key later).
    Unreadable,
}

/// The stamp of a delete without a tombstone (*bare delete*, docs/PROTOCOL.md): it
/// deletes the version the store holds, at the entry's time.
pub(crate) fn bare_tombstone(local: Option<&LocalState>, entry_id: StreamId) -> Tombstone {
    let version = match local {
        Some(LocalState::Present(stamp)) => stamp.version,
        Some(LocalState::Deleted(tombstone)) => tombstone.version,
        Some(LocalState::Absent) | None => 0,
    };
    Tombstone {
        version,
        deleted_at: i64::try_from(entry_id.ms).unwrap_or(i64::MAX),
    }
}

/// Decides one event against what the store holds (`None`: the store cannot tell).
pub(crate) fn decide(
    entry_id: StreamId,
    event: CdcEvent,
    local: Option<&LocalState>,
    evidence: DeleteEvidence,
) -> Decision {
    match event {
        CdcEvent::Put(item) => {
            let stamp = item.stamp();
            match local {
                None => Decision::CheckCurrent(Change::Put(item)),
                Some(LocalState::Present(held)) if *held == stamp => Decision::Duplicate,
                Some(state) if incoming_wins(&stamp, Some(state)) => {
                    Decision::Apply(Change::Put(item))
                }
                Some(_) => Decision::Stale,
            }
        }
        CdcEvent::Delete { key } => {
            let tombstone = match evidence {
                DeleteEvidence::Tombstone(tombstone) => tombstone,
                DeleteEvidence::Superseded => return Decision::Stale,
                DeleteEvidence::Unreadable => {
                    return Decision::Refused {
                        key,
                        reason: "delete_evidence_unreadable",
                    }
                }
                DeleteEvidence::Bare => bare_tombstone(local, entry_id),
            };
            let stamp: Stamp = tombstone.stamp();
            match local {
                Some(LocalState::Deleted(held)) if held.stamp() == stamp => Decision::Duplicate,
                Some(state) if !incoming_wins(&stamp, Some(state)) => Decision::Stale,
                _ => Decision::Apply(Change::Delete { key, tombstone }),
            }
        }
    }
}

/// What one key's events of a batch come to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct KeyOutcome {
    /// What to do; `None` when every event was refused.
    pub(crate) decision: Option<Decision>,
    /// Events not applied as bad input: entry id and reason label.
    pub(crate) refused: Vec<(StreamId, &'static str)>,
}

/// Folds a key's events in stream order, deciding each against the state the previous ones
/// left (the store's state for the first), so the outcome is the one reading them one
/// batch each would give. The result is a single change: the last one that took effect,
/// which the store, holding the starting state, turns into the same final state.
pub(crate) fn decide_key(
    events: Vec<(StreamId, CdcEvent)>,
    local: Option<LocalState>,
    evidence: &DeleteEvidence,
) -> KeyOutcome {
    let mut state = local;
    let mut pending: Option<Decision> = None;
    let (mut duplicate, mut decided) = (false, false);
    let mut refused = Vec::new();
    for (entry_id, event) in events {
        match decide(entry_id, event, state.as_ref(), evidence.clone()) {
            Decision::Refused { reason, .. } => {
                refused.push((entry_id, reason));
                continue;
            }
            Decision::Apply(change) => {
                // Known state: what the store will hold once this is applied. Unknown
                // state stays unknown, each event then stands on its own, the last wins.
                if state.is_some() {
                    state = Some(state_after(&change));
                }
                pending = Some(Decision::Apply(change));
            }
            Decision::CheckCurrent(change) => pending = Some(Decision::CheckCurrent(change)),
            Decision::Duplicate => duplicate = true,
            Decision::Stale => {}
        }
        decided = true;
    }
    let decision = match pending {
        Some(decision) => Some(decision),
        None if duplicate => Some(Decision::Duplicate),
        None if decided => Some(Decision::Stale),
        None => None,
    };
    KeyOutcome { decision, refused }
}

/// The state a store is left in by applying a winning change.
fn state_after(change: &Change) -> LocalState {
    match change {
        Change::Put(item) => LocalState::Present(item.stamp()),
        Change::Delete { tombstone, .. } => LocalState::Deleted(tombstone.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use replication_core::{content_hash_hex, RejectReason, SyncItem};

    fn put(key: &str, version: u64, content: &[u8]) -> CdcEvent {
        CdcEvent::Put(SyncItem::new(
            key,
            content.to_vec(),
            version,
            1000 + version as i64,
        ))
    }

    fn del(key: &str) -> CdcEvent {
        CdcEvent::Delete { key: key.into() }
    }

    fn id(n: u64) -> StreamId {
        StreamId::new(5000 + n, 0)
    }

    #[test]
    fn collapse_groups_each_keys_events_in_the_order_of_its_last_one() {
        let records = vec![
            (id(1), Ok(put("a", 1, b"x"))),
            (id(2), Ok(put("b", 1, b"x"))),
            (
                id(3),
                Err(CdcDecodeError {
                    entry_id: id(3),
                    key: None,
                    reason: RejectReason::EmptyKey,
                }),
            ),
            (id(4), Ok(del("a"))),
            (id(5), Ok(put("c", 1, b"x"))),
            (id(6), Ok(put("b", 2, b"y"))),
        ];
        let collapsed = collapse(records);
        let order: Vec<_> = collapsed
            .keys
            .iter()
            .map(|k| {
                let ids: Vec<u64> = k.events.iter().map(|(i, _)| i.ms - 5000).collect();
                (k.key.clone(), ids)
            })
            .collect();
        assert_eq!(
            order,
            [
                ("a".into(), vec![1, 4]),
                ("c".into(), vec![5]),
                ("b".into(), vec![2, 6])
            ]
        );
        assert_eq!(collapsed.superseded, 2);
        assert_eq!(collapsed.rejected.len(), 1);
        assert_eq!(collapsed.delete_keys(), ["a"]);
    }

    /// The defect folding fixes: a put then a bare delete in one batch. Keeping only the
    /// delete stamped it from the version held before the put (0), so an echo of the put
    /// (version 1) could bring the key back; folded, the delete removes version 1.
    #[test]
    fn a_bare_delete_removes_the_put_before_it_in_the_same_batch() {
        let events = vec![(id(1), put("k", 1, b"v")), (id(2), del("k"))];
        let outcome = decide_key(events, Some(LocalState::Absent), &DeleteEvidence::Bare);
        assert_eq!(
            outcome.decision,
            Some(Decision::Apply(Change::Delete {
                key: "k".into(),
                tombstone: Tombstone {
                    version: 1,
                    deleted_at: 5002
                }
            }))
        );
        // A stale put after it changes nothing; an event of a refused delete is listed.
        let events = vec![
            (id(1), put("k", 1, b"v")),
            (id(2), del("k")),
            (id(3), put("k", 1, b"v")),
        ];
        let outcome = decide_key(events, Some(LocalState::Absent), &DeleteEvidence::Bare);
        assert!(matches!(
            outcome.decision,
            Some(Decision::Apply(Change::Delete { .. }))
        ));
        let events = vec![(id(1), put("k", 1, b"v")), (id(2), del("k"))];
        let outcome = decide_key(
            events,
            Some(LocalState::Absent),
            &DeleteEvidence::Unreadable,
        );
        assert!(matches!(
            outcome.decision,
            Some(Decision::Apply(Change::Put(_)))
        ));
        assert_eq!(outcome.refused, [(id(2), "delete_evidence_unreadable")]);
    }

    #[test]
    fn a_key_whose_events_all_lose_or_repeat_is_stale_or_duplicate() {
        let held = LocalState::Present(Stamp::put(5, 1005, &content_hash_hex(b"v")));
        let outcome = decide_key(
            vec![(id(1), put("k", 4, b"v")), (id(2), put("k", 5, b"v"))],
            Some(held.clone()),
            &DeleteEvidence::Bare,
        );
        assert_eq!(outcome.decision, Some(Decision::Duplicate));
        let outcome = decide_key(
            vec![(id(1), put("k", 4, b"v"))],
            Some(held),
            &DeleteEvidence::Bare,
        );
        assert_eq!(outcome.decision, Some(Decision::Stale));
        let outcome = decide_key(vec![(id(1), del("k"))], None, &DeleteEvidence::Unreadable);
        assert_eq!(outcome.decision, None);
    }

    #[test]
    fn echo_of_what_we_hold_is_a_duplicate() {
        let CdcEvent::Put(item) = put("k", 3, b"v") else {
            unreachable!()
        };
        let local = LocalState::Present(item.stamp());
        assert_eq!(
            decide(
                id(1),
                CdcEvent::Put(item),
                Some(&local),
                DeleteEvidence::Bare
            ),
            Decision::Duplicate
        );
    }

    #[test]
    fn older_put_is_stale_and_newer_applies() {
        let local = LocalState::Present(Stamp::put(5, 1005, &"0".repeat(64)));
        assert_eq!(
            decide(id(1), put("k", 4, b"v"), Some(&local), DeleteEvidence::Bare),
            Decision::Stale
        );
        assert!(matches!(
            decide(id(1), put("k", 6, b"v"), Some(&local), DeleteEvidence::Bare),
            Decision::Apply(_)
        ));
    }

    #[test]
    fn put_older_than_a_tombstone_does_not_resurrect() {
        let local = LocalState::Deleted(Tombstone {
            version: 4,
            deleted_at: 2000,
        });
        assert_eq!(
            decide(id(1), put("k", 4, b"v"), Some(&local), DeleteEvidence::Bare),
            Decision::Stale
        );
        assert!(matches!(
            decide(id(1), put("k", 5, b"v"), Some(&local), DeleteEvidence::Bare),
            Decision::Apply(_)
        ));
    }

    #[test]
    fn unknown_local_state_asks_is_current() {
        assert!(matches!(
            decide(id(1), put("k", 1, b"v"), None, DeleteEvidence::Bare),
            Decision::CheckCurrent(_)
        ));
    }

    #[test]
    fn delete_uses_the_peers_tombstone_when_it_has_one() {
        let local = LocalState::Present(Stamp::put(7, 1007, "aa"));
        let newer = Tombstone {
            version: 8,
            deleted_at: 1,
        };
        assert_eq!(
            decide(
                id(1),
                del("k"),
                Some(&local),
                DeleteEvidence::Tombstone(newer.clone())
            ),
            Decision::Apply(Change::Delete {
                key: "k".into(),
                tombstone: newer
            })
        );
        let older = Tombstone {
            version: 6,
            deleted_at: 99_999,
        };
        assert_eq!(
            decide(
                id(1),
                del("k"),
                Some(&local),
                DeleteEvidence::Tombstone(older)
            ),
            Decision::Stale
        );
    }

    #[test]
    fn bare_delete_removes_the_version_we_hold_unless_written_after_it() {
        // Item written at 1007 ms, delete appended at 5001 ms: the delete wins.
        let local = LocalState::Present(Stamp::put(7, 1007, "aa"));
        let Decision::Apply(Change::Delete { tombstone, .. }) =
            decide(id(1), del("k"), Some(&local), DeleteEvidence::Bare)
        else {
            panic!("bare delete must apply");
        };
        assert_eq!(
            tombstone,
            Tombstone {
                version: 7,
                deleted_at: 5001
            }
        );
        // Item written after the delete entry's time: it stays.
        let later = LocalState::Present(Stamp::put(7, 9_999_999, "aa"));
        assert_eq!(
            decide(id(1), del("k"), Some(&later), DeleteEvidence::Bare),
            Decision::Stale
        );
    }

    #[test]
    fn a_delete_whose_writer_cannot_be_read_is_refused_not_guessed() {
        let local = LocalState::Present(Stamp::put(3, 1003, "aa"));
        assert_eq!(
            decide(id(1), del("k"), Some(&local), DeleteEvidence::Unreadable),
            Decision::Refused {
                key: "k".into(),
                reason: "delete_evidence_unreadable"
            }
        );
    }

    /// The race the mesh test found: the writer deleted `k` (tombstone v2), then a put v3
    /// from a third node replaced that tombstone there. Reading the old DEL now must not
    /// delete our v3, although the entry's time is later than the put's.
    #[test]
    fn delete_superseded_at_its_writer_is_stale() {
        let local = LocalState::Present(Stamp::put(3, 1003, "aa"));
        assert_eq!(
            decide(id(1), del("k"), Some(&local), DeleteEvidence::Superseded),
            Decision::Stale
        );
        assert_eq!(
            decide(
                id(1),
                del("k"),
                Some(&LocalState::Absent),
                DeleteEvidence::Superseded
            ),
            Decision::Stale
        );
        // Without that evidence the bare rule would have deleted it: the case the fix guards.
        assert!(matches!(
            decide(id(1), del("k"), Some(&local), DeleteEvidence::Bare),
            Decision::Apply(Change::Delete { .. })
        ));
    }

    #[test]
    fn delete_of_an_absent_key_still_leaves_a_tombstone() {
        assert!(matches!(
            decide(
                id(1),
                del("k"),
                Some(&LocalState::Absent),
                DeleteEvidence::Tombstone(Tombstone {
                    version: 2,
                    deleted_at: 3
                })
            ),
            Decision::Apply(Change::Delete { .. })
        ));
        let held = LocalState::Deleted(Tombstone {
            version: 2,
            deleted_at: 3,
        });
        assert_eq!(
            decide(
                id(1),
                del("k"),
                Some(&held),
                DeleteEvidence::Tombstone(Tombstone {
                    version: 2,
                    deleted_at: 3
                })
            ),
            Decision::Duplicate
        );
    }

    /// Applies what one batch of `decide_key` outcomes says to a map of states, as a store
    /// keeping the conflict order would.
    fn apply_batch(
        store: &mut HashMap<String, LocalState>,
        records: Vec<(StreamId, CdcEvent)>,
        evidence: &HashMap<String, DeleteEvidence>,
    ) {
        let collapsed = collapse(records.into_iter().map(|(i, e)| (i, Ok(e))).collect());
        for KeyEvents { key, events } in collapsed.keys {
            let local = store.get(&key).cloned().unwrap_or(LocalState::Absent);
            let evidence = evidence.get(&key).cloned().unwrap_or(DeleteEvidence::Bare);
            if let Some(Decision::Apply(change)) =
                decide_key(events, Some(local.clone()), &evidence).decision
            {
                let after = state_after(&change);
                assert!(incoming_wins(&after.stamp().unwrap(), Some(&local)));
                store.insert(key, after);
            }
        }
    }

    proptest! {
        /// The same stream read in batches of any sizes ends in the same states as read one
        /// entry per batch.
        #[test]
        fn where_batches_split_never_changes_the_outcome(
            events in proptest::collection::vec((0u8..3, any::<bool>(), 0u64..4, 0u8..3), 1..30),
            cuts in proptest::collection::vec(1usize..6, 1..10),
            tombstones in proptest::collection::vec(proptest::option::of(0u64..4), 3),
        ) {
            let records: Vec<(StreamId, CdcEvent)> = events
                .into_iter()
                .enumerate()
                .map(|(n, (k, is_del, version, content))| {
                    let key = format!("k{k}");
                    let event = if is_del { del(&key) } else { put(&key, version, &[content]) };
                    (id(n as u64), event)
                })
                .collect();
            let evidence: HashMap<String, DeleteEvidence> = tombstones
                .into_iter()
                .enumerate()
                .map(|(k, t)| {
                    let evidence = t.map_or(DeleteEvidence::Bare, |version| {
                        DeleteEvidence::Tombstone(Tombstone { version, deleted_at: 1000 + version as i64 })
                    });
                    (format!("k{k}"), evidence)
                })
                .collect();
            let mut one_by_one = HashMap::new();
            for record in &records {
                apply_batch(&mut one_by_one, vec![record.clone()], &evidence);
            }
            let mut batched = HashMap::new();
            let mut rest = records.as_slice();
            for cut in cuts.iter().cycle() {
                if rest.is_empty() { break; }
                let (batch, tail) = rest.split_at((*cut).min(rest.len()));
                apply_batch(&mut batched, batch.to_vec(), &evidence);
                rest = tail;
            }
            prop_assert_eq!(one_by_one, batched);
        }
    }

    proptest! {
        /// Applying what `decide` says, batch after batch, leaves each key at the conflict-order
        /// maximum of everything seen (puts and tombstoned deletes), whatever the interleaving.
        #[test]
        fn decisions_converge_to_the_maximum(events in proptest::collection::vec(
            (0u8..3, any::<bool>(), 0u64..4, 0u8..3), 1..40)) {
            let mut store: HashMap<String, LocalState> = HashMap::new();
            let mut best: HashMap<String, Stamp> = HashMap::new();
            for (n, (k, is_del, version, content)) in events.into_iter().enumerate() {
                let key = format!("k{k}");
                let (event, tomb) = if is_del {
                    (del(&key), Some(Tombstone { version, deleted_at: 1000 + version as i64 }))
                } else {
                    (put(&key, version, &[content]), None)
                };
                let stamp = match (&event, &tomb) {
                    (CdcEvent::Put(item), _) => item.stamp(),
                    (_, Some(t)) => t.stamp(),
                    _ => unreachable!(),
                };
                let entry = best.entry(key.clone()).or_insert_with(|| stamp.clone());
                if stamp > *entry { *entry = stamp; }
                let local = store.get(&key).cloned().unwrap_or(LocalState::Absent);
                match decide(id(n as u64), event, Some(&local), tomb.map_or(DeleteEvidence::Bare, DeleteEvidence::Tombstone)) {
                    Decision::Apply(Change::Put(item)) => { store.insert(key, LocalState::Present(item.stamp())); }
                    Decision::Apply(Change::Delete { key, tombstone }) => { store.insert(key, LocalState::Deleted(tombstone)); }
                    Decision::CheckCurrent(_) => prop_assert!(false, "local state was known"),
                    Decision::Refused { .. } => prop_assert!(false, "every delete had evidence"),
                    Decision::Duplicate | Decision::Stale => {}
                }
            }
            for (key, stamp) in best {
                prop_assert_eq!(store[&key].stamp(), Some(stamp));
            }
        }
    }
}
