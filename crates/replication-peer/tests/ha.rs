//! Peers behind Sentinel and on a Redis Cluster, against real processes: every read of a
//! peer written without a hash tag (as sync-engine writes) routes per key across the
//! Cluster's slots; the tailer follows a Cluster failover and a Sentinel promotion, and a
//! stream the promotion rewound (entries the dead primary never replicated) is a gap.
#![allow(clippy::unwrap_used)] // Tests and their helpers: a panic is the failure report.

mod common;

use common::*;
use fred::types::Value;
use replication_core::merkle::encode_member;
use replication_core::{
    encode_item_json, ItemRead, PeerBackend, ReadRequest, StreamId, SyncItem, Tombstone,
};
use replication_peer::{GapKind, StreamTailer, TailEvent, TailOptions, TailStart};
use replication_testkit::{eventually_some, RedisCluster, SentinelSet};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

fn options() -> TailOptions {
    TailOptions {
        batch_size: 10,
        max_batch_size: 100,
        block_timeout: Duration::from_millis(100),
        ..TailOptions::default()
    }
}

/// Runs blocking test-harness work (process control, waits) off the async workers.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_a_hash_tag_is_read_across_a_cluster() {
    let cluster = blocking(|| RedisCluster::start().unwrap()).await;
    let url = cluster.url();
    let client = writer(&url).await;
    let prefix = "se:";
    let ids = write_events(&client, "se:cdc", &mixed_events(30)).await;
    let items: Vec<SyncItem> = (0..24)
        .map(|i| {
            SyncItem::new(
                format!("uk.k{i}"),
                format!("v{i}").into_bytes(),
                2,
                1_000 + i,
            )
        })
        .collect();
    for item in &items {
        let body = Value::Bytes(encode_item_json(item).into());
        raw(
            &client,
            "SET",
            vec![format!("{prefix}{}", item.key).into(), body],
        )
        .await;
    }
    let owners: HashSet<u16> = items
        .iter()
        .map(|item| {
            cluster
                .primary_for(&format!("{prefix}{}", item.key))
                .unwrap()
                .port()
        })
        .collect();
    assert_eq!(owners.len(), 3, "the items must spread over every primary");
    raw(
        &client,
        "HSET",
        vec![
            "se:tombstones".into(),
            "uk.gone".into(),
            r#"{"version":4,"deleted_at":99}"#.into(),
        ],
    )
    .await;
    let hash = [7u8; 32];
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    raw(&client, "SET", vec!["se:merkle:hash:".into(), hex.into()]).await;
    for (path, segment) in [("", "uk"), ("uk", "k0"), ("uk.k1", "x")] {
        let key = format!("se:merkle:children:{path}");
        let member = encode_member(segment, &hash);
        raw(&client, "ZADD", vec![key.into(), "0".into(), member.into()]).await;
    }

    let peer = connected_peer(&peer_config(&url, prefix)).await;
    let keys: Vec<String> = items
        .iter()
        .map(|i| i.key.clone())
        .chain(["uk.absent".to_owned()])
        .collect();
    let reads = peer.read_items(&keys).await.unwrap();
    for (item, read) in items.iter().zip(&reads) {
        assert_eq!(read, &ItemRead::Present(item.clone()));
    }
    assert_eq!(reads.last(), Some(&ItemRead::Absent));
    assert_eq!(
        peer.read_tombstones(&["uk.gone".into(), "uk.k0".into()])
            .await
            .unwrap(),
        vec![
            Some(Tombstone {
                version: 4,
                deleted_at: 99
            }),
            None
        ]
    );
    assert_eq!(peer.get_merkle_root().await.unwrap(), Some(hash));
    let paths: Vec<String> = ["", "uk", "uk.k1", "uk.none"].map(String::from).to_vec();
    let children = peer.merkle_children(&paths).await.unwrap();
    assert_eq!(children[0], vec![("uk".to_owned(), hash)]);
    assert_eq!(children[1], vec![("k0".to_owned(), hash)]);
    assert_eq!(children[2], vec![("x".to_owned(), hash)]);
    assert!(children[3].is_empty());

    let info = peer.stream_info().await.unwrap().unwrap();
    assert_eq!(info.length, 30);
    let checked = peer.read_stream_checked(ids[9], 100).await.unwrap();
    assert_eq!(checked.entries.len(), 20);
    assert_eq!(checked.info.unwrap().entries_added, Some(30));
    let read = peer
        .read_stream(ReadRequest {
            after: StreamId::ZERO,
            count: 100,
            block: Some(Duration::from_millis(100)),
        })
        .await
        .unwrap();
    assert_eq!(read.len(), 30);
    assert!(peer.ping().await.is_ok());
    let owner = cluster.primary_for("se:cdc").unwrap().port();
    assert_eq!(
        peer.connection().server,
        Some(format!("127.0.0.1:{owner}")),
        "health names the primary holding the stream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tailer_follows_a_cluster_failover_and_loses_nothing() {
    let cluster = Arc::new(blocking(|| RedisCluster::start().unwrap()).await);
    let url = cluster.url();
    let client = writer(&url).await;
    let mut ids = write_events(&client, "p:cdc", &mixed_events(40)).await;
    let peer = connected_peer(&peer_config(&url, "p:")).await;
    let mut handle = StreamTailer::spawn(
        peer.clone() as Arc<dyn PeerBackend>,
        TailStart::default(),
        options(),
    );
    let mut got = collect_until(&mut handle, |ev| record_count(ev) >= 40).await;
    let before = peer.connection();
    let c = Arc::clone(&cluster);
    let (old, new) = blocking(move || c.failover("p:cdc").unwrap()).await;
    ids.extend(write_events(&client, "p:cdc", &mixed_events(40)).await);
    got.extend(collect_until(&mut handle, |ev| record_count(ev) + 40 >= 80).await);
    assert!(
        got.iter().all(|e| matches!(e, TailEvent::Batch(_))),
        "a coordinated failover loses nothing: no gap"
    );
    // A pipelined XADD redirected by the failover (MOVED) runs after the ones sent behind
    // it, so the stream's order is the ids' sorted order, not the order they were sent in.
    ids.sort();
    assert_eq!(record_ids(&got), ids);
    assert_eq!(before.server, Some(format!("127.0.0.1:{old}")));
    let after = eventually_some("the peer follows the new primary", || {
        let status = peer.connection();
        (status.server == Some(format!("127.0.0.1:{new}"))).then_some(status)
    })
    .await;
    assert_eq!(after.failovers, before.failovers + 1, "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_rewound_by_a_sentinel_promotion_is_a_gap_and_reread() {
    let set = Arc::new(std::sync::Mutex::new(
        blocking(|| SentinelSet::start().unwrap()).await,
    ));
    let url = set.lock().unwrap().url();
    let through_sentinel = writer(&url).await;
    let mut ids = write_events(&through_sentinel, "cdc", &mixed_events(20)).await;
    let s = Arc::clone(&set);
    blocking(move || s.lock().unwrap().wait_replicated().unwrap()).await;
    let peer = connected_peer(&peer_config(&url, "")).await;
    let first_primary = peer.connection().server;
    let mut handle = StreamTailer::spawn(
        peer.clone() as Arc<dyn PeerBackend>,
        TailStart::default(),
        options(),
    );
    collect_until(&mut handle, |ev| record_count(ev) >= 20).await;

    // The replica is frozen and its link cut (so not even bytes already in flight reach it);
    // the primary takes ten more entries, which the tailer reads, then dies.
    let (replica, primary_url) = {
        let set = set.lock().unwrap();
        let primary = set.primary().unwrap().port();
        let replica = set
            .servers()
            .iter()
            .find(|s| s.port() != primary)
            .unwrap()
            .port();
        (replica, format!("redis://127.0.0.1:{primary}"))
    };
    let frozen = |set: &SentinelSet| {
        set.servers()
            .iter()
            .find(|s| s.port() == replica)
            .unwrap()
            .freeze()
            .unwrap();
    };
    frozen(&set.lock().unwrap());
    let direct = writer(&primary_url).await;
    raw(
        &direct,
        "CLIENT",
        vec!["KILL".into(), "TYPE".into(), "replica".into()],
    )
    .await;
    let lost = write_events(&direct, "cdc", &mixed_events(10)).await;
    collect_until(&mut handle, |ev| record_count(ev) >= 10).await;
    assert_eq!(handle.position().after, lost[9]);
    let s = Arc::clone(&set);
    let promoted = blocking(move || {
        let mut set = s.lock().unwrap();
        let old = set.kill_primary().unwrap();
        set.servers()
            .iter()
            .find(|s| s.port() == replica)
            .unwrap()
            .thaw()
            .unwrap();
        set.wait_failover(old).unwrap()
    })
    .await;
    assert_eq!(promoted, replica);

    // The new primary's stream ends below the cursor: the tailer reports it as recreated
    // and reads it again from the start, then follows new writes.
    let got = collect_until(&mut handle, |ev| record_count(ev) >= 20).await;
    let TailEvent::Gap(gap) = &got[0] else {
        panic!("{got:?}")
    };
    assert_eq!(gap.after, lost[9]);
    assert_eq!(gap.kind, GapKind::Recreated);
    assert_eq!(record_ids(&got), ids);
    // A fresh client: the test's writer has no reconnect policy.
    let through_sentinel = writer(&url).await;
    ids = write_events(&through_sentinel, "cdc", &mixed_events(5)).await;
    let more = collect_until(&mut handle, |ev| record_count(ev) >= 5).await;
    assert_eq!(record_ids(&more), ids);
    // The facts come from the connection that noticed the promotion; the entries may have
    // come over the other one first, so the status is waited for, not read at once.
    let status = eventually_some("the peer names the promoted primary", || {
        let status = peer.connection();
        (status.server == Some(format!("127.0.0.1:{promoted}"))).then_some(status)
    })
    .await;
    assert_ne!(status.server, first_primary);
    assert!(status.failovers >= 1, "{status:?}");
}
