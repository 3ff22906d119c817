//! Helpers shared by the integration tests: a peer over a test redis-server, a fred writer
//! that XADDs binary fields, and event collection with deadlines.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)] // Test helpers: a panic is the failure report.

pub mod observed;

use fred::prelude::*;
use fred::types::{ClusterHash, CustomCommand};
use replication_core::{
    CdcEncoder, CdcEvent, PeerConfig, PeerSettings, Settings, StreamId, SyncItem,
};
use replication_peer::{RedisPeer, TailEvent, TailerHandle};
use replication_testkit::{FaultProxy, LinkMode, RedisServer};
use std::sync::Arc;
use std::time::Duration;

pub const DEADLINE: Duration = Duration::from_secs(60);

pub fn settings() -> Settings {
    Settings {
        peer: PeerSettings {
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(5),
            reconnect_initial_delay: Duration::from_millis(50),
            reconnect_max_delay: Duration::from_millis(500),
            // Restart tests must not trip the breaker; breaker logic has its own unit tests.
            circuit_failure_threshold: 1_000_000,
            ..PeerSettings::default()
        },
        ..Settings::default()
    }
}

pub fn peer_config(url: &str, prefix: &str) -> PeerConfig {
    let mut config = PeerConfig::new("peer-b", url);
    config.redis_prefix = prefix.to_owned();
    config
}

pub async fn connected_peer(config: &PeerConfig) -> Arc<RedisPeer> {
    let peer = RedisPeer::new(config, &settings()).expect("valid peer config");
    peer.wait_connected(DEADLINE).await.expect("peer connects");
    Arc::new(peer)
}

/// A connected peer of `server` reached through a proxy holding every chunk `one_way` in
/// each direction (a round trip of twice that).
pub async fn delayed_peer(server: &RedisServer, one_way: Duration) -> (FaultProxy, Arc<RedisPeer>) {
    let proxy = FaultProxy::start_with(server.addr(), LinkMode::Delay(one_way))
        .await
        .unwrap();
    let peer = connected_peer(&peer_config(&proxy.redis_url(), "")).await;
    (proxy, peer)
}

/// A plain fred client used as the test's writer (independent of the code under test).
pub async fn writer(url: &str) -> Client {
    let client = Builder::from_config(Config::from_url(url).unwrap())
        .build()
        .unwrap();
    client.init().await.unwrap();
    client
}

fn cmd(name: &'static str) -> CustomCommand {
    CustomCommand::new_static(name, ClusterHash::FirstKey, false)
}

/// XADDs entries (field lists) in one pipeline, returns their ids.
pub async fn xadd_all(
    client: &Client,
    key: &str,
    entries: &[Vec<(&'static str, Vec<u8>)>],
) -> Vec<StreamId> {
    let pipeline = client.pipeline();
    for fields in entries {
        let mut args: Vec<Value> = vec![key.into(), "*".into()];
        for (name, value) in fields {
            args.push((*name).into());
            args.push(Value::Bytes(value.clone().into()));
        }
        let _: () = pipeline.custom(cmd("XADD"), args).await.unwrap();
    }
    let ids: Vec<Value> = pipeline.all().await.unwrap();
    ids.into_iter()
        .map(|v| v.as_str().unwrap().parse().unwrap())
        .collect()
}

pub async fn raw(client: &Client, name: &'static str, args: Vec<Value>) -> Value {
    client.custom(cmd(name), args).await.unwrap()
}

/// `n` mixed events: every third one a delete.
pub fn mixed_events(n: usize) -> Vec<CdcEvent> {
    (0..n)
        .map(|i| {
            let key = format!("uk.test.item-{}", i % 997);
            if i % 3 == 2 {
                CdcEvent::Delete { key, stamp: None }
            } else {
                let content = format!("content {i} ").repeat(1 + i % 20).into_bytes();
                CdcEvent::Put(SyncItem::new(
                    key,
                    content,
                    i as u64 + 1,
                    1_700_000_000_000 + i as i64,
                ))
            }
        })
        .collect()
}

pub async fn write_events(client: &Client, key: &str, events: &[CdcEvent]) -> Vec<StreamId> {
    let mut encoder = CdcEncoder::new();
    let mut ids = Vec::new();
    for chunk in events.chunks(500) {
        let entries: Vec<_> = chunk.iter().map(|e| encoder.encode(e)).collect();
        ids.extend(xadd_all(client, key, &entries).await);
    }
    ids
}

/// Receives events until `done` says so, with a deadline.
pub async fn collect_until(
    handle: &mut TailerHandle,
    mut done: impl FnMut(&[TailEvent]) -> bool,
) -> Vec<TailEvent> {
    let mut events = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        while !done(&events) {
            let event = handle.recv().await.expect("tailer runs");
            if !matches!(event, TailEvent::Error(_)) {
                events.push(event);
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("deadline passed; got {} events", events.len()));
    events
}

/// Records across batches.
pub fn record_count(events: &[TailEvent]) -> usize {
    events
        .iter()
        .map(|e| {
            if let TailEvent::Batch(b) = e {
                b.records.len()
            } else {
                0
            }
        })
        .sum()
}

pub fn record_ids(events: &[TailEvent]) -> Vec<StreamId> {
    events
        .iter()
        .flat_map(|e| match e {
            TailEvent::Batch(b) => b.records.iter().map(|(id, _)| *id).collect(),
            _ => Vec::new(),
        })
        .collect()
}
