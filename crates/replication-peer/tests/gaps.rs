//! Gap detection against a real redis-server: trims, the cursor's own entry, recreation.
#![allow(clippy::unwrap_used)] // Tests and their helpers: a panic is the failure report.

mod common;

use common::*;
use fred::types::Value;
use replication_core::{PeerBackend, StreamId};
use replication_peer::{GapKind, StreamTailer, TailEvent, TailOptions, TailStart};
use replication_testkit::RedisServer;
use std::sync::Arc;

fn options() -> TailOptions {
    TailOptions {
        batch_size: 10,
        max_batch_size: 100,
        ..TailOptions::default()
    }
}

#[tokio::test]
async fn trim_past_the_cursor_is_reported_with_the_count() {
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    let ids = write_events(&client, "cdc", &mixed_events(100)).await;
    raw(
        &client,
        "XTRIM",
        vec!["cdc".into(), "MAXLEN".into(), "50".into()],
    )
    .await;
    let peer = connected_peer(&peer_config(&server.url(), "")).await;
    let start = TailStart {
        after: ids[29],
        entries_added: Some(30),
    };
    let mut handle = StreamTailer::spawn(peer as Arc<dyn PeerBackend>, start, options());
    let got = collect_until(&mut handle, |ev| record_count(ev) >= 50).await;
    let TailEvent::Gap(gap) = &got[0] else {
        panic!("{got:?}")
    };
    assert_eq!(gap.after, ids[29]);
    assert_eq!(gap.kind, GapKind::Trimmed { lost: Some(20) });
    // The oldest survivor comes next, nothing is skipped.
    assert_eq!(record_ids(&got), ids[50..].to_vec());
}

#[tokio::test]
async fn a_trim_while_tailing_is_counted() {
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    let ids = write_events(&client, "cdc", &mixed_events(100)).await;
    let peer = connected_peer(&peer_config(&server.url(), "")).await;
    let mut handle = StreamTailer::spawn(
        peer as Arc<dyn PeerBackend>,
        TailStart::default(),
        options(),
    );
    let got = collect_until(&mut handle, |ev| record_count(ev) >= 100).await;
    assert_eq!(record_ids(&got), ids);
    // 100 more entries and a trim to 50 in one atomic step: entries 101..150 are lost
    // before the (blocked) tailer can see them.
    let script = "for i=1,100 do redis.call('XADD', KEYS[1], '*', 'op', 'DEL', 'key', 'k'..i) end \
                  redis.call('XTRIM', KEYS[1], 'MAXLEN', '50') return 1";
    raw(
        &client,
        "EVAL",
        vec![script.into(), Value::from(1), "cdc".into()],
    )
    .await;
    let got = collect_until(&mut handle, |ev| record_count(ev) >= 50).await;
    let TailEvent::Gap(gap) = &got[0] else {
        panic!("{got:?}")
    };
    assert_eq!(gap.kind, GapKind::Trimmed { lost: Some(50) });
    assert_eq!(gap.after, ids[99]);
    assert_eq!(record_count(&got), 50);
}

#[tokio::test]
async fn trimming_only_the_cursor_entry_is_not_a_gap() {
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    let ids = write_events(&client, "cdc", &mixed_events(10)).await;
    raw(
        &client,
        "XTRIM",
        vec!["cdc".into(), "MAXLEN".into(), "5".into()],
    )
    .await;
    let peer = connected_peer(&peer_config(&server.url(), "")).await;
    let mut handle = StreamTailer::spawn(
        peer as Arc<dyn PeerBackend>,
        TailStart {
            after: ids[4],
            entries_added: Some(5),
        },
        options(),
    );
    let got = collect_until(&mut handle, |ev| record_count(ev) >= 5).await;
    assert!(
        got.iter().all(|e| matches!(e, TailEvent::Batch(_))),
        "{got:?}"
    );
    assert_eq!(record_ids(&got), ids[5..].to_vec());
}

#[tokio::test]
async fn a_recreated_stream_is_reported_and_read_from_the_start() {
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    write_events(&client, "cdc", &mixed_events(10)).await;
    let peer = connected_peer(&peer_config(&server.url(), "")).await;
    let mut handle = StreamTailer::spawn(
        peer as Arc<dyn PeerBackend>,
        TailStart::default(),
        options(),
    );
    collect_until(&mut handle, |ev| record_count(ev) >= 10).await;
    // Delete and recreate in one step, so the blocked read wakes on the new stream.
    let script = "redis.call('DEL', KEYS[1]) for i=1,3 do redis.call('XADD', KEYS[1], '*', 'op', 'DEL', 'key', 'k'..i) end return 1";
    raw(
        &client,
        "EVAL",
        vec![script.into(), Value::from(1), "cdc".into()],
    )
    .await;
    let got = collect_until(&mut handle, |ev| record_count(ev) >= 3).await;
    let TailEvent::Gap(gap) = &got[0] else {
        panic!("{got:?}")
    };
    assert_eq!(gap.kind, GapKind::Recreated);
    assert_eq!(gap.resume_from.after, StreamId::ZERO);
    assert_eq!(record_count(&got), 3);
}
