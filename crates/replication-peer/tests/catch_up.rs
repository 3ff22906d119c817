//! Catch-up by concurrent id ranges against a real redis-server behind a latency proxy:
//! stream order across ranges, poison entries skipped in place, the bound on ranges in
//! flight, trims during catch-up reported as gaps with the exact count, and which ranges
//! are read when (the rest of a full range early, a range holding exactly its bound
//! once), and the first read retried as soon as the connection is up.
#![allow(clippy::unwrap_used)] // Tests and their helpers: a panic is the failure report.

mod common;

use common::observed::Observed;
use common::*;
use fred::prelude::*;
use fred::types::{ClusterHash, CustomCommand};
use replication_core::{CdcEncoder, PeerBackend, StreamId};
use replication_peer::{StreamTailer, TailEvent, TailOptions, TailStart};
use replication_testkit::{FaultProxy, MemoryPeer, MemoryStore, RedisServer};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// `n` entries with explicit ids spread over time (five per millisecond, as a busy
/// writer's would be); every `poison_every`-th entry from the first (if any; a multiple of
/// 3, so a put) carries a wrong hash.
async fn backlog(client: &Client, n: usize, poison_every: Option<usize>) -> Vec<StreamId> {
    backlog_at(client, n, 5, poison_every).await
}

/// [`backlog`] with `per_ms` entries in each millisecond of id.
async fn backlog_at(
    client: &Client,
    n: usize,
    per_ms: usize,
    poison_every: Option<usize>,
) -> Vec<StreamId> {
    let events = mixed_events(n);
    let mut encoder = CdcEncoder::new();
    let mut ids = Vec::with_capacity(n);
    for (chunk_start, chunk) in (0..n).step_by(500).zip(events.chunks(500)) {
        let pipeline = client.pipeline();
        for (offset, event) in chunk.iter().enumerate() {
            let i = chunk_start + offset;
            let id = StreamId::new(1_000 + (i / per_ms) as u64, (i % per_ms) as u64);
            let mut fields = encoder.encode(event);
            if poison_every.is_some_and(|every| i % every == 0) {
                fields[2].1 = "0".repeat(64).into_bytes();
            }
            let mut args: Vec<Value> = vec!["cdc".into(), id.to_string().into()];
            for (name, value) in fields {
                args.push(name.into());
                args.push(Value::Bytes(value.into()));
            }
            let _: () = pipeline
                .custom(
                    CustomCommand::new_static("XADD", ClusterHash::FirstKey, false),
                    args,
                )
                .await
                .unwrap();
            ids.push(id);
        }
        let _: Vec<Value> = pipeline.all().await.unwrap();
    }
    ids
}

async fn observed_peer(server: &RedisServer, one_way: Duration) -> (FaultProxy, Arc<Observed>) {
    let (proxy, inner) = delayed_peer(server, one_way).await;
    let peer = Arc::new(Observed::new(inner, Duration::ZERO));
    (proxy, peer)
}

fn options(ranges: usize) -> TailOptions {
    TailOptions {
        batch_size: 100,
        max_batch_size: 100,
        catch_up_ranges: ranges,
        ..TailOptions::default()
    }
}

#[tokio::test]
async fn concurrent_ranges_hand_on_the_backlog_in_stream_order_with_poison_skipped() {
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    let ids = backlog(&client, 6_000, Some(999)).await;
    let (_proxy, peer) = observed_peer(&server, Duration::from_millis(10)).await;
    let mut handle = StreamTailer::spawn(
        Arc::clone(&peer) as Arc<dyn PeerBackend>,
        TailStart::default(),
        options(4),
    );
    let got = collect_until(&mut handle, |ev| record_count(ev) >= 6_000).await;
    assert_eq!(record_ids(&got), ids, "every entry once, in stream order");
    let rejected: Vec<StreamId> = got
        .iter()
        .flat_map(|e| match e {
            TailEvent::Batch(b) => b
                .records
                .iter()
                .filter(|(_, r)| r.is_err())
                .map(|(id, _)| *id)
                .collect::<Vec<_>>(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    let poisoned: Vec<StreamId> = (0..6_000).step_by(999).map(|i| ids[i]).collect();
    assert_eq!(rejected, poisoned, "poison entries rejected in place");
    assert_eq!(handle.position().after, ids[5_999]);
    assert_eq!(handle.position().entries_added, Some(6_000));
    assert!(
        peer.ranges.load(Ordering::SeqCst) > 10,
        "caught up by ranges"
    );
    let most = peer.most_in_flight.load(Ordering::SeqCst);
    assert!(most >= 2, "ranges were read concurrently ({most})");
    assert!(
        most <= 4,
        "never more than catch_up_ranges in flight ({most})"
    );
    // Caught up: new writes come through the one blocking read as before.
    let more = write_events(&client, "cdc", &mixed_events(3)).await;
    let got = collect_until(&mut handle, |ev| record_count(ev) >= 3).await;
    assert_eq!(record_ids(&got), more);
}

#[tokio::test]
async fn one_range_at_a_time_is_the_bound_when_so_configured() {
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    let ids = backlog(&client, 2_000, None).await;
    let (_proxy, peer) = observed_peer(&server, Duration::from_millis(5)).await;
    let mut handle = StreamTailer::spawn(
        Arc::clone(&peer) as Arc<dyn PeerBackend>,
        TailStart::default(),
        options(1),
    );
    let got = collect_until(&mut handle, |ev| record_count(ev) >= 2_000).await;
    assert_eq!(record_ids(&got), ids);
    assert!(peer.ranges.load(Ordering::SeqCst) > 0);
    assert_eq!(peer.most_in_flight.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_trim_during_catch_up_is_a_gap_with_the_exact_count() {
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    let n = 10_000;
    let ids = backlog(&client, n, None).await;
    let (_proxy, peer) = observed_peer(&server, Duration::from_millis(5)).await;
    let mut handle = StreamTailer::spawn(
        Arc::clone(&peer) as Arc<dyn PeerBackend>,
        TailStart::default(),
        options(4),
    );
    // Take part of the backlog, then stop taking: the tailer holds ranges already read
    // and waits. Trim most of what it has not handed on yet.
    let mut got = collect_until(&mut handle, |ev| record_count(ev) >= 1_500).await;
    assert!(peer.ranges.load(Ordering::SeqCst) > 0, "in catch-up");
    raw(
        &client,
        "XTRIM",
        vec!["cdc".into(), "MAXLEN".into(), "3000".into()],
    )
    .await;
    got.extend(collect_until(&mut handle, |ev| record_ids(ev).last() == Some(&ids[n - 1])).await);
    let delivered = record_ids(&got);
    assert!(
        delivered.windows(2).all(|w| w[0] < w[1]),
        "in order, no duplicates"
    );
    assert!(delivered.iter().all(|id| ids.binary_search(id).is_ok()));
    let lost: Vec<u64> = got
        .iter()
        .filter_map(|e| match e {
            TailEvent::Gap(gap) => Some(match gap.kind {
                replication_peer::GapKind::Trimmed { lost } => lost.unwrap(),
                other => panic!("{other:?}"),
            }),
            _ => None,
        })
        .collect();
    assert_eq!(lost.len(), 1, "one gap: {lost:?}");
    assert_eq!(
        delivered.len() as u64 + lost[0],
        n as u64,
        "every entry delivered or counted lost"
    );
    // Everything that survived the trim is delivered.
    assert!(delivered.ends_with(&ids[n - 3_000..]));
}

/// Range reads started together travel together: through a 100 ms round trip, eight of
/// them take about one round trip, not eight (a client that runs one transaction at a
/// time per connection would space ranges in `MULTI`s a round trip apart). Each answer is
/// exactly its range, with facts.
#[tokio::test]
async fn concurrent_range_reads_share_one_round_trip() {
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    let ids = backlog(&client, 4_000, None).await;
    let (_proxy, peer) = observed_peer(&server, Duration::from_millis(50)).await;
    // One read first, so that connection set-up is not what is timed.
    peer.read_range_checked(StreamId::ZERO, ids[0], 1)
        .await
        .unwrap();
    let bounds: Vec<(StreamId, StreamId)> = (0..8)
        .map(|k| {
            let after = if k == 0 {
                StreamId::ZERO
            } else {
                ids[k * 500 - 1]
            };
            (after, ids[k * 500 + 499])
        })
        .collect();
    let started = std::time::Instant::now();
    let reads: Vec<_> = bounds
        .iter()
        .map(|&(after, until)| {
            let peer = Arc::clone(&peer);
            tokio::spawn(async move { peer.read_range_checked(after, until, 1_000).await })
        })
        .collect();
    let mut got = Vec::new();
    for read in reads {
        got.push(read.await.unwrap().unwrap());
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(400),
        "eight ranges took {elapsed:?}: not concurrent on the wire (one round trip is 100 ms)"
    );
    for (k, read) in got.iter().enumerate() {
        let read_ids: Vec<StreamId> = read.entries.iter().map(|e| e.id).collect();
        assert_eq!(read_ids, ids[k * 500..k * 500 + 500], "range {k}");
        let info = read.info.as_ref().expect("facts with every range");
        assert_eq!(info.entries_added, Some(4_000));
    }
}

/// Next to its peer (no proxy), a read takes far less than a round trip across a WAN, and
/// one read at a time already keeps the decoder busy: the backlog comes by single reads,
/// no ranges.
#[tokio::test]
async fn a_peer_on_loopback_is_caught_up_by_single_reads() {
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    let ids = backlog(&client, 1_000, None).await;
    let inner = connected_peer(&peer_config(&server.url(), "")).await;
    let peer = Arc::new(Observed::new(inner, Duration::ZERO));
    let mut handle = StreamTailer::spawn(
        Arc::clone(&peer) as Arc<dyn PeerBackend>,
        TailStart::default(),
        options(4),
    );
    let got = collect_until(&mut handle, |ev| record_count(ev) >= 1_000).await;
    assert_eq!(record_ids(&got), ids);
    assert_eq!(
        peer.ranges.load(Ordering::SeqCst),
        0,
        "no ranges on loopback"
    );
}

/// A checked read that takes long because the machine is busy (here: delayed in the
/// backend), over a link whose round trip is short, is no reason for concurrent ranges:
/// the ping tells the two apart.
#[tokio::test]
async fn slow_reads_over_a_fast_link_are_caught_up_by_single_reads() {
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    let ids = backlog(&client, 2_000, None).await;
    let inner = connected_peer(&peer_config(&server.url(), "")).await;
    let peer = Arc::new(Observed::new(inner, Duration::from_millis(20)));
    let mut handle = StreamTailer::spawn(
        Arc::clone(&peer) as Arc<dyn PeerBackend>,
        TailStart::default(),
        options(4),
    );
    let got = collect_until(&mut handle, |ev| record_count(ev) >= 2_000).await;
    assert_eq!(record_ids(&got), ids);
    assert_eq!(
        peer.ranges.load(Ordering::SeqCst),
        0,
        "ranges on a link with a sub-millisecond round trip"
    );
}

/// Ranges are cut at the density the backlog showed; a writer's bursts can fill a range
/// exactly to its bound (here: 400 entries in every millisecond, one-millisecond ranges
/// that may hold 400). Such a range is known complete, so nothing of it is read twice
/// (a range that returned its whole bound used to cost a read of its empty rest, a
/// round trip each across a WAN).
#[tokio::test]
async fn a_range_holding_exactly_its_bound_is_read_once() {
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    let n = 12_000;
    let ids = backlog_at(&client, n, 400, None).await;
    let (_proxy, peer) = observed_peer(&server, Duration::from_millis(5)).await;
    let mut handle = StreamTailer::spawn(
        Arc::clone(&peer) as Arc<dyn PeerBackend>,
        TailStart::default(),
        options(4),
    );
    let got = collect_until(&mut handle, |ev| record_count(ev) >= n).await;
    assert_eq!(record_ids(&got), ids);
    let sent = peer.sent();
    assert!(sent.len() > 10, "caught up by ranges: {sent:?}");
    let mut ends: Vec<StreamId> = sent.iter().map(|r| r.1).collect();
    ends.sort();
    ends.dedup();
    assert_eq!(ends.len(), sent.len(), "a range read twice: {sent:?}");
}

/// A range that comes back full while earlier ones are still handed on has its rest read
/// at once, before anything new: here the first range is slow, the next three come back
/// full meanwhile (800 entries in every millisecond, ranges that hold 400), and the rest
/// of the second is read before a fifth range is (it used to be read only once its range
/// was needed, a round trip after).
#[tokio::test]
async fn the_rest_of_a_range_found_full_is_read_before_anything_new() {
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    let n = 16_000;
    let ids = backlog_at(&client, n, 800, None).await;
    let (_proxy, inner) = delayed_peer(&server, Duration::from_millis(5)).await;
    let mut observed = Observed::new(inner, Duration::ZERO);
    observed.first_range_delay = Duration::from_millis(300);
    let peer = Arc::new(observed);
    let mut handle = StreamTailer::spawn(
        Arc::clone(&peer) as Arc<dyn PeerBackend>,
        TailStart::default(),
        options(4),
    );
    let got = collect_until(&mut handle, |ev| record_count(ev) >= n).await;
    assert_eq!(record_ids(&got), ids, "every entry once, in stream order");
    let sent = peer.sent();
    assert!(sent.len() > 8, "caught up by ranges: {sent:?}");
    let (second, fourth) = (sent[1], sent[3]);
    let rest = sent
        .iter()
        .position(|r| r.1 == second.1 && r.0 != second.0)
        .expect("the second range came back full and its rest was read");
    let fifth = sent
        .iter()
        .position(|r| r.0 == fourth.1)
        .expect("a range after the first four");
    assert!(
        rest < fifth,
        "the rest of a full range waited for its turn: {sent:?}"
    );
}

/// A read refused while the peer's connection is not up never reached the peer, so the
/// tailer retries it as soon as the connection is, not after its whole backoff: a first
/// connect across a WAN takes several round trips, and the backoff running past it delayed
/// the start of every catch-up (up to 0.6 s at 150 ms). Virtual time; the backoff is an
/// hour.
#[tokio::test(start_paused = true)]
async fn a_read_refused_while_the_connection_is_down_is_retried_once_it_is_up() {
    let peer = Arc::new(MemoryPeer::new("b", MemoryStore::new()));
    let id = peer.append_event(&mixed_events(1)[0]);
    peer.set_fail_all(true);
    let options = TailOptions {
        retry_initial: Duration::from_secs(3_600),
        retry_max: Duration::from_secs(3_600),
        ..TailOptions::default()
    };
    let mut handle = StreamTailer::spawn(
        Arc::clone(&peer) as Arc<dyn PeerBackend>,
        TailStart::default(),
        options,
    );
    // The first read fails at once; the tailer then waits to retry.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(peer.counters().failed_calls > 0, "a read was refused");
    peer.heal();
    let healed = tokio::time::Instant::now();
    let got = collect_until(&mut handle, |ev| record_count(ev) >= 1).await;
    assert_eq!(record_ids(&got), [id]);
    assert!(
        healed.elapsed() < Duration::from_secs(60),
        "waited out the backoff: {:?}",
        healed.elapsed()
    );
}
