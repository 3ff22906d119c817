//! Conflict order, version assignment and CDC decisions of the planner.

use super::*;

fn stored_item(version: u64, updated_at: i64, content: &[u8]) -> Stored {
    Stored {
        item: Some(ItemMeta::of(&SyncItem::new(
            "k",
            content.to_vec(),
            version,
            updated_at,
        ))),
        tombstone: None,
    }
}

fn run(ops: &mut [WriteOp], stored: Stored, now: i64) -> Plan {
    let map = HashMap::from([("k", stored)]);
    plan(ops, &map, 0, now, &mut CdcEncoder::new())
}

/// After tombstones were collected the floor stands above their versions: a key written
/// (or deleted) again gets a version above it, so it beats a tombstone another node kept.
#[test]
fn local_writes_take_versions_above_the_floor() {
    let map = HashMap::from([("k", Stored::default())]);
    let mut ops = [WriteOp::LocalPut(SyncItem::new("k", b"v".to_vec(), 0, 0))];
    plan(&mut ops, &map, 41, 500, &mut CdcEncoder::new());
    let WriteOp::LocalPut(item) = &ops[0] else {
        unreachable!()
    };
    assert_eq!(item.version, 42);
    let mut ops = [WriteOp::LocalDelete("k".into())];
    let p = plan(
        &mut ops,
        &HashMap::from([("k", stored_item(3, 1, b"v"))]),
        41,
        500,
        &mut CdcEncoder::new(),
    );
    assert_eq!(p.tombstones_set[0].1.version, 42);
    // Replicated writes keep their versions: the floor is only ours to apply.
    let mut ops = [WriteOp::Put(SyncItem::new("k", b"v".to_vec(), 2, 1))];
    let p = plan(&mut ops, &map, 41, 500, &mut CdcEncoder::new());
    assert_eq!(p.outcomes, [Outcome::Put(true)]);
}

#[test]
fn local_put_takes_the_next_version_and_never_goes_back_in_time() {
    let mut ops = [WriteOp::LocalPut(SyncItem::new("k", b"v".to_vec(), 0, 0))];
    let p = run(&mut ops, stored_item(4, 1_000, b"old"), 500);
    let WriteOp::LocalPut(item) = &ops[0] else {
        unreachable!()
    };
    assert_eq!((item.version, item.updated_at), (5, 1_000));
    assert_eq!(p.items_set, [("k".to_string(), 0)]);
    assert_eq!(p.cdc.len(), 1);
    assert!(p.leaves.contains_key("k"));
}

#[test]
fn local_put_over_a_tombstone_outranks_it_and_drops_it() {
    let mut ops = [WriteOp::LocalPut(SyncItem::new("k", b"v".to_vec(), 0, 0))];
    let stored = Stored {
        item: None,
        tombstone: Some(Tombstone {
            version: 7,
            deleted_at: 50,
        }),
    };
    let p = run(&mut ops, stored, 10);
    let WriteOp::LocalPut(item) = &ops[0] else {
        unreachable!()
    };
    assert_eq!((item.version, item.updated_at), (8, 50));
    assert_eq!(p.tombstones_deleted, ["k"]);
}

#[test]
fn local_delete_of_an_absent_key_does_nothing() {
    let mut ops = [WriteOp::LocalDelete("k".into())];
    let p = run(&mut ops, Stored::default(), 10);
    assert_eq!(p.outcomes, [Outcome::Delete(false)]);
    assert!(p.is_empty());
}

#[test]
fn local_delete_leaves_a_newer_tombstone_and_a_del_entry_carrying_its_stamp() {
    let mut ops = [WriteOp::LocalDelete("k".into())];
    let p = run(&mut ops, stored_item(3, 100, b"x"), 10);
    assert_eq!(p.outcomes, [Outcome::Delete(true)]);
    assert_eq!(
        p.tombstones_set,
        [(
            "k".to_string(),
            Tombstone {
                version: 4,
                deleted_at: 100
            }
        )]
    );
    assert_eq!(p.items_deleted, ["k"]);
    assert_eq!(p.leaves.get("k"), Some(&None));
    assert_eq!(
        p.cdc,
        [replication_core::cdc::encode_stamped_delete(
            "k",
            &Tombstone {
                version: 4,
                deleted_at: 100
            }
        )]
    );
}

#[test]
fn older_replicated_put_is_a_no_op() {
    let mut ops = [WriteOp::Put(SyncItem::new("k", b"older".to_vec(), 2, 999))];
    let p = run(&mut ops, stored_item(3, 1, b"x"), 10);
    assert_eq!(p.outcomes, [Outcome::Put(false)]);
    assert!(p.is_empty());
}

#[test]
fn replicated_put_against_a_tombstone_follows_the_conflict_order() {
    let tomb = Stored {
        item: None,
        tombstone: Some(Tombstone {
            version: 3,
            deleted_at: 100,
        }),
    };
    let mut older = [WriteOp::Put(SyncItem::new("k", b"v".to_vec(), 3, 100))];
    assert!(
        run(&mut older, tomb.clone(), 0).is_empty(),
        "a tie goes to the delete"
    );
    let mut newer = [WriteOp::Put(SyncItem::new("k", b"v".to_vec(), 3, 101))];
    let p = run(&mut newer, tomb, 0);
    assert_eq!(p.outcomes, [Outcome::Put(true)]);
    assert_eq!(p.tombstones_deleted, ["k"]);
    assert!(p.cdc.is_empty(), "replicated writes never produce CDC");
}

#[test]
fn replicated_delete_records_its_tombstone_even_for_an_absent_key() {
    let t = Tombstone {
        version: 5,
        deleted_at: 9,
    };
    let mut ops = [WriteOp::Delete("k".into(), Some(t.clone()))];
    let p = run(&mut ops, Stored::default(), 0);
    assert_eq!(p.outcomes, [Outcome::Delete(false)]);
    assert_eq!(p.tombstones_set, [("k".to_string(), t)]);
    assert!(p.leaves.is_empty() && p.cdc.is_empty());
}

#[test]
fn replicated_delete_that_loses_keeps_the_item() {
    let mut ops = [WriteOp::Delete(
        "k".into(),
        Some(Tombstone {
            version: 2,
            deleted_at: 9,
        }),
    )];
    assert!(run(&mut ops, stored_item(3, 1, b"x"), 0).is_empty());
}

#[test]
fn bare_replicated_delete_removes_the_version_held() {
    let mut ops = [WriteOp::Delete("k".into(), None)];
    let p = run(&mut ops, stored_item(3, 100, b"x"), 50);
    assert_eq!(p.outcomes, [Outcome::Delete(true)]);
    assert_eq!(
        p.tombstones_set,
        [(
            "k".to_string(),
            Tombstone {
                version: 3,
                deleted_at: 100
            }
        )]
    );
    let mut absent = [WriteOp::Delete("k".into(), None)];
    assert!(run(&mut absent, Stored::default(), 50).is_empty());
}

#[test]
fn changes_to_one_key_in_a_batch_apply_in_order() {
    let mut ops = [
        WriteOp::Put(SyncItem::new("k", b"a".to_vec(), 1, 1)),
        WriteOp::Put(SyncItem::new("k", b"b".to_vec(), 3, 1)),
        WriteOp::Put(SyncItem::new("k", b"c".to_vec(), 2, 1)),
    ];
    let p = run(&mut ops, Stored::default(), 0);
    assert_eq!(
        p.outcomes,
        [Outcome::Put(true), Outcome::Put(true), Outcome::Put(false)]
    );
    assert_eq!(p.items_set, [("k".to_string(), 1)]);
}
