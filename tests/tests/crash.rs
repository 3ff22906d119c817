//! SIGKILL of a real `replicationd` process, repeatedly, while its peers keep writing: after
//! every kill the cursors it checkpointed are never ahead of the data it applied, and after
//! the last restart every write is present. The cold path is off, so the hot path (cursor
//! and replay) alone must account for every event.

#![allow(clippy::unwrap_used)]

use rand::Rng;
use replication_core::cdc::{CdcDecoder, CdcEvent, DecodeLimits};
use replication_core::{CursorStore, Stamp, StreamId};
use replication_cursor::{SqliteCursorStore, SqliteOptions};
use replication_node::{NodeStore, NodeStoreConfig};
use replication_testkit::resp::xrange_all;
use replication_testkit::{free_port, wait_ready, within, Daemon, RedisServer};
use replication_tests::mesh::{check_store, observe};
use replication_tests::workload::join_all;
use replication_tests::{Model, Observed, Scenario, Workload};
use std::path::Path;
use std::time::Duration;

struct Peer {
    id: String,
    prefix: String,
    redis: RedisServer,
    store: NodeStore,
}

async fn peer(id: &str, prefix: &str) -> Peer {
    let redis = RedisServer::start().unwrap();
    let store = NodeStore::connect(NodeStoreConfig::new(redis.url()).with_prefix(prefix))
        .await
        .unwrap();
    Peer {
        id: id.into(),
        prefix: prefix.into(),
        redis,
        store,
    }
}

fn config(dir: &Path, victim: &RedisServer, peers: &[&Peer], http: u16) -> std::path::PathBuf {
    let mut text = String::from("local_node_id = \"crash-v\"\n");
    for p in peers {
        text += &format!(
            "[[peers]]\nnode_id = \"{}\"\nredis_url = \"{}\"\nredis_prefix = \"{}\"\n",
            p.id,
            p.redis.url(),
            p.prefix
        );
    }
    text += &format!(
        "[settings]\nshutdown_timeout = \"2s\"\n\
         [settings.hot_path]\nblock_timeout = \"100ms\"\nbatch_size = 20\n\
         [settings.cold_path]\nenabled = false\n\
         [settings.peer]\nreconnect_initial_delay = \"50ms\"\nreconnect_max_delay = \"500ms\"\n\
         [cursor]\nsqlite_path = \"{}\"\nflush_interval = \"50ms\"\n\
         [node]\nredis_url = \"{}\"\nredis_prefix = \"v:\"\n\
         [http]\nlisten = \"127.0.0.1:{http}\"\n",
        dir.join("cursors.db").display(),
        victim.url()
    );
    let path = dir.join("victim.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Every entry of each peer's stream up to the checkpointed cursor must be reflected in the
/// victim's store (held with an equal or newer stamp).
async fn cursors_not_ahead(s: &Scenario, dir: &Path, peers: &[&Peer], victim: &NodeStore) -> usize {
    let cursors = SqliteCursorStore::open(dir.join("cursors.db"), SqliteOptions::default())
        .await
        .unwrap();
    let loaded = cursors.load_all().await.unwrap();
    cursors.close().await.unwrap();
    let mut checked = 0;
    let mut decoder = CdcDecoder::new(DecodeLimits::default());
    for cursor in loaded {
        let p = peers.iter().find(|p| p.id == cursor.peer_id).unwrap();
        for (id, fields) in xrange_all(
            p.redis.addr(),
            &replication_core::WireKeys::new(&p.prefix).cdc(),
        )
        .unwrap()
        {
            let id: StreamId = id.parse().unwrap();
            if id > cursor.stream_id {
                break;
            }
            let held = observe(victim, &event_key(&mut decoder, id, &fields))
                .await
                .unwrap();
            // PUT entries carry their full stamp. A DEL's stamp lives in the writer's
            // tombstone hash, which a later write of the key replaces, so DELs are left to
            // the final convergence check.
            let needed: Option<Stamp> = match decoder.decode(id, fields.clone()).unwrap() {
                CdcEvent::Put(item) => Some(item.stamp()),
                CdcEvent::Delete { .. } => None,
            };
            if let Some(needed) = needed {
                let ok = match &held {
                    Observed::Item(st) | Observed::Tombstone(st) => *st >= needed,
                    Observed::Absent => needed.is_delete(),
                };
                assert!(
                    ok,
                    "{}",
                    s.context(&format!(
                        "cursor {} of {} is ahead of applied data: entry {id} needs {needed:?}, victim holds {held}",
                        cursor.stream_id, p.id
                    ))
                );
                checked += 1;
            }
        }
    }
    checked
}

fn event_key(decoder: &mut CdcDecoder, id: StreamId, fields: &[(Vec<u8>, Vec<u8>)]) -> String {
    decoder
        .decode(id, fields.to_vec())
        .unwrap()
        .key()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_daemon_loses_no_event_and_never_checkpoints_ahead() {
    let s = Scenario::new("crash");
    let (b, c) = (peer("crash-b", "b:").await, peer("crash-c", "c:").await);
    let victim_redis = RedisServer::start().unwrap();
    let victim = NodeStore::connect(NodeStoreConfig::new(victim_redis.url()).with_prefix("v:"))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let http = free_port().unwrap();
    let config = config(dir.path(), &victim_redis, &[&b, &c], http);
    let mut daemon = Daemon::start(&config).unwrap();
    assert!(
        wait_ready(http, Duration::from_secs(60)).await,
        "{}",
        s.context(&daemon.log_tail(2000))
    );

    let model = Model::new();
    let mut w = Workload::new("", 16, 500 * usize::try_from(s.scale).unwrap());
    w.max_pause = Duration::from_millis(6);
    let writers = w.spawn(
        vec![b.store.clone(), c.store.clone()],
        &model,
        vec![s.rng(1), s.rng(2)],
    );
    let mut rng = s.rng(3);
    let mut checked = 0;
    for kill in 0..4 * s.scale {
        // The kill lands at a random moment of the write stream: that is the fault.
        tokio::time::sleep(Duration::from_millis(rng.random_range(150..700))).await;
        daemon.kill();
        checked += cursors_not_ahead(&s, dir.path(), &[&b, &c], &victim).await;
        daemon = Daemon::start(&config).unwrap();
        let ready = wait_ready(http, Duration::from_secs(60)).await;
        assert!(
            ready,
            "{}",
            s.context(&format!(
                "restart {kill} not ready: {}",
                daemon.log_tail(2000)
            ))
        );
    }
    join_all(writers, &s.context("peer writes")).await;
    let expected = model.expected();
    let mut last = Ok(());
    let done = within(Duration::from_secs(60), || {
        let (victim, expected) = (&victim, &expected);
        async move { check_store("crash-v", victim, expected).await.is_ok() }
    })
    .await;
    if !done {
        last = check_store("crash-v", &victim, &expected).await;
    }
    assert!(
        done,
        "{}",
        s.context(&format!(
            "events lost after SIGKILLs: {last:?}; log: {}",
            daemon.log_tail(2000)
        ))
    );
    println!("{checked} checkpointed entries verified against applied data");
    assert!(
        checked > 0,
        "{}",
        s.context("no cursor was ever checkpointed before a kill")
    );
}
