//! Local writes: items, versions, CDC entries exactly as a peer decodes them.

use crate::common::*;
use replication_core::{CdcEvent, ContentType, SyncEngineRef, SyncItem};

#[tokio::test]
async fn put_get_delete_round_trip_with_exact_cdc() {
    let server = server();
    let store = store(&server, "n:").await;
    let probe = probe(&server).await;

    let first = store
        .put("uk.nhs.patient.1", b"tiny".to_vec())
        .await
        .unwrap();
    assert_eq!(first.version, 1);
    let long = b"compressible text ".repeat(20);
    let second = store
        .put_with(
            "uk.nhs.patient.1",
            long.clone(),
            ContentType::Json,
            Some("00-0123-4567-01".into()),
        )
        .await
        .unwrap();
    assert_eq!(second.version, 2);
    assert!(second.updated_at >= first.updated_at);
    assert_eq!(
        store.get_item("uk.nhs.patient.1").await.unwrap(),
        Some(second.clone())
    );
    assert_eq!(store.get("uk.nhs.patient.1").await.unwrap(), Some(long));
    assert!(store
        .is_current("uk.nhs.patient.1", &second.content_hash)
        .await
        .unwrap());
    assert!(!store
        .is_current("uk.nhs.patient.1", &first.content_hash)
        .await
        .unwrap());

    assert!(store.delete("uk.nhs.patient.1".into()).await.unwrap());
    assert_eq!(store.get_item("uk.nhs.patient.1").await.unwrap(), None);
    // Deleting an absent key changes nothing and appends nothing.
    assert!(!store.delete("uk.nhs.patient.1".into()).await.unwrap());
    assert!(!store.delete("never.there".into()).await.unwrap());

    let entries = cdc_entries(&probe, "n:").await;
    let names: Vec<Vec<&str>> = entries
        .iter()
        .map(|(_, f)| f.iter().map(|(n, _)| n.as_str()).collect())
        .collect();
    assert_eq!(
        names,
        [
            vec!["op", "key", "hash", "data", "meta"],
            vec!["op", "key", "hash", "data", "meta"],
            vec!["op", "key", "meta"],
        ]
    );
    assert_eq!(&entries[2].1[0].1[..], b"DEL");
    let tombstones = store
        .get_tombstones(&["uk.nhs.patient.1".into(), "never.there".into()])
        .await
        .unwrap();
    // The DEL entry carries the delete's stamp, the tombstone's.
    assert_eq!(
        cdc_events(&probe, "n:").await,
        [
            CdcEvent::Put(first),
            CdcEvent::Put(second),
            CdcEvent::Delete {
                key: "uk.nhs.patient.1".into(),
                stamp: tombstones[0].clone(),
            }
        ]
    );
    assert_eq!(tombstones[0].as_ref().map(|t| t.version), Some(3));
    assert_eq!(tombstones[1], None);
    check_tree(&probe, "n:").await;
    assert_eq!(
        store.get_merkle_root().await.unwrap(),
        None,
        "an empty store has no root"
    );
}

#[tokio::test]
async fn replicated_writes_append_no_cdc() {
    let server = server();
    let store = store(&server, "").await;
    let probe = probe(&server).await;
    store
        .submit(SyncItem::new("a.b", b"x".to_vec(), 5, 100))
        .await
        .unwrap();
    store
        .delete_replicated_with(
            "a.c".into(),
            replication_core::Tombstone {
                version: 2,
                deleted_at: 50,
            },
        )
        .await
        .unwrap();
    assert!(store.delete_replicated("a.b".into()).await.unwrap());
    store
        .apply_batch(vec![replication_core::Change::Put(SyncItem::new(
            "z",
            vec![],
            1,
            1,
        ))])
        .await
        .unwrap();
    assert_eq!(server.command(&["EXISTS", "cdc"]).unwrap().trim(), ":0");
    assert_eq!(cdc_entries(&probe, "").await.len(), 0);
    check_tree(&probe, "").await;
}

#[tokio::test]
async fn payload_over_the_limit_is_refused_and_nothing_is_written() {
    let server = server();
    let mut config = replication_node::NodeStoreConfig::new(server.url());
    config.max_payload_bytes = 10;
    let store = replication_node::NodeStore::connect(config).await.unwrap();
    let error = store.put("big.one", vec![0; 11]).await.unwrap_err();
    assert!(!error.is_retriable());
    let error = store
        .submit(SyncItem::new("big.two", vec![0; 11], 1, 1))
        .await
        .unwrap_err();
    assert!(!error.is_retriable());
    for part in ["big.two", "11", "10"] {
        assert!(error.message().contains(part), "{}", error.message());
    }
    // One bad change in a batch: the whole batch is refused before anything is written.
    let batch = vec![
        replication_core::Change::Put(SyncItem::new("ok.one", vec![1], 1, 1)),
        replication_core::Change::Put(SyncItem::new("big.three", vec![0; 11], 1, 1)),
    ];
    assert!(!store.apply_batch(batch).await.unwrap_err().is_retriable());
    assert_eq!(server.command(&["DBSIZE"]).unwrap().trim(), ":0");
    // Exactly at the limit is fine.
    store.put("ok.two", vec![0; 10]).await.unwrap();
}

#[tokio::test]
async fn invalid_and_reserved_ids_are_refused() {
    let server = server();
    let store = store(&server, "").await;
    for bad in [
        "",
        "a..b",
        ".a",
        "cdc",
        "tombstones",
        "merkle:hash:",
        "store:epoch",
    ] {
        let error = store.put(bad, b"x".to_vec()).await.unwrap_err();
        assert!(!error.is_retriable(), "{bad}: {error}");
    }
    assert_eq!(store.get("cdc").await.unwrap(), None);
    assert_eq!(server.command(&["DBSIZE"]).unwrap().trim(), ":0");
}
