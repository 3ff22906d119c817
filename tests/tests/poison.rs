//! Poisoned CDC entries (bad zstd, zstd bomb, hash mismatch, missing fields, binary junk,
//! bad meta, invalid key, a 10 MB payload over the cap) interleaved with good writes in a
//! peer's stream: the good ones are applied, the bad ones counted and never applied, and
//! the hot path neither crashes nor stalls. The cold path is off, so only the hot path can
//! have delivered the good writes.
//!
//! This binary installs a global metrics recorder, so it holds this one test only.

#![allow(clippy::unwrap_used)]

use metrics_util::debugging::DebuggingRecorder;
use rand::RngCore;
use replication_core::content_hash_hex;
use replication_testkit::resp::{self, Reply};
use replication_testkit::{within, Recorded};
use replication_tests::workload::{self, join_all};
use replication_tests::{Mesh, MeshOptions, Model, Scenario, Workload};
use std::net::SocketAddr;
use std::time::Duration;

const CAP: usize = 1024 * 1024;

/// Raw field/value pairs of one stream entry.
type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// One poisoned entry: a label and its raw field/value pairs.
fn poisons(round: u64, rng: &mut rand::rngs::StdRng) -> Vec<(&'static str, Fields)> {
    let key = |what: &str| format!("poison.r{round}.{what}").into_bytes();
    let meta = br#"{"content_type":"binary","version":1,"updated_at":1700000000000}"#.to_vec();
    let put = |k: Vec<u8>, hash: String, data: Vec<u8>, meta: Vec<u8>| {
        vec![
            (b"op".to_vec(), b"PUT".to_vec()),
            (b"key".to_vec(), k),
            (b"hash".to_vec(), hash.into_bytes()),
            (b"data".to_vec(), data),
            (b"meta".to_vec(), meta),
        ]
    };
    let mut bad_zstd = replication_core::cdc::ZSTD_MAGIC.to_vec();
    bad_zstd.extend_from_slice(b"\x00\x01 not a zstd frame at all");
    let bomb_content = vec![0u8; 8 * CAP];
    let bomb = zstd::encode_all(&bomb_content[..], 19).unwrap();
    let mut junk = vec![0u8; 300];
    rng.fill_bytes(&mut junk);
    let mut big = vec![0u8; 10 * 1024 * 1024];
    rng.fill_bytes(&mut big);
    vec![
        (
            "bad zstd",
            put(
                key("zstd"),
                content_hash_hex(b"something else"),
                bad_zstd,
                meta.clone(),
            ),
        ),
        (
            "zstd bomb",
            put(
                key("bomb"),
                content_hash_hex(&bomb_content),
                bomb,
                meta.clone(),
            ),
        ),
        (
            "hash mismatch",
            put(
                key("hash"),
                content_hash_hex(b"other"),
                b"hello".to_vec(),
                meta.clone(),
            ),
        ),
        (
            "missing fields",
            vec![
                (b"op".to_vec(), b"PUT".to_vec()),
                (b"key".to_vec(), key("missing")),
            ],
        ),
        (
            "binary junk",
            vec![(junk[..40].to_vec(), junk[40..].to_vec())],
        ),
        (
            "junk op",
            vec![
                (b"op".to_vec(), junk[..20].to_vec()),
                (b"key".to_vec(), key("op")),
            ],
        ),
        (
            "bad meta",
            put(
                key("meta"),
                content_hash_hex(b"x"),
                b"x".to_vec(),
                b"{not json".to_vec(),
            ),
        ),
        (
            "invalid key",
            put(
                b"a..b".to_vec(),
                content_hash_hex(b"x"),
                b"x".to_vec(),
                meta.clone(),
            ),
        ),
        (
            "over the cap",
            put(key("big"), content_hash_hex(&big), big, meta),
        ),
    ]
}

fn xadd(addr: SocketAddr, stream: &str, fields: &[(Vec<u8>, Vec<u8>)]) {
    let mut args: Vec<&[u8]> = vec![b"XADD", stream.as_bytes(), b"*"];
    for (f, v) in fields {
        args.push(f);
        args.push(v);
    }
    let reply = resp::command(addr, &args).unwrap();
    assert!(
        matches!(reply, Reply::Bulk(Some(_))),
        "XADD replied {reply:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poisoned_entries_are_counted_and_skipped_while_good_ones_apply() {
    let recorder = DebuggingRecorder::new();
    let recorded = Recorded::new(recorder.snapshotter());
    recorder.install().unwrap();

    let s = Scenario::new("poison");
    let mut options = MeshOptions::new(2);
    options.cold_path = false;
    options.max_content_bytes = CAP;
    let mut mesh = Mesh::start(&s, options).await;
    let model = Model::new();
    let w = Workload::new("", 8, 15 * usize::try_from(s.scale).unwrap());
    let stream = replication_core::WireKeys::new(&mesh.nodes[1].prefix).cdc();
    let addr = mesh.nodes[1].redis.addr();
    let mut rng = s.rng(99);
    let mut poisoned = 0u64;
    let mut poison_keys = Vec::new();
    for round in 0..3 * s.scale {
        let handles = w.spawn(vec![mesh.nodes[1].local()], &model, vec![s.rng(round)]);
        for (what, fields) in poisons(round, &mut rng) {
            xadd(addr, &stream, &fields);
            poisoned += 1;
            if let Some((_, k)) = fields.iter().find(|(f, _)| f == b"key") {
                poison_keys.push((what, String::from_utf8_lossy(k).into_owned()));
            }
        }
        join_all(handles, &s.context("good writes")).await;
    }
    // A last good write after every poison: the tailer must get past all of them.
    workload::put(
        &mesh.nodes[1].local(),
        &model,
        "after.poison",
        b"still flowing".to_vec(),
    )
    .await
    .unwrap();
    mesh.assert_converged(&model, Duration::from_secs(60)).await;
    for (what, key) in &poison_keys {
        let held = mesh.nodes[0].observe(key).await.unwrap();
        assert_eq!(
            held,
            replication_tests::Observed::Absent,
            "{}",
            s.context(&format!("{what} entry {key} was applied"))
        );
    }
    let peer = mesh.nodes[1].id.clone();
    let counted = || recorded.counter("replication_events_rejected_total", &[("peer", &peer)]);
    let all_counted = within(Duration::from_secs(30), || {
        let done = counted() >= poisoned;
        async move { done }
    })
    .await;
    assert!(
        all_counted,
        "{}",
        s.context(&format!(
            "{} of {poisoned} poisoned entries counted as rejected",
            counted()
        ))
    );
    let health = mesh.nodes[0].engine().unwrap().health_check().await;
    assert!(
        health.ready,
        "{}",
        s.context(&format!("the engine must stay ready: {health:?}"))
    );
    mesh.shutdown().await;
}
