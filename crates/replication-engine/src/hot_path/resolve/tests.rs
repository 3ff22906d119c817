//! Resolve tests: grouping per key, folding a key's events, every decision rule, and
//! where batches split never changing an outcome.

use super::*;
use proptest::prelude::*;
use replication_core::{content_hash_hex, Derived, LocalState, RejectReason, Stamp, SyncItem};
use std::collections::HashMap;

fn known(state: LocalState) -> HeldState {
    HeldState::Known(state)
}

/// What the hot path decides about a `DEL k` from the stream against `held`.
fn delete_of_k(held: LocalState, evidence: DeleteEvidence) -> Decision {
    decide(id(1), del("k"), &known(held), evidence)
}

fn put(key: &str, version: u64, content: &[u8]) -> CdcEvent {
    CdcEvent::Put(SyncItem::new(
        key,
        content.to_vec(),
        version,
        1000 + version as i64,
    ))
}

fn del(key: &str) -> CdcEvent {
    CdcEvent::Delete {
        key: key.into(),
        stamp: None,
    }
}

fn stamped_del(key: &str, version: u64, deleted_at: i64) -> CdcEvent {
    CdcEvent::Delete {
        key: key.into(),
        stamp: Some(Tombstone {
            version,
            deleted_at,
        }),
    }
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
    let outcome = decide_key(events, known(LocalState::Absent), &DeleteEvidence::Bare);
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
    let outcome = decide_key(events, known(LocalState::Absent), &DeleteEvidence::Bare);
    assert!(matches!(
        outcome.decision,
        Some(Decision::Apply(Change::Delete { .. }))
    ));
    let events = vec![(id(1), put("k", 1, b"v")), (id(2), del("k"))];
    let outcome = decide_key(
        events,
        known(LocalState::Absent),
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
        known(held.clone()),
        &DeleteEvidence::Bare,
    );
    assert_eq!(outcome.decision, Some(Decision::Duplicate));
    let outcome = decide_key(
        vec![(id(1), put("k", 4, b"v"))],
        known(held),
        &DeleteEvidence::Bare,
    );
    assert_eq!(outcome.decision, Some(Decision::Stale));
    let outcome = decide_key(
        vec![(id(1), del("k"))],
        known(LocalState::Absent),
        &DeleteEvidence::Unreadable,
    );
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
            &known(local.clone()),
            DeleteEvidence::Bare
        ),
        Decision::Duplicate
    );
}

/// A put against what the store holds, item or tombstone: stale unless it beats it in the
/// conflict order (a put no newer than a tombstone does not resurrect the key).
#[test]
fn a_put_applies_only_when_it_beats_what_is_held() {
    let item = LocalState::Present(Stamp::put(5, 1005, &"0".repeat(64)));
    let tombstone = LocalState::Deleted(Tombstone {
        version: 4,
        deleted_at: 2000,
    });
    // (what, held, the put's version, whether it applies)
    let cases = [
        ("older than the item", &item, 4, false),
        ("newer than the item", &item, 6, true),
        ("no newer than the tombstone", &tombstone, 4, false),
        ("newer than the tombstone", &tombstone, 5, true),
    ];
    for (what, held, version, applies) in cases {
        let decision = decide(
            id(1),
            put("k", version, b"v"),
            &known(held.clone()),
            DeleteEvidence::Bare,
        );
        if applies {
            assert!(
                matches!(decision, Decision::Apply(_)),
                "{what}: {decision:?}"
            );
        } else {
            assert_eq!(decision, Decision::Stale, "{what}");
        }
    }
}

/// A store without `local_states`: its derived version orders the writes; a version
/// bump with unchanged content applies, an older version does not, and a key whose
/// version could not be found is refused, never guessed.
#[test]
fn a_derived_version_orders_writes_into_a_store_without_local_states() {
    let held = HeldState::Derived(Derived::Versioned {
        version: 2,
        content_hash: content_hash_hex(b"v"),
    });
    assert!(matches!(
        decide(id(1), put("k", 3, b"v"), &held, DeleteEvidence::Bare),
        Decision::Apply(_)
    ));
    assert_eq!(
        decide(id(1), put("k", 1, b"w"), &held, DeleteEvidence::Bare),
        Decision::Stale
    );
    assert_eq!(
        decide(id(1), put("k", 2, b"v"), &held, DeleteEvidence::Bare),
        Decision::Duplicate
    );
    let Decision::Apply(Change::Delete { tombstone, .. }) =
        decide(id(1), del("k"), &held, DeleteEvidence::Bare)
    else {
        panic!("a bare delete removes the held version");
    };
    assert_eq!(tombstone.version, 2);
    let undetermined = HeldState::Derived(Derived::Undetermined);
    for event in [put("k", 9, b"v"), del("k")] {
        assert_eq!(
            decide(id(1), event, &undetermined, DeleteEvidence::Bare),
            Decision::Refused {
                key: "k".into(),
                reason: UNDETERMINED
            }
        );
    }
}

#[test]
fn delete_uses_the_peers_tombstone_when_it_has_one() {
    let local = LocalState::Present(Stamp::put(7, 1007, "aa"));
    let newer = Tombstone {
        version: 8,
        deleted_at: 1,
    };
    assert_eq!(
        delete_of_k(local.clone(), DeleteEvidence::Tombstone(newer.clone())),
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
        delete_of_k(local.clone(), DeleteEvidence::Tombstone(older)),
        Decision::Stale
    );
}

#[test]
fn bare_delete_removes_the_version_we_hold_unless_written_after_it() {
    // Item written at 1007 ms, delete appended at 5001 ms: the delete wins.
    let local = LocalState::Present(Stamp::put(7, 1007, "aa"));
    let Decision::Apply(Change::Delete { tombstone, .. }) =
        delete_of_k(local.clone(), DeleteEvidence::Bare)
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
        delete_of_k(later.clone(), DeleteEvidence::Bare),
        Decision::Stale
    );
}

#[test]
fn a_delete_whose_writer_cannot_be_read_is_refused_not_guessed() {
    let local = LocalState::Present(Stamp::put(3, 1003, "aa"));
    assert_eq!(
        delete_of_k(local.clone(), DeleteEvidence::Unreadable),
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
        delete_of_k(local.clone(), DeleteEvidence::Superseded),
        Decision::Stale
    );
    assert_eq!(
        delete_of_k(LocalState::Absent, DeleteEvidence::Superseded),
        Decision::Stale
    );
    // Without that evidence the bare rule would have deleted it: the case the fix guards.
    assert!(matches!(
        delete_of_k(local.clone(), DeleteEvidence::Bare),
        Decision::Apply(Change::Delete { .. })
    ));
}

/// The race the simulator found: the writer deleted `k` (v13) and collected its tombstone;
/// we had just applied its older put v12 when its cold path copied v12 back from us, so the
/// writer holds `k` again. A stamped DEL still deletes v12: the stamp, not what the writer
/// holds now, says what was deleted. It still loses to a write made after it.
#[test]
fn a_stamped_delete_is_judged_by_its_stamp_whatever_the_writer_holds_now() {
    let v12 = LocalState::Present(Stamp::put(12, 1012, "aa"));
    for evidence in [
        DeleteEvidence::Superseded,
        DeleteEvidence::Bare,
        DeleteEvidence::Unreadable,
    ] {
        assert_eq!(
            decide(
                id(1),
                stamped_del("k", 13, 1013),
                &known(v12.clone()),
                evidence.clone()
            ),
            Decision::Apply(Change::Delete {
                key: "k".into(),
                tombstone: Tombstone {
                    version: 13,
                    deleted_at: 1013
                }
            }),
            "{evidence:?}"
        );
        let v14 = LocalState::Present(Stamp::put(14, 1014, "bb"));
        assert_eq!(
            decide(id(1), stamped_del("k", 13, 1013), &known(v14), evidence),
            Decision::Stale
        );
    }
    // The bare DEL of the same race is skipped: the defect stamped deletes close.
    assert_eq!(
        decide(id(1), del("k"), &known(v12), DeleteEvidence::Superseded),
        Decision::Stale
    );
}

#[test]
fn only_bare_deletes_need_the_writers_evidence() {
    let collapsed = collapse(vec![
        (id(1), Ok(stamped_del("a", 2, 1002))),
        (id(2), Ok(del("b"))),
        (id(3), Ok(put("c", 1, b"v"))),
    ]);
    assert_eq!(collapsed.delete_keys(), ["b"]);
}

#[test]
fn delete_of_an_absent_key_still_leaves_a_tombstone() {
    assert!(matches!(
        delete_of_k(
            LocalState::Absent,
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
        delete_of_k(
            held.clone(),
            DeleteEvidence::Tombstone(Tombstone {
                version: 2,
                deleted_at: 3
            })
        ),
        Decision::Duplicate
    );
}

/// Applies what one batch of `decide_key` outcomes says to a map of states, as the
/// engine would read them back from the store (`empty` is a key's state before any write:
/// known absent for a store with `local_states`, derived absent for one without).
fn apply_batch(
    store: &mut HashMap<String, HeldState>,
    empty: &HeldState,
    records: Vec<(StreamId, CdcEvent)>,
    evidence: &HashMap<String, DeleteEvidence>,
) {
    let collapsed = collapse(records.into_iter().map(|(i, e)| (i, Ok(e))).collect());
    for KeyEvents { key, events } in collapsed.keys {
        let local = store.get(&key).cloned().unwrap_or_else(|| empty.clone());
        let evidence = evidence.get(&key).cloned().unwrap_or(DeleteEvidence::Bare);
        if let Some(Decision::Apply(change)) = decide_key(events, local.clone(), &evidence).decision
        {
            store.insert(key, local.after(&change));
        }
    }
}

proptest! {
    /// The same stream read in batches of any sizes ends in the same states as read one
    /// entry per batch.
    #[test]
    fn where_batches_split_never_changes_the_outcome(
        events in proptest::collection::vec((0u8..3, 0u8..3, 0u64..4, 0u8..3), 1..30),
        cuts in proptest::collection::vec(1usize..6, 1..10),
        tombstones in proptest::collection::vec(proptest::option::of(0u64..4), 3),
        minimal in any::<bool>(),
    ) {
        let empty = if minimal {
            HeldState::Derived(Derived::Absent)
        } else {
            known(LocalState::Absent)
        };
        let records: Vec<(StreamId, CdcEvent)> = events
            .into_iter()
            .enumerate()
            .map(|(n, (k, kind, version, content))| {
                let key = format!("k{k}");
                let event = match kind {
                    0 => put(&key, version, &[content]),
                    1 => del(&key),
                    _ => stamped_del(&key, version, 1000 + version as i64),
                };
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
            apply_batch(&mut one_by_one, &empty, vec![record.clone()], &evidence);
        }
        let mut batched = HashMap::new();
        let mut rest = records.as_slice();
        for cut in cuts.iter().cycle() {
            if rest.is_empty() { break; }
            let (batch, tail) = rest.split_at((*cut).min(rest.len()));
            apply_batch(&mut batched, &empty, batch.to_vec(), &evidence);
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
            // Every other delete carries its stamp on the entry, the rest rely on the
            // writer's tombstone: the same stamp either way.
            let (event, tomb) = if is_del && n % 2 == 0 {
                (stamped_del(&key, version, 1000 + version as i64), None)
            } else if is_del {
                (del(&key), Some(Tombstone { version, deleted_at: 1000 + version as i64 }))
            } else {
                (put(&key, version, &[content]), None)
            };
            let stamp = match (&event, &tomb) {
                (CdcEvent::Put(item), _) => item.stamp(),
                (CdcEvent::Delete { stamp: Some(t), .. }, _) | (_, Some(t)) => t.stamp(),
                _ => unreachable!(),
            };
            let entry = best.entry(key.clone()).or_insert_with(|| stamp.clone());
            if stamp > *entry { *entry = stamp; }
            let local = store.get(&key).cloned().unwrap_or(LocalState::Absent);
            match decide(id(n as u64), event, &known(local.clone()), tomb.map_or(DeleteEvidence::Bare, DeleteEvidence::Tombstone)) {
                Decision::Apply(Change::Put(item)) => { store.insert(key, LocalState::Present(item.stamp())); }
                Decision::Apply(Change::Delete { key, tombstone }) => { store.insert(key, LocalState::Deleted(tombstone)); }
                Decision::Refused { .. } => prop_assert!(false, "every delete had evidence"),
                Decision::Duplicate | Decision::Stale => {}
            }
        }
        for (key, stamp) in best {
            prop_assert_eq!(store[&key].stamp(), Some(stamp));
        }
    }
}
