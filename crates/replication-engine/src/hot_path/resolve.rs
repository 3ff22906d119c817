//! Turning one decoded batch into the changes to apply: collapse per key, stamp deletes,
//! drop duplicates (echoes) and changes that lose the conflict order.
//!
//! Pure: the caller fetches the peer's tombstones and the local states, then applies
//! `Resolution::changes`. Keeping I/O out makes every rule here testable in isolation.

use replication_core::{
    incoming_wins, CdcDecodeError, CdcEvent, Change, LocalState, Stamp, StreamId, Tombstone,
};
use std::collections::HashMap;

/// One batch record as the tailer delivers it.
pub(crate) type Record = (StreamId, Result<CdcEvent, CdcDecodeError>);

/// The last event per key of a batch, in stream order of those last events.
#[derive(Debug, Default)]
pub(crate) struct Collapsed {
    /// `(entry id, event)` of each key's last event.
    pub(crate) events: Vec<(StreamId, CdcEvent)>,
    /// Entries rejected as bad input.
    pub(crate) rejected: Vec<CdcDecodeError>,
    /// Events superseded by a later event for the same key in the same batch.
    pub(crate) superseded: u64,
}

impl Collapsed {
    /// Keys of delete events, for the peer tombstone lookup.
    pub(crate) fn delete_keys(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|(_, e)| matches!(e, CdcEvent::Delete { .. }))
            .map(|(_, e)| e.key().to_owned())
            .collect()
    }

    /// Every key, in order, for the local state lookup.
    pub(crate) fn keys(&self) -> Vec<String> {
        self.events
            .iter()
            .map(|(_, e)| e.key().to_owned())
            .collect()
    }
}

/// Collapses a batch: a peer's stream is its apply order, so each key's last event is the
/// peer's final word on it within the batch.
pub(crate) fn collapse(records: Vec<Record>) -> Collapsed {
    let mut out = Collapsed::default();
    let mut last_index: HashMap<String, usize> = HashMap::new();
    let mut slots: Vec<Option<(StreamId, CdcEvent)>> = Vec::with_capacity(records.len());
    for (id, record) in records {
        match record {
            Err(rejected) => out.rejected.push(rejected),
            Ok(event) => {
                if let Some(previous) = last_index.insert(event.key().to_owned(), slots.len()) {
                    slots[previous] = None;
                    out.superseded += 1;
                }
                slots.push(Some((id, event)));
            }
        }
    }
    out.events = slots.into_iter().flatten().collect();
    out
}

/// What happens to one collapsed event.
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

/// Decides one event against what the store holds.
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use replication_core::{RejectReason, SyncItem};

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
    fn collapse_keeps_each_keys_last_event_in_stream_order() {
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
            .events
            .iter()
            .map(|(i, e)| (i.ms - 5000, e.key().to_owned()))
            .collect();
        assert_eq!(order, [(4, "a".into()), (5, "c".into()), (6, "b".into())]);
        assert_eq!(collapsed.superseded, 2);
        assert_eq!(collapsed.rejected.len(), 1);
        assert_eq!(collapsed.delete_keys(), ["a"]);
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
