//! A hostile or broken peer, on a real redis-server: what it writes can cost this node only
//! bounded work and memory, and one bad value never fails the reads around it.
#![allow(clippy::unwrap_used)] // Tests and their helpers: a panic is the failure report.

mod common;

use common::*;
use fred::types::Value;
use replication_core::{encode_item_json, ItemRead, PeerBackend, SyncItem};
use replication_testkit::RedisServer;

fn hash_hex(byte: u8) -> String {
    hex_of(&[byte; 32])
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn item_reads_refuse_ids_over_the_limits_without_failing_the_others() {
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    let item = SyncItem::new("ok.one", b"v".to_vec(), 1, 1);
    raw(
        &client,
        "SET",
        vec![
            "p:ok.one".into(),
            Value::Bytes(encode_item_json(&item).into()),
        ],
    )
    .await;
    let peer = connected_peer(&peer_config(&server.url(), "p:")).await;
    let long = "a.".repeat(8 * 1024) + "a";
    let reads = peer
        .read_items(&["ok.one".to_owned(), long, "absent".to_owned()])
        .await
        .unwrap();
    assert_eq!(reads[0], ItemRead::Present(item));
    match &reads[1] {
        ItemRead::Unreadable { reason } => {
            assert!(reason.contains("max_object_id_bytes"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(reads[2], ItemRead::Absent);
}

#[tokio::test]
async fn merkle_children_over_the_id_limits_are_not_listed() {
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    let long_segment = "x".repeat(2 * 1024);
    for member in [
        format!("good:{}", hash_hex(1)),
        format!("{long_segment}:{}", hash_hex(2)),
    ] {
        raw(
            &client,
            "ZADD",
            vec!["p:merkle:children:".into(), "0".into(), member.into()],
        )
        .await;
    }
    let peer = connected_peer(&peer_config(&server.url(), "p:")).await;
    let children = peer.merkle_children(&[String::new()]).await.unwrap();
    assert_eq!(children, vec![vec![("good".to_owned(), [1; 32])]]);
}

#[tokio::test]
async fn a_stream_entry_with_an_id_over_the_limits_is_rejected_and_the_next_one_flows() {
    use replication_core::{CdcEncoder, CdcEvent};
    use replication_peer::{StreamTailer, TailEvent, TailOptions, TailStart};
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    let long = "a.".repeat(50 * 1024) + "a";
    let mut encoder = CdcEncoder::new();
    let entries = vec![
        encoder.encode(&CdcEvent::Put(SyncItem::new(&long, b"x".to_vec(), 1, 1))),
        encoder.encode(&CdcEvent::Put(SyncItem::new("fine", b"x".to_vec(), 1, 1))),
    ];
    xadd_all(&client, "p:cdc", &entries).await;
    let peer = connected_peer(&peer_config(&server.url(), "p:")).await;
    let mut tailer = StreamTailer::spawn(peer, TailStart::default(), TailOptions::default());
    let events = collect_until(&mut tailer, |events| record_count(events) >= 2).await;
    let records: Vec<_> = events
        .into_iter()
        .flat_map(|e| match e {
            TailEvent::Batch(batch) => batch.records,
            _ => Vec::new(),
        })
        .collect();
    let rejected = records[0].1.as_ref().unwrap_err();
    assert_eq!(rejected.reason.label(), "key_too_long");
    assert!(rejected.key.as_ref().is_some_and(|k| k.len() < 200));
    assert_eq!(records[1].1.as_ref().unwrap().key(), "fine");
    tailer.stop().await;
}

#[tokio::test]
async fn one_malformed_tombstone_reads_as_absent_and_the_others_as_written() {
    use replication_core::Tombstone;
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    for (key, value) in [
        ("good.one", r#"{"version":3,"deleted_at":7}"#),
        ("bad.json", "{not json"),
        ("bad.shape", r#"{"version":"three"}"#),
        ("good.two", r#"{"version":5,"deleted_at":9,"extra":true}"#),
    ] {
        raw(
            &client,
            "HSET",
            vec!["p:tombstones".into(), key.into(), value.into()],
        )
        .await;
    }
    let peer = connected_peer(&peer_config(&server.url(), "p:")).await;
    let keys: Vec<String> = ["good.one", "bad.json", "absent", "bad.shape", "good.two"]
        .map(String::from)
        .to_vec();
    let read = peer.read_tombstones(&keys).await.unwrap();
    let stamp = |version, deleted_at| {
        Some(Tombstone {
            version,
            deleted_at,
        })
    };
    assert_eq!(read, vec![stamp(3, 7), None, None, None, stamp(5, 9)]);
}

#[tokio::test]
async fn a_wrongly_typed_tombstones_key_reads_as_no_tombstones() {
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    raw(
        &client,
        "SET",
        vec!["p:tombstones".into(), "not a hash".into()],
    )
    .await;
    let peer = connected_peer(&peer_config(&server.url(), "p:")).await;
    let keys = vec!["a".to_owned(), "b".to_owned()];
    assert_eq!(peer.read_tombstones(&keys).await.unwrap(), vec![None, None]);
}
