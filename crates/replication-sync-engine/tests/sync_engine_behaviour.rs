//! What sync-engine 0.2.19 does with what the adapter hands it, on a real instance
//! (vanilla redis-server and a SQLite file), and what the adapter makes hold on top of it.
//! docs/PROTOCOL.md, "sync-engine as the local store", states each finding and names the
//! test here that shows it.

mod support;

use replication_core::merkle::{leaf_hash, MerkleTree};
use replication_core::{
    content_hash, decode_item_json, Change, LocalState, SyncEngineRef, SyncItem, Tombstone,
};
use replication_sync_engine::sync_engine::{SubmitOptions, SyncItem as EngineItem};
use support::SyncNode;

fn item(key: &str, content: &[u8], version: u64, updated_at: i64) -> SyncItem {
    SyncItem::new(key, content.to_vec(), version, updated_at)
}

/// The root our hashing rules give for these items (leaf-only ids).
fn expected_root(items: &[&SyncItem]) -> Option<[u8; 32]> {
    let mut tree = MerkleTree::new();
    for item in items {
        tree.insert(
            &item.key,
            leaf_hash(&item.key, item.version, &content_hash(&item.content)),
        );
    }
    tree.root()
}

fn field<'a>(fields: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|(f, _)| f == name)
        .map(|(_, v)| v.as_slice())
}

#[tokio::test]
async fn submit_keeps_our_version_and_time_in_every_tier_and_in_its_cdc_entry() {
    let node = SyncNode::start("se:").await;
    let put = item("a.b", b"first", 7, 1_234);
    node.store
        .apply_batch(vec![Change::Put(put.clone())])
        .await
        .unwrap();

    let held = node.store.engine().get("a.b").await.unwrap().unwrap();
    assert_eq!((held.version, held.updated_at), (7, 1_234));
    // Its Redis copy is the item string our readers parse.
    let raw = node.redis_item("a.b").await.expect("the item is in Redis");
    let parsed = decode_item_json("a.b", &raw).unwrap();
    assert_eq!(parsed, put);
    // SQL keeps them too: a restarted sync-engine serves them from SQL and Redis.
    let mut node = node;
    node.restart().await;
    let states = node.store.local_states(&["a.b".into()]).await.unwrap();
    assert_eq!(states, vec![Some(LocalState::Present(put.stamp()))]);
    assert_eq!(
        node.store.get_merkle_root().await.unwrap(),
        expected_root(&[&put])
    );
    let entries = node.cdc_entries().await;
    let meta = field(&entries[0].1, "meta").expect("a PUT entry has meta");
    let meta: serde_json::Value = serde_json::from_slice(meta).unwrap();
    assert_eq!(
        (meta["version"].as_u64(), meta["updated_at"].as_i64()),
        (Some(7), Some(1_234))
    );
}

#[tokio::test]
async fn a_replicated_submit_is_echoed_to_its_cdc_stream() {
    let node = SyncNode::start("se:").await;
    node.store
        .apply_batch(vec![
            Change::Put(item("x", b"one", 1, 10)),
            Change::Put(item("y", b"two", 3, 20)),
        ])
        .await
        .unwrap();
    let entries = node.cdc_entries().await;
    let ops: Vec<(&[u8], &[u8])> = entries
        .iter()
        .map(|(_, f)| (field(f, "op").unwrap(), field(f, "key").unwrap()))
        .collect();
    // Every replicated put comes back out as a PUT: sync-engine has no submit that reaches
    // Redis without appending to the stream.
    assert_eq!(ops.len(), 2, "{ops:?}");
    assert!(ops.iter().all(|(op, _)| *op == b"PUT"));
    // Applying the same changes again writes nothing and echoes nothing.
    node.store
        .apply_batch(vec![Change::Put(item("x", b"one", 1, 10))])
        .await
        .unwrap();
    assert_eq!(node.cdc_len().await, 2);
}

#[tokio::test]
async fn the_only_submit_without_a_cdc_entry_also_skips_redis_where_peers_read_items() {
    let node = SyncNode::start("se:").await;
    let mut durable = EngineItem::new("d".into(), b"bytes".to_vec());
    durable.version = 2;
    node.store
        .engine()
        .submit_with(durable, SubmitOptions::durable())
        .await
        .unwrap();
    node.store.engine().force_flush().await;
    assert_eq!(node.cdc_len().await, 0);
    assert_eq!(node.redis_item("d").await, None);
}

#[tokio::test]
async fn replicated_deletes_append_nothing_and_the_adapter_keeps_their_tombstones() {
    let node = SyncNode::start("se:").await;
    let put = node.store.put("k", b"v".to_vec()).await.unwrap();
    assert_eq!(node.cdc_len().await, 1);
    let tombstone = Tombstone {
        version: put.version + 1,
        deleted_at: put.updated_at + 1,
    };
    node.store
        .apply_batch(vec![Change::Delete {
            key: "k".into(),
            tombstone: tombstone.clone(),
        }])
        .await
        .unwrap();
    assert_eq!(node.cdc_len().await, 1, "a replicated delete is not echoed");
    assert_eq!(node.redis_item("k").await, None);
    assert_eq!(
        node.store
            .engine()
            .get("k")
            .await
            .unwrap()
            .map(|i| i.version),
        None
    );
    assert_eq!(node.store.get_merkle_root().await.unwrap(), None);
    assert_eq!(
        node.store.local_states(&["k".into()]).await.unwrap(),
        vec![Some(LocalState::Deleted(tombstone.clone()))]
    );
    // The tombstone holds the order: an older put stays out, a newer one replaces it.
    node.store
        .apply_batch(vec![Change::Put(item(
            "k",
            b"old",
            put.version,
            put.updated_at,
        ))])
        .await
        .unwrap();
    assert_eq!(node.store.get("k").await.unwrap(), None);
    let newer = item("k", b"new", tombstone.version + 1, 1);
    node.store
        .apply_batch(vec![Change::Put(newer.clone())])
        .await
        .unwrap();
    assert_eq!(
        node.store.local_states(&["k".into()]).await.unwrap(),
        vec![Some(LocalState::Present(newer.stamp()))]
    );
    assert_eq!(
        node.store.get_tombstones(&["k".into()]).await.unwrap(),
        vec![None]
    );
}

#[tokio::test]
async fn sync_engines_own_delete_leaves_only_a_bare_del_entry() {
    let node = SyncNode::start("se:").await;
    node.store.put("gone", b"v".to_vec()).await.unwrap();
    node.store.engine().delete("gone").await.unwrap();
    let entries = node.cdc_entries().await;
    let last = &entries.last().unwrap().1;
    assert_eq!(field(last, "op"), Some(&b"DEL"[..]));
    // No version, no time: readers fall back on the bare-delete stamp.
    let names: Vec<&str> = last.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(names, vec!["op", "key"]);
    assert_eq!(
        node.store.local_states(&["gone".into()]).await.unwrap(),
        vec![Some(LocalState::Absent)]
    );
}

#[tokio::test]
async fn a_local_delete_through_the_adapter_leaves_a_tombstone_before_its_del_entry() {
    let node = SyncNode::start("se:").await;
    let put = node.store.put("t", b"v".to_vec()).await.unwrap();
    assert!(node.store.delete("t".into()).await.unwrap());
    let entries = node.cdc_entries().await;
    assert_eq!(field(&entries.last().unwrap().1, "op"), Some(&b"DEL"[..]));
    let tombstone = node.store.get_tombstones(&["t".into()]).await.unwrap()[0]
        .clone()
        .expect("a tombstone");
    assert_eq!(tombstone.version, put.version + 1);
    assert!(tombstone.stamp().beats(&put.stamp()));
    // The next local write goes above the tombstone.
    let again = node.store.put("t", b"v".to_vec()).await.unwrap();
    assert_eq!(again.version, tombstone.version + 1);
    assert!(!node.store.delete("never".into()).await.unwrap());
}

#[tokio::test]
async fn a_new_version_of_unchanged_content_reaches_the_merkle_leaf() {
    let node = SyncNode::start("se:").await;
    let v1 = item("same", b"content", 1, 100);
    node.store
        .apply_batch(vec![Change::Put(v1.clone())])
        .await
        .unwrap();
    assert_eq!(
        node.store.get_merkle_root().await.unwrap(),
        expected_root(&[&v1])
    );

    // Straight into sync-engine, the bump is stored but its Merkle leaf keeps version 1.
    let mut raw = EngineItem::new("same".into(), b"content".to_vec());
    raw.version = 2;
    raw.updated_at = 200;
    node.store.engine().submit(raw).await.unwrap();
    node.store.engine().force_flush().await;
    assert_eq!(
        node.store
            .engine()
            .get("same")
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
    assert_eq!(
        node.store.get_merkle_root().await.unwrap(),
        expected_root(&[&v1]),
        "sync-engine recomputes a leaf only when the content hash changes"
    );

    // Through the adapter, the leaf follows the version.
    let v3 = item("same", b"content", 3, 300);
    node.store
        .apply_batch(vec![Change::Put(v3.clone())])
        .await
        .unwrap();
    assert_eq!(
        node.store.get_merkle_root().await.unwrap(),
        expected_root(&[&v3])
    );
    assert_eq!(
        node.store.local_states(&["same".into()]).await.unwrap(),
        vec![Some(LocalState::Present(v3.stamp()))]
    );
    let local = node.store.put("same", b"content".to_vec()).await.unwrap();
    assert_eq!(local.version, 4);
    assert_eq!(
        node.store.get_merkle_root().await.unwrap(),
        expected_root(&[&local])
    );
}

#[tokio::test]
async fn an_older_put_never_replaces_a_newer_item() {
    let node = SyncNode::start("se:").await;
    let newer = item("k", b"newer", 5, 50);
    node.store
        .apply_batch(vec![Change::Put(newer.clone())])
        .await
        .unwrap();
    node.store
        .apply_batch(vec![
            Change::Put(item("k", b"older", 4, 99)),
            Change::Delete {
                key: "k".into(),
                tombstone: Tombstone {
                    version: 5,
                    deleted_at: 49,
                },
            },
        ])
        .await
        .unwrap();
    assert_eq!(
        node.store.local_states(&["k".into()]).await.unwrap(),
        vec![Some(LocalState::Present(newer.stamp()))]
    );
    assert_eq!(node.store.get("k").await.unwrap(), Some(b"newer".to_vec()));
}

#[tokio::test]
async fn merkle_reads_follow_our_hashing_rules_and_batched_children_match_single_ones() {
    let node = SyncNode::start("se:").await;
    let items = [
        item("uk.a.1", b"one", 1, 1),
        item("uk.a.2", b"two", 2, 2),
        item("uk.b", b"three", 3, 3),
        item("us", b"four", 1, 4),
    ];
    node.store
        .apply_batch(items.iter().cloned().map(Change::Put).collect())
        .await
        .unwrap();
    let refs: Vec<&SyncItem> = items.iter().collect();
    assert_eq!(
        node.store.get_merkle_root().await.unwrap(),
        expected_root(&refs)
    );
    let mut tree = MerkleTree::new();
    for i in &items {
        tree.insert(
            &i.key,
            leaf_hash(&i.key, i.version, &content_hash(&i.content)),
        );
    }
    let paths: Vec<String> = ["", "uk", "uk.a", "uk.a.1", "nowhere"]
        .iter()
        .map(|p| (*p).to_owned())
        .collect();
    let many = node.store.get_merkle_children_many(&paths).await.unwrap();
    for (path, children) in paths.iter().zip(&many) {
        assert_eq!(children, &tree.children(path), "children of {path:?}");
        assert_eq!(
            children,
            &node.store.get_merkle_children(path).await.unwrap(),
            "batched and single reads of {path:?}"
        );
    }
}

#[tokio::test]
async fn backpressure_and_lifecycle_gate_replicated_writes() {
    let mut node = SyncNode::start_with("se:", |c| c.l1_max_bytes = 4_096).await;
    assert!(node.store.should_accept_writes());
    // Past 90% of its memory tier, sync-engine is at `Critical`: replicated writes wait.
    node.store
        .apply_batch(vec![Change::Put(item("big", &[7u8; 4_000], 1, 1))])
        .await
        .unwrap();
    assert!(node.store.engine().memory_pressure() > 0.9);
    assert!(!node.store.should_accept_writes());
    node.stop().await;
    assert!(
        !node.store.should_accept_writes(),
        "a shut-down engine takes no writes"
    );
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_millis() as i64
}

#[tokio::test]
async fn tombstones_are_collected_by_when_they_were_recorded_and_raise_the_version_floor() {
    let node = SyncNode::start("se:").await;
    // Deleted long ago by their writers' clocks: collection goes by when this node recorded
    // them, not by `deleted_at`.
    let delete = |key: &str, version| Change::Delete {
        key: key.into(),
        tombstone: Tombstone {
            version,
            deleted_at: 1,
        },
    };
    node.store
        .apply_batch(vec![delete("old", 7)])
        .await
        .unwrap();
    let between = now_ms();
    while now_ms() <= between {
        tokio::task::yield_now().await;
    }
    node.store
        .apply_batch(vec![delete("young", 2)])
        .await
        .unwrap();
    assert_eq!(node.store.purge_tombstones(0).await.unwrap(), 0);
    assert_eq!(node.store.purge_tombstones(between + 1).await.unwrap(), 1);
    assert_eq!(
        node.store
            .get_tombstones(&["old".into(), "young".into()])
            .await
            .unwrap(),
        vec![
            None,
            Some(Tombstone {
                version: 2,
                deleted_at: 1
            })
        ]
    );
    // Written again after its tombstone is gone, the key still goes above that tombstone,
    // which another node may keep; so does every other key (the floor is per node).
    assert_eq!(
        node.store
            .put("old", b"again".to_vec())
            .await
            .unwrap()
            .version,
        8
    );
    assert_eq!(
        node.store
            .put("other", b"new".to_vec())
            .await
            .unwrap()
            .version,
        8
    );
    // A restart keeps the floor (it lives in sync-engine's Redis).
    let mut node = node;
    node.restart().await;
    assert_eq!(
        node.store
            .put("third", b"x".to_vec())
            .await
            .unwrap()
            .version,
        8
    );
}

#[tokio::test]
async fn a_json_item_needs_redisjson_which_vanilla_redis_lacks() {
    let node = SyncNode::start("se:").await;
    let json =
        item("doc", br#"{"a":1}"#, 1, 1).with_content_type(replication_core::ContentType::Json);
    node.store
        .apply_batch(vec![Change::Put(json.clone())])
        .await
        .unwrap();
    // The flush's JSON.SET fails on a server without the module: nothing in Redis, no CDC
    // entry, and the adapter is not told (sync-engine logs it). SQL has the item.
    assert_eq!(node.redis_item("doc").await, None);
    assert_eq!(node.cdc_len().await, 0);
    let mut node = node;
    node.restart().await;
    let held = node
        .store
        .engine()
        .get("doc")
        .await
        .unwrap()
        .expect("SQL keeps it");
    assert_eq!(held.version, 1);
    assert_eq!(held.content, br#"{"a":1}"#);
}
