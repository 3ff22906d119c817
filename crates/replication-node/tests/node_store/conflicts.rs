//! The conflict order and tombstones, as the store applies them.

use crate::common::*;
use replication_core::{Change, LocalState, Stamp, SyncEngineRef, SyncItem, Tombstone};

#[tokio::test]
async fn older_replicated_put_is_a_no_op() {
    let server = server();
    let store = store(&server, "").await;
    let newer = SyncItem::new("k.1", b"newer".to_vec(), 3, 100);
    store.submit(newer.clone()).await.unwrap();
    store
        .submit(SyncItem::new("k.1", b"older".to_vec(), 2, 999))
        .await
        .unwrap();
    store
        .submit(SyncItem::new(
            "k.1",
            b"same-version-earlier".to_vec(),
            3,
            99,
        ))
        .await
        .unwrap();
    assert_eq!(store.get_item("k.1").await.unwrap(), Some(newer.clone()));
    // Applying the same write again is harmless.
    store.submit(newer.clone()).await.unwrap();
    let states = store
        .local_states(&["k.1".into(), "k.2".into()])
        .await
        .unwrap();
    assert_eq!(
        states,
        [
            Some(LocalState::Present(newer.stamp())),
            Some(LocalState::Absent)
        ]
    );
}

#[tokio::test]
async fn tombstones_stop_older_puts_and_yield_to_newer_ones() {
    let server = server();
    let store = store(&server, "").await;
    let probe = probe(&server).await;
    store
        .submit(SyncItem::new("k.1", b"v2".to_vec(), 2, 100))
        .await
        .unwrap();
    let tombstone = Tombstone {
        version: 3,
        deleted_at: 200,
    };
    assert!(store
        .delete_replicated_with("k.1".into(), tombstone.clone())
        .await
        .unwrap());
    assert_eq!(store.get_item("k.1").await.unwrap(), None);
    assert_eq!(
        store.local_states(&["k.1".into()]).await.unwrap(),
        [Some(LocalState::Deleted(tombstone.clone()))]
    );

    // Older (or tied) puts arriving late do not resurrect the key.
    store
        .submit(SyncItem::new("k.1", b"v2".to_vec(), 2, 100))
        .await
        .unwrap();
    store
        .submit(SyncItem::new("k.1", b"tie".to_vec(), 3, 200))
        .await
        .unwrap();
    assert_eq!(store.get_item("k.1").await.unwrap(), None);

    // A newer put replaces the tombstone.
    let newer = SyncItem::new("k.1", b"v4".to_vec(), 4, 150);
    store.submit(newer.clone()).await.unwrap();
    assert_eq!(store.get_item("k.1").await.unwrap(), Some(newer));
    assert_eq!(store.get_tombstones(&["k.1".into()]).await.unwrap(), [None]);
    check_tree(&probe, "").await;
}

#[tokio::test]
async fn replicated_delete_of_an_absent_key_still_records_its_tombstone() {
    let server = server();
    let store = store(&server, "").await;
    let t = Tombstone {
        version: 5,
        deleted_at: 10,
    };
    assert!(!store
        .delete_replicated_with("gone.1".into(), t.clone())
        .await
        .unwrap());
    assert_eq!(
        store.get_tombstones(&["gone.1".into()]).await.unwrap(),
        [Some(t.clone())]
    );
    // An older tombstone does not replace a newer one.
    store
        .delete_replicated_with(
            "gone.1".into(),
            Tombstone {
                version: 4,
                deleted_at: 99,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store.get_tombstones(&["gone.1".into()]).await.unwrap(),
        [Some(t)]
    );
    // A put at the tombstone's version but earlier loses; a later one wins.
    store
        .submit(SyncItem::new("gone.1", b"x".to_vec(), 5, 9))
        .await
        .unwrap();
    assert_eq!(store.get("gone.1").await.unwrap(), None);
    store
        .submit(SyncItem::new("gone.1", b"x".to_vec(), 5, 11))
        .await
        .unwrap();
    assert_eq!(store.get("gone.1").await.unwrap(), Some(b"x".to_vec()));
}

#[tokio::test]
async fn local_writes_outrank_what_they_replace() {
    let server = server();
    let store = store(&server, "").await;
    store
        .submit(SyncItem::new("k", b"remote".to_vec(), 7, i64::MAX - 10))
        .await
        .unwrap();
    let local = store.put("k", b"local".to_vec()).await.unwrap();
    assert_eq!(local.version, 8);
    assert_eq!(local.updated_at, i64::MAX - 10, "time never goes backwards");
    assert!(store.delete("k".into()).await.unwrap());
    let tomb = store
        .get_tombstones(&["k".into()])
        .await
        .unwrap()
        .pop()
        .flatten()
        .unwrap();
    assert_eq!(tomb.version, 9);
    assert!(tomb
        .stamp()
        .beats(&Stamp::put(8, i64::MAX - 10, &local.content_hash)));
    let again = store.put("k", b"back".to_vec()).await.unwrap();
    assert_eq!(again.version, 10);
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Collection goes by when this store recorded a tombstone, not by the deleter's clock: the
/// 1 000 tombstones recorded first go, whatever their `deleted_at` says.
#[tokio::test]
async fn purge_drops_only_tombstones_recorded_before_the_horizon() {
    let server = server();
    let store = store(&server, "p:").await;
    let deletes = |range: std::ops::Range<i64>, deleted_at: i64| {
        range
            .map(|i| Change::Delete {
                key: format!("t.{i}"),
                tombstone: Tombstone {
                    version: 1,
                    deleted_at,
                },
            })
            .collect::<Vec<_>>()
    };
    // Recorded first, although their deletes claim to be the newest.
    store
        .apply_batch(deletes(0..1000, i64::MAX - 1))
        .await
        .unwrap();
    let horizon = wall_ms() + 1;
    while wall_ms() < horizon {
        tokio::task::yield_now().await;
    }
    store.apply_batch(deletes(1000..2500, 1)).await.unwrap();
    assert_eq!(store.purge_tombstones(horizon).await.unwrap(), 1000);
    assert_eq!(store.purge_tombstones(horizon).await.unwrap(), 0);
    let left = store
        .get_tombstones(&["t.999".into(), "t.1000".into()])
        .await
        .unwrap();
    assert_eq!(left[0], None);
    assert_eq!(
        left[1],
        Some(Tombstone {
            version: 1,
            deleted_at: 1
        })
    );
    assert_eq!(
        server.command(&["HLEN", "p:tombstones"]).unwrap().trim(),
        ":1500"
    );
}

/// A collected tombstone raises the store's version floor: writing the key again (or any
/// key) takes a version above it, so the new write beats the tombstone other nodes may
/// still keep. States read before the purge are not reused by the next write.
#[tokio::test]
async fn a_key_written_again_after_its_tombstone_was_collected_outranks_that_tombstone() {
    let server = server();
    let store = store(&server, "f:").await;
    store.put("k", b"one".to_vec()).await.unwrap();
    for _ in 0..4 {
        store.put("k", b"more".to_vec()).await.unwrap();
    }
    assert!(store.delete_item("k").await.unwrap());
    // Read (and kept for the next write) while the tombstone is there.
    let before = store.local_states(&["k".into()]).await.unwrap();
    assert!(matches!(
        before[0],
        Some(LocalState::Deleted(Tombstone { version: 6, .. }))
    ));
    assert_eq!(store.purge_tombstones(i64::MAX).await.unwrap(), 1);
    assert_eq!(
        server
            .command(&["GET", "f:store:version_floor"])
            .unwrap()
            .trim(),
        "6"
    );
    let again = store.put("k", b"again".to_vec()).await.unwrap();
    assert_eq!(
        again.version, 7,
        "written again below the collected tombstone"
    );
    assert!(again.stamp().beats(
        &Tombstone {
            version: 6,
            deleted_at: i64::MAX
        }
        .stamp()
    ));
    let other = store.put("fresh", b"x".to_vec()).await.unwrap();
    assert_eq!(other.version, 7, "every local write is above the floor");
    // Replicated writes keep their versions.
    store
        .submit(SyncItem::new("low", b"v".to_vec(), 1, 1))
        .await
        .unwrap();
    assert_eq!(store.get_item("low").await.unwrap().unwrap().version, 1);
}
