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

/// A connected peer whose reads accept at most `max_content_bytes` of content and
/// `max_children` children per node.
async fn capped_peer(
    server: &RedisServer,
    max_content_bytes: usize,
    max_children: usize,
) -> std::sync::Arc<replication_peer::RedisPeer> {
    let mut settings = settings();
    settings.hot_path.max_content_bytes = max_content_bytes;
    settings.limits.max_children_per_node = max_children;
    let peer =
        replication_peer::RedisPeer::new(&peer_config(&server.url(), "p:"), &settings).unwrap();
    peer.wait_connected(DEADLINE).await.unwrap();
    std::sync::Arc::new(peer)
}

async fn set_item(client: &fred::clients::Client, item: &SyncItem) {
    raw(
        client,
        "SET",
        vec![
            format!("p:{}", item.key).into(),
            Value::Bytes(encode_item_json(item).into()),
        ],
    )
    .await;
}

#[tokio::test]
async fn item_reads_refuse_items_over_the_content_cap_without_fetching_them_whole() {
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    let small = SyncItem::new("small", vec![7; 100], 1, 1);
    // Its string (4 bytes per content byte at most) is far over 4 x 1 KiB + 64 KiB.
    let huge = SyncItem::new("huge", vec![200; 1 << 20], 1, 1);
    // Within the string cap, but its content is over the content cap.
    let over = SyncItem::new("over", vec![1; 2048], 1, 1);
    for item in [&small, &huge, &over] {
        set_item(&client, item).await;
    }
    let peer = capped_peer(&server, 1024, 1000).await;
    let keys: Vec<String> = ["small", "huge", "over"].map(String::from).to_vec();
    let reads = peer.read_items(&keys).await.unwrap();
    assert_eq!(reads[0], ItemRead::Present(small));
    for (read, what) in [(&reads[1], "huge"), (&reads[2], "over")] {
        match read {
            ItemRead::Unreadable { reason } => {
                assert!(reason.contains("max_content_bytes"), "{what}: {reason}")
            }
            other => panic!("{what}: {other:?}"),
        }
    }
    // The huge item was never transferred whole: what the peer sent stays near the cap.
    let sent: u64 = server
        .command(&["INFO", "stats"])
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("total_net_output_bytes:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(sent < 512 * 1024, "the peer sent {sent} bytes");
}

#[tokio::test]
async fn a_children_set_over_the_cap_is_refused_naming_the_limit() {
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    for i in 0..20 {
        raw(
            &client,
            "ZADD",
            vec![
                "p:merkle:children:".into(),
                "0".into(),
                format!("k{i:02}:{}", hash_hex(i)).into(),
            ],
        )
        .await;
    }
    let within = capped_peer(&server, 1024, 20).await;
    assert_eq!(
        within.merkle_children(&[String::new()]).await.unwrap()[0].len(),
        20
    );
    let capped = capped_peer(&server, 1024, 19).await;
    let error = capped.merkle_children(&[String::new()]).await.unwrap_err();
    assert!(!error.is_retriable(), "{error}");
    assert!(
        error.to_string().contains("max_children_per_node"),
        "{error}"
    );
}

#[tokio::test]
async fn exists_many_says_which_keys_the_peer_holds_in_any_form() {
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    set_item(&client, &SyncItem::new("item", vec![1; 10], 1, 1)).await;
    raw(
        &client,
        "HSET",
        vec!["p:odd".into(), "f".into(), "v".into()],
    )
    .await;
    let peer = connected_peer(&peer_config(&server.url(), "p:")).await;
    let before = peer.round_trips();
    let keys: Vec<String> = ["item", "odd", "absent"].map(String::from).to_vec();
    assert_eq!(
        peer.exists_many(&keys).await.unwrap(),
        vec![true, true, false]
    );
    assert_eq!(peer.round_trips() - before, 1, "one pipeline");
    assert!(peer.exists_many(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn item_sizes_are_learned_without_transferring_the_items() {
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    let big = SyncItem::new("big", vec![200; 256 * 1024], 1, 1);
    set_item(&client, &big).await;
    raw(
        &client,
        "HSET",
        vec!["p:odd".into(), "f".into(), "v".into()],
    )
    .await;
    let peer = connected_peer(&peer_config(&server.url(), "p:")).await;
    let sent_before = net_output_bytes(&server);
    let before = peer.round_trips();
    let long = "a.".repeat(8 * 1024) + "a";
    let keys: Vec<String> = vec!["big".into(), "odd".into(), "absent".into(), long];
    let sizes = peer.item_sizes(&keys).await.unwrap().unwrap();
    assert_eq!(peer.round_trips() - before, 1, "one pipeline");
    let stored = encode_item_json(&big).len() as u64;
    assert!(
        stored >= big.content.len() as u64,
        "the stored form holds the content"
    );
    // A hash cannot be sized by STRLEN: unknown, so a repair reads it alone.
    assert_eq!(sizes, vec![Some(stored), None, Some(0), Some(0)]);
    let sent = net_output_bytes(&server) - sent_before;
    assert!(sent < 16 * 1024, "the peer sent {sent} bytes");
}

fn net_output_bytes(server: &RedisServer) -> u64 {
    server
        .command(&["INFO", "stats"])
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("total_net_output_bytes:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}
