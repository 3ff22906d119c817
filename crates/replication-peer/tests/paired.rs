//! Paired reads against a real redis-server behind a latency proxy: two blocking reads
//! wait at the peer at once, every entry is handed on once and in order while writes keep
//! coming, a trim of entries already handed on is no gap, a trim of entries not yet read
//! is reported with its count, the tailer's own reads after a pairing do not queue
//! behind one still waiting at the peer, an idle tailer pairs its reads before writes
//! come, a late reply of only entries already handed on does not end a pairing, and a
//! peer over a fast link never opens the second connection.
#![allow(clippy::unwrap_used)] // Tests and their helpers: a panic is the failure report.

mod common;

use common::observed::Observed;
use common::*;
use fred::prelude::*;
use replication_peer::{GapKind, RedisPeer, StreamTailer, TailEvent, TailOptions, TailStart};
use replication_testkit::{eventually_async, FaultProxy, LinkMode, RedisServer};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// 20 ms each way: a round trip well above the threshold for slow links.
const ONE_WAY: Duration = Duration::from_millis(20);

fn options(paired: bool) -> TailOptions {
    TailOptions {
        batch_size: 100,
        max_batch_size: 1000,
        block_timeout: Duration::from_secs(2),
        paired_reads: paired,
        ..TailOptions::default()
    }
}

/// How many clients of `server` are blocked in `XREAD` right now.
async fn blocked_readers(admin: &Client) -> usize {
    let list = raw(admin, "CLIENT", vec!["LIST".into()]).await;
    let list = list.as_string().unwrap();
    list.lines()
        .filter(|line| line.contains("cmd=xread") && line.contains("flags=b"))
        .count()
}

/// How many `XREAD`s `server` has run (blocking ones and those of checked reads).
async fn xread_calls(admin: &Client) -> u64 {
    let info = raw(admin, "INFO", vec!["commandstats".into()]).await;
    let info = info.as_string().unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("cmdstat_xread:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().unwrap())
}

/// Waits until the tailer has come back from `reads` more reads after now: each blocking
/// read that came back empty is a point where a caught-up tailer decides on pairing.
async fn reads_go_on(admin: &Client, reads: u64) {
    let from = xread_calls(admin).await;
    eventually_async("the tailer reads on", || async {
        xread_calls(admin).await >= from + reads
    })
    .await;
}

/// Tails `server`'s stream `cdc` through a delaying proxy, after a first entry was read
/// (so the tailer is caught up and has seen the link's round trip).
async fn caught_up_tailer(
    server: &RedisServer,
    writer: &Client,
    options: TailOptions,
) -> (FaultProxy, replication_peer::TailerHandle) {
    let (proxy, peer) = delayed_peer(server, ONE_WAY).await;
    write_events(writer, "cdc", &mixed_events(3)).await;
    let mut handle = StreamTailer::spawn(peer, TailStart::default(), options);
    collect_until(&mut handle, |events| record_count(events) >= 3).await;
    (proxy, handle)
}

#[tokio::test]
async fn across_a_slow_link_two_reads_wait_at_the_peer() {
    let server = RedisServer::start().unwrap();
    let admin = writer(&server.url()).await;
    let (_proxy, _handle) = caught_up_tailer(&server, &admin, options(true)).await;
    eventually_async("two blocked XREADs at the peer", || async {
        blocked_readers(&admin).await >= 2
    })
    .await;
}

#[tokio::test]
async fn without_pairing_one_read_waits_at_the_peer() {
    let server = RedisServer::start().unwrap();
    let admin = writer(&server.url()).await;
    let options = TailOptions {
        block_timeout: Duration::from_millis(100),
        ..options(false)
    };
    let (_proxy, _handle) = caught_up_tailer(&server, &admin, options).await;
    // Ten empty blocking reads (over a second): a pairing would have connected its second
    // lane (about seven round trips) and parked a read there by then.
    reads_go_on(&admin, 10).await;
    eventually_async("a blocked XREAD at the peer", || async {
        blocked_readers(&admin).await >= 1
    })
    .await;
    assert_eq!(blocked_readers(&admin).await, 1);
}

#[tokio::test]
async fn paired_reads_hand_on_a_steady_stream_once_and_in_order() {
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    let (_proxy, mut handle) = caught_up_tailer(&server, &client, options(true)).await;
    let events = mixed_events(1_500);
    let mut expected = Vec::new();
    // Small pipelines a few ms apart: entries keep arriving while both reads travel.
    for chunk in events.chunks(15) {
        expected.extend(write_events(&client, "cdc", chunk).await);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let got = collect_until(&mut handle, |events| {
        record_ids(events).last() == expected.last()
    })
    .await;
    assert!(
        got.iter().all(|e| matches!(e, TailEvent::Batch(_))),
        "no gap"
    );
    assert_eq!(
        record_ids(&got),
        expected,
        "each entry once, in stream order"
    );
    assert_eq!(
        handle.position().entries_added,
        Some(3 + expected.len() as u64),
        "the position counts what was handed on"
    );
}

#[tokio::test]
async fn a_trim_of_entries_already_handed_on_is_no_gap() {
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    let (_proxy, mut handle) = caught_up_tailer(&server, &client, options(true)).await;
    let mut expected = Vec::new();
    for round in 0..20 {
        let ids = write_events(&client, "cdc", &mixed_events(10)).await;
        let last = *ids.last().unwrap();
        expected.extend(ids);
        // Wait until it was handed on, then trim up to it: a reply still in flight on the
        // other lane was sent from before it, so its facts show entries after its cursor
        // gone, all of them already handed on.
        let got = collect_until(&mut handle, |events| {
            record_ids(events).last() == Some(&last)
        })
        .await;
        assert!(
            got.iter().all(|e| matches!(e, TailEvent::Batch(_))),
            "round {round}: no gap"
        );
        let _: Value = raw(
            &client,
            "XTRIM",
            vec!["cdc".into(), "MINID".into(), last.to_string().into()],
        )
        .await;
    }
    let tail = write_events(&client, "cdc", &mixed_events(5)).await;
    let got = collect_until(&mut handle, |events| {
        record_ids(events).last() == tail.last()
    })
    .await;
    assert!(
        got.iter().all(|e| matches!(e, TailEvent::Batch(_))),
        "no gap"
    );
    assert_eq!(record_ids(&got), tail);
}

#[tokio::test]
async fn a_trim_of_entries_not_yet_read_is_reported_with_its_count() {
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    let (_proxy, mut handle) = caught_up_tailer(&server, &client, options(true)).await;
    let admin = writer(&server.url()).await;
    eventually_async("two blocked XREADs at the peer", || async {
        blocked_readers(&admin).await >= 2
    })
    .await;
    // Appends and a trim in one transaction: the blocked reads are answered after it, so
    // four of the five entries are gone before either read sees them.
    let mut encoder = replication_core::CdcEncoder::new();
    let trx = client.multi();
    for event in mixed_events(5) {
        let mut args: Vec<Value> = vec!["cdc".into(), "*".into()];
        for (name, value) in encoder.encode(&event) {
            args.push(name.into());
            args.push(Value::Bytes(value.into()));
        }
        let _: () = trx
            .custom(
                fred::types::CustomCommand::new_static(
                    "XADD",
                    fred::types::ClusterHash::FirstKey,
                    false,
                ),
                args,
            )
            .await
            .unwrap();
    }
    let _: () = trx
        .custom(
            fred::types::CustomCommand::new_static(
                "XTRIM",
                fred::types::ClusterHash::FirstKey,
                false,
            ),
            vec![Value::from("cdc"), Value::from("MAXLEN"), Value::from("1")],
        )
        .await
        .unwrap();
    let _: Vec<Value> = trx.exec(true).await.unwrap();
    let got = collect_until(&mut handle, |events| {
        events.iter().any(|e| matches!(e, TailEvent::Gap(_))) && record_count(events) >= 1
    })
    .await;
    let gaps: Vec<_> = got
        .iter()
        .filter_map(|e| match e {
            TailEvent::Gap(gap) => Some(gap.kind),
            _ => None,
        })
        .collect();
    assert_eq!(gaps, vec![GapKind::Trimmed { lost: Some(4) }]);
    assert_eq!(record_count(&got), 1, "the survivor is handed on");
}

#[tokio::test]
async fn after_a_pairing_the_next_blocking_read_does_not_queue_behind_a_waiting_one() {
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    let proxy = FaultProxy::start_with(server.addr(), LinkMode::Delay(ONE_WAY))
        .await
        .unwrap();
    // A read's time bound is its block time plus this: a read queued behind another that
    // waits out its whole block time would overrun it.
    let mut settings = settings();
    settings.peer.command_timeout = Duration::from_millis(500);
    let peer = RedisPeer::new(&peer_config(&proxy.redis_url(), ""), &settings).unwrap();
    peer.wait_connected(DEADLINE).await.unwrap();
    write_events(&client, "cdc", &mixed_events(3)).await;
    let mut handle = StreamTailer::spawn(Arc::new(peer), TailStart::default(), options(true));
    collect_until(&mut handle, |events| record_count(events) >= 3).await;
    let admin = writer(&server.url()).await;
    eventually_async("two blocked XREADs at the peer", || async {
        blocked_readers(&admin).await >= 2
    })
    .await;
    // New options end the pairing with both reads waiting (2 s each) on an idle stream.
    handle.set_options(TailOptions {
        batch_size: 50,
        ..options(true)
    });
    let idle = tokio::time::timeout(Duration::from_secs(5), handle.recv()).await;
    match idle {
        Err(_) => {}
        Ok(event) => panic!("nothing to read, yet the tailer reported {event:?}"),
    }
    let more = write_events(&client, "cdc", &mixed_events(2)).await;
    let got = collect_until(&mut handle, |events| {
        record_ids(events).last() == more.last()
    })
    .await;
    assert_eq!(record_ids(&got), more);
}

#[tokio::test]
async fn an_idle_tailer_across_a_slow_link_pairs_its_reads_before_writes_come() {
    let server = RedisServer::start().unwrap();
    let admin = writer(&server.url()).await;
    let (_proxy, peer) = delayed_peer(&server, ONE_WAY).await;
    let options = TailOptions {
        block_timeout: Duration::from_millis(200),
        ..options(true)
    };
    // Nothing was ever written: the stream does not even exist.
    let _handle = StreamTailer::spawn(peer, TailStart::default(), options);
    eventually_async("two blocked XREADs at the peer", || async {
        blocked_readers(&admin).await >= 2
    })
    .await;
}

#[tokio::test]
async fn a_late_full_reply_of_entries_already_handed_on_does_not_end_the_pairing() {
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    let (_proxy, inner) = delayed_peer(&server, ONE_WAY).await;
    let mut observed = Observed::new(inner, Duration::ZERO);
    observed.second_lane_delay = Duration::from_millis(400);
    let peer = Arc::new(observed);
    write_events(&client, "cdc", &mixed_events(3)).await;
    let options = TailOptions {
        batch_size: 20,
        max_batch_size: 20,
        ..options(true)
    };
    let mut handle = StreamTailer::spawn(Arc::clone(&peer) as _, TailStart::default(), options);
    collect_until(&mut handle, |events| record_count(events) >= 3).await;
    let checked_before = peer.checked_reads.load(Ordering::SeqCst);
    // While the second lane's first read waits, the first lane alone hands on more than
    // one read size; the late read, sent from the old position, then comes back full of
    // what was handed on already.
    // Written while the test keeps taking batches: a tailer waiting for its consumer would
    // fall behind for that reason alone.
    let writes = tokio::spawn(async move {
        let mut ids = Vec::new();
        // Longer than the late read's delay and its connection's setup together.
        for _ in 0..50 {
            ids.extend(write_events(&client, "cdc", &mixed_events(3)).await);
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        ids
    });
    let got = collect_until(&mut handle, |events| record_count(events) >= 150).await;
    let expected = writes.await.unwrap();
    assert_eq!(record_ids(&got), expected);
    assert_eq!(
        peer.checked_reads.load(Ordering::SeqCst),
        checked_before,
        "no read came back full of anything new, so none was checked"
    );
}

#[tokio::test]
async fn a_peer_tailed_over_a_fast_link_opens_no_second_stream_connection() {
    let server = RedisServer::start().unwrap();
    let client = writer(&server.url()).await;
    let peer = connected_peer(&peer_config(&server.url(), "")).await;
    write_events(&client, "cdc", &mixed_events(3)).await;
    let options = TailOptions {
        block_timeout: Duration::from_millis(100),
        ..options(true)
    };
    let mut handle = StreamTailer::spawn(peer, TailStart::default(), options);
    collect_until(&mut handle, |events| record_count(events) >= 3).await;
    // Past blocking reads that came back empty, where a slow link would pair.
    reads_go_on(&client, 3).await;
    let list = raw(&client, "CLIENT", vec!["LIST".into()]).await;
    let clients = list.as_string().unwrap().lines().count();
    assert_eq!(
        clients, 3,
        "the test's writer, and the peer's query and stream connections"
    );
}
