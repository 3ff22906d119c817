//! Merkle and item reads against a real redis-server, including a real sync-engine dump.
#![allow(clippy::unwrap_used)] // Tests and their helpers: a panic is the failure report.

mod common;

use common::*;
use fred::types::Value;
use replication_core::merkle::decode_member;
use replication_core::{encode_item_json, ItemRead, PeerBackend, SyncItem, Tombstone};
use replication_peer::{RedisPeer, StreamTailer, TailEvent, TailOptions, TailStart};
use replication_testkit::{eventually, FaultProxy, LinkMode, RedisServer};
use std::sync::Arc;

fn fixture() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/sync-engine-0.2.19/node-node-b.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture present")).unwrap()
}

fn b64(text: &str) -> Vec<u8> {
    // A tiny standard-alphabet decoder keeps base64 out of this crate's dependencies.
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("bad base64"),
    };
    let digits: Vec<u8> = text.bytes().filter(|c| *c != b'=').map(value).collect();
    digits
        .chunks(4)
        .flat_map(|c| {
            let n = c
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, d)| acc | (u32::from(*d) << (18 - 6 * i)));
            let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            bytes[..c.len() - 1].to_vec()
        })
        .collect()
}

/// Loads the dump into `client`'s Redis under `prefix`, returns the number of entries.
async fn load_fixture(
    client: &fred::clients::Client,
    prefix: &str,
    dump: &serde_json::Value,
) -> usize {
    let stream = dump["cdc_stream"].as_array().unwrap();
    for entry in stream {
        let mut args: Vec<Value> = vec![
            replication_core::WireKeys::new(prefix).cdc().into(),
            entry["id"].as_str().unwrap().into(),
        ];
        for pair in entry["fields"].as_array().unwrap() {
            args.push(pair[0].as_str().unwrap().into());
            args.push(Value::Bytes(b64(pair[1].as_str().unwrap()).into()));
        }
        raw(client, "XADD", args).await;
    }
    for (path, hash) in dump["merkle_hash"].as_object().unwrap() {
        raw(
            client,
            "SET",
            vec![
                replication_core::WireKeys::new(prefix)
                    .merkle_hash(path)
                    .into(),
                hash.as_str().unwrap().into(),
            ],
        )
        .await;
    }
    for (path, members) in dump["merkle_children"].as_object().unwrap() {
        for member in members.as_array().unwrap() {
            let key = replication_core::WireKeys::new(prefix).merkle_children(path);
            raw(
                client,
                "ZADD",
                vec![key.into(), "0".into(), member.as_str().unwrap().into()],
            )
            .await;
        }
    }
    for (id, item) in dump["items_raw_b64"].as_object().unwrap() {
        raw(
            client,
            "SET",
            vec![
                format!("{prefix}{id}").into(),
                Value::Bytes(b64(item.as_str().unwrap()).into()),
            ],
        )
        .await;
    }
    stream.len()
}

#[tokio::test]
async fn reads_a_sync_engine_node_as_it_left_its_redis() {
    let dump = fixture();
    let prefix = dump["redis_prefix"].as_str().unwrap().to_owned();
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    let entries = load_fixture(&client, &prefix, &dump).await;
    let peer = connected_peer(&peer_config(&server.url(), &prefix)).await;

    let root = peer.get_merkle_root().await.unwrap().expect("root present");
    assert_eq!(
        hex(&root),
        dump["merkle_root_reported_by_node"].as_str().unwrap()
    );

    let children = dump["merkle_children"].as_object().unwrap();
    let paths: Vec<String> = children
        .keys()
        .cloned()
        .chain(["uk.nhs.patient.3".to_owned()])
        .collect();
    let got = peer.merkle_children(&paths).await.unwrap();
    for (path, kids) in paths.iter().zip(&got) {
        let expected: Vec<_> = children.get(path).map_or(Vec::new(), |m| {
            m.as_array()
                .unwrap()
                .iter()
                .map(|s| decode_member(s.as_str().unwrap().as_bytes()).unwrap())
                .collect()
        });
        assert_eq!(kids, &expected, "children of {path:?}");
    }

    let items = dump["items_raw_b64"].as_object().unwrap();
    let keys: Vec<String> = items
        .keys()
        .cloned()
        .chain(["uk.nhs.patient.3".to_owned()])
        .collect();
    let reads = peer.read_items(&keys).await.unwrap();
    for (key, read) in keys.iter().zip(&reads) {
        match read {
            ItemRead::Present(item) => {
                assert_eq!(&item.key, key);
                assert_eq!(
                    item.content_hash,
                    replication_core::content_hash_hex(&item.content)
                );
            }
            ItemRead::Absent => assert_eq!(key, "uk.nhs.patient.3", "deleted item"),
            other => panic!("{key}: {other:?}"),
        }
    }
    let ItemRead::Present(patient) =
        &reads[keys.iter().position(|k| k == "uk.nhs.patient.1").unwrap()]
    else {
        panic!()
    };
    assert_eq!(
        (
            patient.content.as_slice(),
            patient.version,
            patient.updated_at
        ),
        (&b"tiny, updated"[..], 2, 1_735_776_100_000)
    );

    let mut handle = StreamTailer::spawn(
        peer.clone() as Arc<dyn PeerBackend>,
        TailStart::default(),
        TailOptions::default(),
    );
    let got = collect_until(&mut handle, |ev| record_count(ev) >= entries).await;
    let records: Vec<_> = got
        .iter()
        .flat_map(|e| match e {
            TailEvent::Batch(b) => b.records.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(records.iter().all(|(_, r)| r.is_ok()), "{records:?}");
    let last = records.last().unwrap().1.as_ref().unwrap();
    assert_eq!(
        last,
        &replication_core::CdcEvent::Delete {
            key: "uk.nhs.patient.3".into(),
            stamp: None,
        }
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn commandstat(info: &str, command: &str) -> u64 {
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
}

fn calls(server: &RedisServer, command: &str) -> u64 {
    commandstat(&server.command(&["INFO", "commandstats"]).unwrap(), command)
}

/// A read whose connection drops while its reply is on the way back reached the server
/// once: fred does not replay it, so only the stack's retry layer (here told not to retry)
/// may try again.
#[tokio::test]
async fn a_read_cut_in_flight_is_not_replayed_below_its_owner() {
    let server = RedisServer::start().unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let mut settings = settings();
    settings.peer.retries = 0;
    let peer = RedisPeer::new(&peer_config(&proxy.redis_url(), ""), &settings).unwrap();
    peer.wait_connected(DEADLINE).await.unwrap();
    let peer = Arc::new(peer);
    let before = calls(&server, "get");
    proxy.set(LinkMode::HoldReplies);
    let read = tokio::spawn({
        let peer = Arc::clone(&peer);
        async move { peer.get_merkle_root().await }
    });
    eventually("the root read reaches the server", || {
        calls(&server, "get") > before
    })
    .await;
    proxy.cut();
    proxy.heal();
    let error = read.await.unwrap().expect_err("the cut read fails");
    assert!(error.is_retriable(), "{error}");
    assert_eq!(
        calls(&server, "get"),
        before + 1,
        "the client did not replay it"
    );
}

/// fred 10 sends a `MULTI`/`EXEC` block once more after reconnecting, whatever its
/// attempt count: a checked stream read (a read, so the resend is harmless) whose reply
/// was lost reaches the server twice and succeeds, inside the one call its owner made.
#[tokio::test]
async fn a_checked_read_cut_in_flight_is_resent_once_by_fred() {
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    raw(
        &client,
        "XADD",
        vec!["cdc".into(), "*".into(), "f".into(), "v".into()],
    )
    .await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let mut settings = settings();
    settings.peer.retries = 0;
    let peer = RedisPeer::new(&peer_config(&proxy.redis_url(), ""), &settings).unwrap();
    peer.wait_connected(DEADLINE).await.unwrap();
    let peer = Arc::new(peer);
    let before = calls(&server, "exec");
    proxy.set(LinkMode::HoldReplies);
    let read = tokio::spawn({
        let peer = Arc::clone(&peer);
        async move {
            peer.read_stream_checked(replication_core::StreamId::ZERO, 10)
                .await
        }
    });
    eventually("the checked read reaches the server", || {
        calls(&server, "exec") > before
    })
    .await;
    proxy.cut();
    proxy.heal();
    let checked = read.await.unwrap().expect("the resent block answers");
    assert_eq!(checked.entries.len(), 1);
    assert_eq!(calls(&server, "exec"), before + 2, "sent once more by fred");
}

#[tokio::test]
async fn children_of_a_hundred_paths_cost_one_round_trip() {
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    let hash = "ab".repeat(32);
    let paths: Vec<String> = (0..100).map(|i| format!("p{i}")).collect();
    for path in &paths {
        raw(
            &client,
            "ZADD",
            vec![
                format!("merkle:children:{path}").into(),
                "0".into(),
                format!("c:{hash}").into(),
            ],
        )
        .await;
    }
    let peer = connected_peer(&peer_config(&server.url(), "")).await;
    let zrange_before = commandstat(
        &server.command(&["INFO", "commandstats"]).unwrap(),
        "zrange",
    );
    let trips_before = peer.round_trips();
    let got = peer.merkle_children(&paths).await.unwrap();
    assert_eq!(got.len(), 100);
    assert!(got.iter().all(|kids| kids.len() == 1 && kids[0].0 == "c"));
    assert_eq!(peer.round_trips() - trips_before, 1);
    let zrange_after = commandstat(
        &server.command(&["INFO", "commandstats"]).unwrap(),
        "zrange",
    );
    assert_eq!(zrange_after - zrange_before, 100);
}

#[tokio::test]
async fn items_tombstones_and_unreadable_keys() {
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    let item = SyncItem::new("a.b", b"hello".to_vec(), 7, 123);
    raw(
        &client,
        "SET",
        vec!["n:a.b".into(), Value::Bytes(encode_item_json(&item).into())],
    )
    .await;
    raw(&client, "SET", vec!["n:bad".into(), "{not json".into()]).await;
    raw(
        &client,
        "HSET",
        vec!["n:hashy".into(), "f".into(), "v".into()],
    )
    .await;
    raw(
        &client,
        "HSET",
        vec![
            "n:tombstones".into(),
            "gone".into(),
            r#"{"version":4,"deleted_at":99}"#.into(),
        ],
    )
    .await;
    let peer = connected_peer(&peer_config(&server.url(), "n:")).await;

    let keys: Vec<String> = ["a.b", "missing", "bad", "hashy"]
        .map(String::from)
        .to_vec();
    let reads = peer.read_items(&keys).await.unwrap();
    assert_eq!(reads[0], ItemRead::Present(item));
    assert_eq!(reads[1], ItemRead::Absent);
    assert!(matches!(&reads[2], ItemRead::Unreadable { .. }));
    assert!(matches!(&reads[3], ItemRead::Unreadable { reason } if reason.contains("hash")));

    let tombstones = peer
        .read_tombstones(&["gone".into(), "a.b".into()])
        .await
        .unwrap();
    assert_eq!(
        tombstones,
        vec![
            Some(Tombstone {
                version: 4,
                deleted_at: 99
            }),
            None
        ]
    );
    assert!(peer.ping().await.is_ok());
}

#[tokio::test]
async fn a_failed_read_is_an_error_never_empty() {
    let mut server = RedisServer::start().unwrap();
    let peer = connected_peer(&peer_config(&server.url(), "")).await;
    assert_eq!(
        peer.merkle_children(&["a".into()]).await.unwrap(),
        vec![Vec::new()]
    );
    server.kill();
    let err = peer.merkle_children(&["a".into()]).await.unwrap_err();
    assert!(err.is_retriable(), "{err}");
    assert!(peer.read_items(&["a".into()]).await.is_err());
    assert!(peer.get_merkle_root().await.is_err());
    assert_ne!(
        peer.connection().state,
        replication_core::ConnectionState::Connected
    );
}
