//! Known answers computed from the definitions, the fixtures of a real node, and tree invariants.

use super::*;
use crate::item::content_hash;
use proptest::prelude::*;
use sha2::{Digest, Sha256};

#[test]
fn leaf_hash_known_answer_from_the_definition() {
    // Spelled out byte by byte, independently of leaf_hash's own code.
    let mut bytes = b"uk.nhs.patient.1|".to_vec();
    bytes.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 0]);
    bytes.push(b'|');
    bytes.extend_from_slice(&Sha256::digest(b"tiny, updated"));
    let expected: Hash = Sha256::digest(&bytes).into();
    assert_eq!(
        leaf_hash("uk.nhs.patient.1", 2, &content_hash(b"tiny, updated")),
        expected
    );
    // Pinned, so that a change of the rule cannot go unnoticed.
    assert_eq!(
        hex::encode(leaf_hash("a", 1, &content_hash(b""))),
        hex::encode(Sha256::digest(
            [
                b"a|".as_slice(),
                &1u64.to_le_bytes(),
                b"|",
                &content_hash(b"")
            ]
            .concat()
        ))
    );
}

#[test]
fn interior_hash_sorts_children_by_segment_bytes() {
    let (a, b) = ([1u8; 32], [2u8; 32]);
    let mut bytes = Vec::new();
    for (seg, h) in [("B", &b), ("a", &a)] {
        // 'B' (0x42) sorts before 'a' (0x61) in byte order.
        bytes.extend_from_slice(seg.as_bytes());
        bytes.push(b':');
        bytes.extend_from_slice(h);
        bytes.push(b';');
    }
    let expected: Hash = Sha256::digest(&bytes).into();
    assert_eq!(interior_hash([("a", &a), ("B", &b)]), expected);
    assert_eq!(interior_hash([("B", &b), ("a", &a)]), expected);
}

#[test]
fn member_round_trip_splits_on_last_colon() {
    let h = [0xab; 32];
    let m = encode_member("seg:with:colons", &h);
    assert_eq!(
        decode_member(m.as_bytes()).unwrap(),
        ("seg:with:colons".to_string(), h)
    );
    assert_eq!(
        decode_member(format!(":{}", hex::encode(h)).as_bytes())
            .unwrap()
            .0,
        ""
    );
    for bad in [&b"nocolon"[..], b"seg:xyz", b"seg:", b"\xff:00"] {
        assert!(decode_member(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn paths() {
    assert_eq!(ancestors("a.b.c").collect::<Vec<_>>(), ["", "a", "a.b"]);
    assert_eq!(ancestors("flat").collect::<Vec<_>>(), [""]);
    assert_eq!(parent_and_segment("a.b.c"), ("a.b", "c"));
    assert_eq!(parent_and_segment("flat"), ("", "flat"));
    assert_eq!(child_path("", "a"), "a");
    assert_eq!(child_path("a", "b"), "a.b");
    assert_eq!(child_path("a", SELF_SEGMENT), "a");
    assert!(validate_object_id("a.b").is_ok());
    for bad in ["", ".a", "a.", "a..b"] {
        assert!(validate_object_id(bad).is_err(), "{bad}");
    }
}

/// Recomputing the tree of a real sync-engine node from its items gives the root it reports,
/// and every children set it holds; the stale hash of the deleted item is ignored.
#[test]
fn fixture_roots_match_what_the_node_reported() {
    for fixture in crate::test_fixtures::all() {
        let mut tree = MerkleTree::new();
        for (id, raw) in fixture["items_raw_b64"].as_object().unwrap() {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(raw.as_str().unwrap())
                .unwrap();
            let item: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            let content: Vec<u8> = item["content"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| u8::try_from(b.as_u64().unwrap()).unwrap())
                .collect();
            let version = item["version"].as_u64().unwrap();
            assert_eq!(item["object_id"].as_str().unwrap(), id);
            tree.insert(id, leaf_hash(id, version, &content_hash(&content)));
        }
        let reported = fixture["merkle_root_reported_by_node"].as_str().unwrap();
        assert_eq!(hex::encode(tree.root().unwrap()), reported);
        assert_eq!(fixture["merkle_hash"][""].as_str().unwrap(), reported);
        for (path, members) in fixture["merkle_children"].as_object().unwrap() {
            let theirs: Vec<(String, Hash)> = members
                .as_array()
                .unwrap()
                .iter()
                .map(|m| decode_member(m.as_str().unwrap().as_bytes()).unwrap())
                .collect();
            assert_eq!(tree.children(path), theirs, "children of {path:?}");
        }
        // The stale hash key of the deleted item is still in the dump, but no set names it.
        assert!(fixture["merkle_hash"].get("uk.nhs.patient.3").is_some());
        assert!(tree.leaf("uk.nhs.patient.3").is_none());
    }
}

#[test]
fn item_that_is_also_a_parent_keeps_both_in_its_hash() {
    let mut tree = MerkleTree::new();
    tree.insert("a.b", [1; 32]);
    let only_child = tree.root();
    tree.insert("a", [2; 32]);
    let children = tree.children("a");
    assert_eq!(children[0], (SELF_SEGMENT.to_string(), [2; 32]));
    assert_ne!(tree.root(), only_child);
    tree.insert("a", [3; 32]);
    let changed_leaf = tree.root();
    tree.remove("a");
    assert_eq!(tree.root(), only_child);
    assert_ne!(changed_leaf, only_child);
    tree.remove("a.b");
    assert_eq!(tree.root(), None);
}

proptest! {
    /// The incremental tree equals one built from scratch, whatever the order of writes.
    #[test]
    fn incremental_equals_rebuilt(ops in proptest::collection::vec(
        ("[abc](\\.[abc]){0,3}", proptest::option::of(any::<u8>())), 0..60)) {
        let mut tree = MerkleTree::new();
        let mut model = std::collections::BTreeMap::new();
        for (id, value) in &ops {
            match value {
                Some(v) => { tree.insert(id, [*v; 32]); model.insert(id.clone(), [*v; 32]); }
                None => { tree.remove(id); model.remove(id); }
            }
        }
        let mut rebuilt = MerkleTree::new();
        for (id, h) in model.iter().rev() { rebuilt.insert(id, *h); }
        prop_assert_eq!(tree.root(), rebuilt.root());
        prop_assert_eq!(&tree, &rebuilt);
    }
}
