//! Loading a real sync-engine node's items reproduces the tree it reported.

use crate::common::*;
use base64::Engine;
use replication_core::merkle::decode_member;
use replication_core::{decode_item_json, Change, SyncEngineRef};
use std::path::PathBuf;

fn fixture(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/sync-engine-0.2.19")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("fixture {} is missing: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn sync_engine_items_give_the_root_and_children_it_reported() {
    let server = server();
    let probe = probe(&server).await;
    for (file, prefix) in [("node-noprefix.json", ""), ("node-node-b.json", "node-b:")] {
        let dump = fixture(file);
        let store = store(&server, prefix).await;
        let changes = dump["items_raw_b64"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(id, raw)| {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(raw.as_str().unwrap())
                    .unwrap();
                Change::Put(decode_item_json(id, &bytes).unwrap())
            })
            .collect();
        store.apply_batch(changes).await.unwrap();

        let reported = dump["merkle_root_reported_by_node"].as_str().unwrap();
        assert_eq!(
            store.merkle_root_hex().await.unwrap().as_deref(),
            Some(reported),
            "{file}"
        );
        for (path, members) in dump["merkle_children"].as_object().unwrap() {
            let theirs: Vec<_> = members
                .as_array()
                .unwrap()
                .iter()
                .map(|m| decode_member(m.as_str().unwrap().as_bytes()).unwrap())
                .collect();
            assert_eq!(
                store.get_merkle_children(path).await.unwrap(),
                theirs,
                "{file}: children of {path:?}"
            );
        }
        let paths: Vec<String> = dump["merkle_children"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let many = store.get_merkle_children_many(&paths).await.unwrap();
        for (path, children) in paths.iter().zip(many) {
            assert_eq!(
                children,
                store.get_merkle_children(path).await.unwrap(),
                "{file}: many vs one for {path:?}"
            );
        }
        // Items are stored byte for byte as sync-engine stores them.
        for (id, raw) in dump["items_raw_b64"].as_object().unwrap() {
            let theirs = base64::engine::general_purpose::STANDARD
                .decode(raw.as_str().unwrap())
                .unwrap();
            let ours = server.command(&["GET", &format!("{prefix}{id}")]).unwrap();
            assert_eq!(
                ours.trim_end_matches('\n').as_bytes(),
                &theirs[..],
                "{file}: item {id}"
            );
        }
        // Unlike the dump, no stale hash key of the deleted item.
        assert_eq!(
            server
                .command(&[
                    "EXISTS",
                    &replication_core::WireKeys::new(prefix).merkle_hash("uk.nhs.patient.3")
                ])
                .unwrap()
                .trim(),
            ":0"
        );
        check_tree(&probe, prefix).await;
    }
}
