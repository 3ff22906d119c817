//! Shared helpers of the node store's integration tests: a store on a private redis-server,
//! raw probes that do not go through the store, and a full check of the stored tree.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use bytes::Bytes;
use fred::prelude::{
    Builder, Client, ClientLike, Config, KeysInterface, SortedSetsInterface, Value,
};
use replication_core::merkle::{
    child_path, decode_member, interior_hash, leaf_hash, Hash, MerkleTree, SELF_SEGMENT,
};
use replication_core::{
    decode_item_json, parse_hash_hex, CdcDecoder, CdcEvent, DecodeLimits, StreamId, SyncItem,
};
use replication_node::{NodeStore, NodeStoreConfig};
use replication_testkit::RedisServer;
use std::collections::{BTreeMap, HashSet};

pub fn server() -> RedisServer {
    RedisServer::start().expect("redis-server for the test")
}

pub async fn store(server: &RedisServer, prefix: &str) -> NodeStore {
    NodeStore::connect(NodeStoreConfig::new(server.url()).with_prefix(prefix))
        .await
        .expect("store connects")
}

/// A plain client for probing what the store wrote.
pub async fn probe(server: &RedisServer) -> Client {
    let client = Builder::from_config(Config::from_url(&server.url()).unwrap())
        .build()
        .unwrap();
    client.init().await.unwrap();
    client
}

fn bytes(value: Value) -> Bytes {
    match value {
        Value::Bytes(b) => b,
        Value::String(s) => s.into_inner(),
        other => panic!("expected a string reply, got {other:?}"),
    }
}

fn array(value: Value) -> Vec<Value> {
    match value {
        Value::Array(v) => v,
        Value::Null => Vec::new(),
        other => panic!("expected an array reply, got {other:?}"),
    }
}

/// Every CDC entry as (id, ordered fields).
pub async fn cdc_entries(client: &Client, prefix: &str) -> Vec<(StreamId, Vec<(String, Bytes)>)> {
    let reply: Value = client
        .custom(
            fred::cmd!("XRANGE"),
            vec![
                replication_core::WireKeys::new(prefix).cdc(),
                "-".into(),
                "+".into(),
            ],
        )
        .await
        .unwrap();
    array(reply)
        .into_iter()
        .map(|entry| {
            let mut parts = array(entry).into_iter();
            let id = StreamId::from_bytes(&bytes(parts.next().unwrap())).unwrap();
            let mut fields = Vec::new();
            let mut flat = array(parts.next().unwrap()).into_iter();
            while let (Some(f), Some(v)) = (flat.next(), flat.next()) {
                fields.push((String::from_utf8(bytes(f).to_vec()).unwrap(), bytes(v)));
            }
            (id, fields)
        })
        .collect()
}

/// Every CDC entry decoded.
pub async fn cdc_events(client: &Client, prefix: &str) -> Vec<CdcEvent> {
    let mut decoder = CdcDecoder::new(DecodeLimits::default());
    cdc_entries(client, prefix)
        .await
        .into_iter()
        .map(|(id, fields)| {
            decoder
                .decode(id, fields.iter().map(|(f, v)| (f.as_bytes(), v.as_ref())))
                .unwrap()
        })
        .collect()
}

pub async fn keys(client: &Client, prefix: &str) -> Vec<String> {
    client
        .custom::<Vec<String>, _>(fred::cmd!("KEYS"), vec![format!("{prefix}*")])
        .await
        .unwrap()
}

fn is_store_key(rest: &str) -> bool {
    replication_core::wire_keys::reserved_by(rest).is_some()
}

/// The items stored under `prefix`, read raw.
pub async fn stored_items(client: &Client, prefix: &str) -> Vec<SyncItem> {
    let mut items = Vec::new();
    for key in keys(client, prefix).await {
        let id = &key[prefix.len()..];
        if is_store_key(id) {
            continue;
        }
        let raw: Bytes = client.get(&key).await.unwrap();
        items.push(decode_item_json(id, &raw).unwrap());
    }
    items
}

async fn members(client: &Client, prefix: &str, path: &str) -> BTreeMap<String, Hash> {
    let raw: Vec<Bytes> = client
        .zrange(
            replication_core::WireKeys::new(prefix).merkle_children(path),
            0,
            -1,
            None,
            false,
            None,
            false,
        )
        .await
        .unwrap();
    raw.iter().map(|m| decode_member(m).unwrap()).collect()
}

async fn hash_key(client: &Client, prefix: &str, path: &str) -> Option<Hash> {
    let raw: Option<String> = client
        .get(replication_core::WireKeys::new(prefix).merkle_hash(path))
        .await
        .unwrap();
    raw.map(|h| parse_hash_hex(&h).unwrap())
}

/// Checks the whole stored tree against the reference built from the stored items: every
/// children set, every hash key (recomputed from its children while walking down from the
/// root), and that no hash or children key names a node that does not exist. Returns the
/// reference tree.
pub async fn check_tree(client: &Client, prefix: &str) -> MerkleTree {
    // Commits stage item bodies under store:staging: and always rename or drop them.
    let staged: Vec<String> = keys(client, prefix)
        .await
        .into_iter()
        .filter(|key| key[prefix.len()..].starts_with("store:staging:"))
        .collect();
    assert!(staged.is_empty(), "staging keys left behind: {staged:?}");
    let mut tree = MerkleTree::new();
    for item in stored_items(client, prefix).await {
        let content = parse_hash_hex(&item.content_hash).unwrap();
        tree.insert(&item.key, leaf_hash(&item.key, item.version, &content));
    }
    assert_eq!(
        hash_key(client, prefix, "").await,
        tree.root(),
        "root hash key"
    );

    // Walk down from the root through the children sets only.
    let mut visited = HashSet::new();
    let mut stack = vec![String::new()];
    while let Some(path) = stack.pop() {
        let set = members(client, prefix, &path).await;
        let stored_hash = hash_key(client, prefix, &path).await;
        if set.is_empty() {
            assert_eq!(stored_hash, tree.leaf(&path), "leaf {path:?}");
        } else {
            let recomputed = interior_hash(set.iter().map(|(s, h)| (s.as_str(), h)));
            assert_eq!(
                stored_hash,
                Some(recomputed),
                "hash of {path:?} recomputed from its children"
            );
            let expected: BTreeMap<String, Hash> = tree.children(&path).into_iter().collect();
            assert_eq!(set, expected, "children of {path:?}");
            for (segment, child_hash) in &set {
                if segment == SELF_SEGMENT {
                    assert_eq!(
                        Some(*child_hash),
                        tree.leaf(&path),
                        "self member of {path:?}"
                    );
                    continue;
                }
                let child = child_path(&path, segment);
                assert_eq!(
                    tree.node_hash(&child),
                    Some(*child_hash),
                    "member {segment:?} of {path:?}"
                );
                stack.push(child);
            }
        }
        visited.insert(path);
    }
    // Nothing stale: every tree key names a node reached by the walk.
    for key in keys(client, prefix).await {
        let rest = &key[prefix.len()..];
        if let Some(path) = rest.strip_prefix(replication_core::wire_keys::MERKLE_HASH) {
            assert!(
                visited.contains(path) && tree.node_hash(path).is_some(),
                "stale hash key {key:?}"
            );
        } else if let Some(path) = rest.strip_prefix(replication_core::wire_keys::MERKLE_CHILDREN) {
            assert!(
                tree.interior_paths().any(|p| p == path),
                "stale children key {key:?}"
            );
        }
    }
    for id in tree.ids() {
        assert!(
            visited.contains(id),
            "item {id:?} is not reachable from the root"
        );
    }
    tree
}

/// `cmdstat_<name>` call counts from `INFO commandstats`.
pub fn command_calls(server: &RedisServer, name: &str) -> u64 {
    let info = server.command(&["INFO", "commandstats"]).unwrap();
    let needle = format!("cmdstat_{name}:calls=");
    info.lines()
        .find_map(|line| line.strip_prefix(&needle))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}
