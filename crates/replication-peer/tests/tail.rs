//! Tailing a real redis-server: order, resume, restart, bad entries.
#![allow(clippy::unwrap_used)] // Tests and their helpers: a panic is the failure report.

mod common;

use common::*;
use replication_core::{CdcEvent, PeerBackend, RejectReason};
use replication_peer::{StreamTailer, TailEvent, TailOptions, TailStart};
use replication_testkit::RedisServer;
use std::sync::Arc;

fn options() -> TailOptions {
    TailOptions {
        batch_size: 100,
        max_batch_size: 1000,
        ..TailOptions::default()
    }
}

#[tokio::test]
async fn tails_ten_thousand_mixed_entries_in_order() {
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    let events = mixed_events(10_000);
    let ids = write_events(&client, "p:cdc", &events).await;
    let peer = connected_peer(&peer_config(&server.url(), "p:")).await;

    let mut handle = StreamTailer::spawn(
        peer as Arc<dyn PeerBackend>,
        TailStart::default(),
        options(),
    );
    let got = collect_until(&mut handle, |ev| record_count(ev) >= 10_000).await;
    assert_eq!(record_ids(&got), ids);
    let decoded: Vec<CdcEvent> = got
        .iter()
        .flat_map(|e| match e {
            TailEvent::Batch(b) => b
                .records
                .iter()
                .map(|(_, r)| r.clone().unwrap())
                .collect::<Vec<_>>(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(decoded, events);
    assert_eq!(handle.position().after, ids[9_999]);
    assert_eq!(handle.position().entries_added, Some(10_000));
    // Reads grew past the initial size while behind.
    assert!(got
        .iter()
        .any(|e| matches!(e, TailEvent::Batch(b) if b.records.len() > 100)));
}

#[tokio::test]
async fn resumes_after_a_cursor_and_follows_new_writes() {
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    let ids = write_events(&client, "cdc", &mixed_events(20)).await;
    let peer = connected_peer(&peer_config(&server.url(), "")).await;
    let start = TailStart {
        after: ids[9],
        entries_added: None,
    };
    let mut handle = StreamTailer::spawn(peer as Arc<dyn PeerBackend>, start, options());
    let got = collect_until(&mut handle, |ev| record_count(ev) >= 10).await;
    assert_eq!(record_ids(&got), ids[10..].to_vec());
    // Caught up: a new write arrives through the blocking read.
    let more = write_events(&client, "cdc", &mixed_events(1)).await;
    let got = collect_until(&mut handle, |ev| record_count(ev) >= 1).await;
    assert_eq!(record_ids(&got), more);
    assert_eq!(handle.status().lag.map(|l| l.entries), Some(Some(0)));
}

#[tokio::test]
async fn survives_a_peer_restart_without_loss_or_duplicates() {
    let mut server = RedisServer::builder().persistence(true).start().unwrap();
    let url = server.url();
    let client = writer(&url).await;
    let mut ids = write_events(&client, "cdc", &mixed_events(500)).await;
    let peer = connected_peer(&peer_config(&url, "")).await;
    let mut handle = StreamTailer::spawn(
        peer.clone() as Arc<dyn PeerBackend>,
        TailStart::default(),
        TailOptions {
            batch_size: 50,
            max_batch_size: 50,
            ..TailOptions::default()
        },
    );
    let mut got = collect_until(&mut handle, |ev| record_count(ev) >= 100).await;

    server.restart().unwrap();
    let client = writer(&url).await;
    ids.extend(write_events(&client, "cdc", &mixed_events(500)).await);
    got.extend(
        collect_until(&mut handle, |ev| {
            record_count(ev) + record_count(&got) >= 1000
        })
        .await,
    );

    assert!(
        got.iter().all(|e| matches!(e, TailEvent::Batch(_))),
        "no gap after a restart with persistence"
    );
    assert_eq!(record_ids(&got), ids);
    // The stream connection is back (it delivered the entries); the query connection
    // may still be reconnecting a moment later.
    replication_testkit::eventually("the peer reports itself connected again", || {
        peer.connection().state == replication_core::ConnectionState::Connected
    })
    .await;
    let status = peer.connection();
    assert!(status.reconnects >= 1, "{status:?}");
}

#[tokio::test]
async fn a_corrupt_entry_is_reported_and_skipped() {
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    let events = mixed_events(2);
    let mut encoder = replication_core::CdcEncoder::new();
    let mut bad = encoder.encode(&events[0]);
    bad[2].1 = "0".repeat(64).into_bytes(); // hash field: does not match the content
    let entries = vec![encoder.encode(&events[0]), bad, encoder.encode(&events[1])];
    let ids = xadd_all(&client, "cdc", &entries).await;
    let peer = connected_peer(&peer_config(&server.url(), "")).await;
    let mut handle = StreamTailer::spawn(
        peer as Arc<dyn PeerBackend>,
        TailStart::default(),
        options(),
    );
    let got = collect_until(&mut handle, |ev| record_count(ev) >= 3).await;
    let TailEvent::Batch(batch) = &got[0] else {
        panic!("{got:?}")
    };
    assert_eq!(batch.records[0].1.as_ref().unwrap(), &events[0]);
    let rejected = batch.records[1].1.as_ref().unwrap_err();
    assert_eq!(rejected.entry_id, ids[1]);
    assert!(matches!(rejected.reason, RejectReason::HashMismatch { .. }));
    assert_eq!(batch.records[2].1.as_ref().unwrap(), &events[1]);
    assert_eq!(handle.position().after, ids[2]);
    assert_eq!(handle.status().rejected, 1);
}

#[tokio::test]
async fn batches_count_wire_bytes_and_decompressed_content_bytes() {
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    // Compressible content travels zstd-compressed: fewer bytes on the wire than content.
    let content = b"the same words again and again ".repeat(400);
    let events = vec![
        CdcEvent::Put(replication_core::SyncItem::new(
            "k.1",
            content.clone(),
            1,
            1,
        )),
        CdcEvent::Delete {
            key: "k.2".into(),
            stamp: None,
        },
    ];
    write_events(&client, "cdc", &events).await;
    let peer = connected_peer(&peer_config(&server.url(), "")).await;
    let mut handle = StreamTailer::spawn(
        peer as Arc<dyn PeerBackend>,
        TailStart::default(),
        options(),
    );
    let got = collect_until(&mut handle, |ev| record_count(ev) >= 2).await;
    let (wire, decoded): (u64, u64) = got.iter().fold((0, 0), |(w, c), e| match e {
        TailEvent::Batch(b) => (w + b.wire_bytes, c + b.content_bytes),
        _ => (w, c),
    });
    assert_eq!(decoded, content.len() as u64);
    assert!(
        wire > 0 && wire < decoded / 4,
        "wire {wire}, content {decoded}"
    );
}
