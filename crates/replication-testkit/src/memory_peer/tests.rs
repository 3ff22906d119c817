//! Unit tests of the in-memory peer: its stream, tree, items and tombstones as a peer reads them.

use super::*;
use replication_core::{CdcDecoder, DecodeLimits};

fn peer() -> MemoryPeer {
    MemoryPeer::new("peer-b", MemoryStore::new())
}

#[tokio::test]
async fn local_writes_appear_on_the_stream_and_decode() {
    let peer = peer();
    let item = peer.store().put_local("a.b", b"hello".to_vec());
    let tombstone = peer.store().delete_local("a.b");
    let entries = peer
        .read_stream(ReadRequest {
            after: StreamId::ZERO,
            count: 10,
            block: None,
        })
        .await
        .unwrap();
    assert_eq!(entries.len(), 2);
    assert!(entries[0].id < entries[1].id);
    let mut decoder = CdcDecoder::new(DecodeLimits::default());
    let first = decoder
        .decode(entries[0].id, entries[0].fields.clone())
        .unwrap();
    assert_eq!(first, CdcEvent::Put(item));
    let second = decoder
        .decode(entries[1].id, entries[1].fields.clone())
        .unwrap();
    // Our stores stamp their DEL entries.
    assert_eq!(
        second,
        CdcEvent::Delete {
            key: "a.b".into(),
            stamp: tombstone
        }
    );
    // Reads are exclusive of the cursor and honour count.
    let after_first = peer
        .read_stream(ReadRequest {
            after: entries[0].id,
            count: 1,
            block: None,
        })
        .await
        .unwrap();
    assert_eq!(after_first, entries[1..]);
}

#[tokio::test]
async fn replicated_writes_do_not_echo_unless_asked() {
    let peer = peer();
    peer.store()
        .submit(replication_core::SyncItem::new("k", vec![1], 1, 1))
        .await
        .unwrap();
    assert_eq!(peer.store().last_stream_id(), StreamId::ZERO);
    peer.store().set_echo_replicated_puts(true);
    peer.store()
        .submit(replication_core::SyncItem::new("k", vec![2], 2, 2))
        .await
        .unwrap();
    assert_ne!(peer.store().last_stream_id(), StreamId::ZERO);
}

#[tokio::test]
async fn trimming_reports_redis_gap_facts() {
    let peer = peer();
    assert_eq!(peer.stream_info().await.unwrap(), None);
    let ids: Vec<StreamId> = (0..5u8)
        .map(|i| {
            peer.store().put_local(&format!("k{i}"), vec![i]);
            peer.store().last_stream_id()
        })
        .collect();
    assert_eq!(peer.trim_to(2), 3);
    let info = peer.stream_info().await.unwrap().unwrap();
    assert_eq!(info.length, 2);
    assert_eq!(info.first_entry, Some(ids[3]));
    assert_eq!(info.max_deleted, Some(ids[2]));
    assert_eq!(info.entries_added, Some(5));
    assert_eq!(info.last_generated, ids[4]);
    peer.reset_stream();
    assert_eq!(peer.stream_info().await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn blocked_read_wakes_on_append_or_times_out() {
    let peer = std::sync::Arc::new(peer());
    let empty = peer
        .read_stream(ReadRequest {
            after: StreamId::ZERO,
            count: 10,
            block: Some(Duration::from_secs(5)),
        })
        .await
        .unwrap();
    assert!(empty.is_empty());
    let reader = {
        let peer = peer.clone();
        tokio::spawn(async move {
            peer.read_stream(ReadRequest {
                after: StreamId::ZERO,
                count: 10,
                block: Some(Duration::from_secs(3600)),
            })
            .await
        })
    };
    tokio::task::yield_now().await;
    peer.append_event(&CdcEvent::Delete {
        key: "x".into(),
        stamp: None,
    });
    assert_eq!(reader.await.unwrap().unwrap().len(), 1);
}

#[tokio::test]
async fn failures_are_injected_after_n_calls_and_counted() {
    let peer = peer();
    peer.store().put_local("a", b"12345".to_vec());
    peer.set_unreadable("a");
    peer.fail_after_calls(2);
    assert!(peer.get_merkle_root().await.unwrap().is_some());
    assert!(matches!(
        peer.read_items(&["a".into(), "b".into()]).await.unwrap()[..],
        [ItemRead::Unreadable { .. }, ItemRead::Absent]
    ));
    let err = peer.merkle_children(&["".into()]).await.unwrap_err();
    assert!(err.is_retriable());
    assert_eq!(peer.connection().state, ConnectionState::Reconnecting);
    peer.heal();
    let children = peer
        .merkle_children(&["".into(), "a".into()])
        .await
        .unwrap();
    assert_eq!((children[0].len(), children[1].len()), (1, 0));
    let counters = peer.counters();
    assert_eq!(
        (
            counters.calls,
            counters.failed_calls,
            counters.paths_requested
        ),
        (4, 1, 3)
    );
    assert_eq!((counters.keys_requested, counters.items_returned), (2, 0));
    peer.close().await;
    assert!(matches!(peer.ping().await, Err(PeerError::Closed { .. })));
}

#[tokio::test]
async fn items_and_tombstones_are_read_with_their_stamps() {
    let peer = peer();
    let item = peer.store().put_local("a", b"abc".to_vec());
    peer.store().put_local("b", b"x".to_vec());
    let tombstone = peer.store().delete_local("b").unwrap();
    assert_eq!(
        peer.read_items(&["a".into()]).await.unwrap(),
        [ItemRead::Present(item)]
    );
    assert_eq!(
        peer.read_tombstones(&["a".into(), "b".into()])
            .await
            .unwrap(),
        [None, Some(tombstone)]
    );
    assert_eq!(peer.counters().content_bytes_returned, 3);
}
