//! The Redis key layout of docs/PROTOCOL.md "Keys" under one node's prefix, as the store
//! uses it: the names are core's ([`WireKeys`]), and so is the rule that refuses object ids
//! spelling one of the store's own keys ([`reserved_by`]; items live beside those keys, so
//! such an id would overwrite one).
//!
//! On a Redis Cluster every key of a node must live in one hash slot, since a write is one
//! `MULTI`/`EXEC` block running a script over all of them: the prefix must carry a hash tag
//! (`"{node-b}:"`), see [`hash_tag`]. Commands are then routed to that slot's primary
//! ([`KeySpace::route`]).

use crate::NodeError;
use fred::types::ClusterHash;
use replication_core::wire_keys::{reserved_by, WireKeys};
use replication_core::ObjectIdLimits;

/// Key names under one prefix.
#[derive(Clone, Debug)]
pub(crate) struct KeySpace {
    wire: WireKeys,
}

impl KeySpace {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            wire: WireKeys::new(prefix),
        }
    }

    /// `{prefix}{object_id}`.
    pub(crate) fn item(&self, id: &str) -> String {
        self.wire.item(id)
    }

    /// `{prefix}cdc`.
    pub(crate) fn cdc(&self) -> String {
        self.wire.cdc()
    }

    /// `{prefix}tombstones`.
    pub(crate) fn tombstones(&self) -> String {
        self.wire.tombstones()
    }

    /// `{prefix}store:epoch`: replaced by every write, compared by the next one (see
    /// `writer`).
    pub(crate) fn epoch(&self) -> String {
        self.wire.write_token()
    }

    /// `{prefix}store:version_floor`: every local write's version is above it (raised by
    /// each collected tombstone; see `writer::tombstone_collection`).
    pub(crate) fn version_floor(&self) -> String {
        self.wire.version_floor()
    }

    /// `{prefix}store:probe`: written (as a no-op, it never exists) to learn whether the
    /// server takes writes again (see `health`).
    pub(crate) fn probe(&self) -> String {
        self.wire.probe()
    }

    /// `{prefix}store:staging:{n}`: where a commit stages its `n`-th item body (see
    /// `apply_script`; never visible outside the commit).
    pub(crate) fn staging(&self, n: usize) -> String {
        self.wire.staging(n)
    }

    /// `{prefix}merkle:children:{path}`.
    pub(crate) fn children(&self, path: &str) -> String {
        self.wire.merkle_children(path)
    }

    /// `{prefix}merkle:hash:{path}`.
    pub(crate) fn hash(&self, path: &str) -> String {
        self.wire.merkle_hash(path)
    }

    /// Where every command of this store goes on a Cluster: the slot of its keys (one slot
    /// for all of them, given a hash-tagged prefix). A single server ignores it.
    pub(crate) fn route(&self) -> ClusterHash {
        ClusterHash::from(self.epoch().as_str())
    }

    /// Checks that `id` is a valid object id within `limits` that does not collide with a
    /// store key. The bounds come first: they cost at most `limits.max_bytes` steps.
    pub(crate) fn check_id(id: &str, limits: &ObjectIdLimits) -> Result<(), NodeError> {
        limits.check(id)?;
        match reserved_by(id) {
            Some(reserved) => Err(NodeError::ReservedKey {
                key: id.to_owned(),
                reserved,
            }),
            None => Ok(()),
        }
    }
}

/// The hash tag every key under `prefix` hashes on, if the prefix fixes one: Redis hashes
/// only what lies between the first `{` of a key and the first `}` after it, when that is
/// not empty. A `{` without its `}` inside the prefix leaves the tag to each key's suffix.
pub(crate) fn hash_tag(prefix: &str) -> Option<&str> {
    let open = prefix.find('{')?;
    let rest = &prefix[open + 1..];
    let close = rest.find('}')?;
    (close > 0).then(|| &rest[..close])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_protocol() {
        let keys = KeySpace::new("node-b:");
        assert_eq!(keys.item("a.b"), "node-b:a.b");
        assert_eq!(keys.cdc(), "node-b:cdc");
        assert_eq!(keys.tombstones(), "node-b:tombstones");
        assert_eq!(keys.children(""), "node-b:merkle:children:");
        assert_eq!(keys.hash("a.b"), "node-b:merkle:hash:a.b");
        assert_eq!(keys.staging(7), "node-b:store:staging:7");
        assert_eq!(keys.version_floor(), "node-b:store:version_floor");
        assert_eq!(KeySpace::new("").cdc(), "cdc");
    }

    fn check(id: &str) -> Result<(), NodeError> {
        KeySpace::check_id(id, &ObjectIdLimits::default())
    }

    #[test]
    fn a_prefix_fixes_a_hash_tag_only_with_both_braces_around_something() {
        assert_eq!(hash_tag("{node-b}:"), Some("node-b"));
        assert_eq!(hash_tag("app:{b}:x{y}"), Some("b"));
        for none in ["", "node-b:", "{}:", "{node-b", "node}{b", "}{"] {
            assert_eq!(hash_tag(none), None, "{none}");
        }
        // Every store key of a tagged prefix is in one slot.
        let keys = KeySpace::new("{n1}:");
        let slot = |k: &str| fred::util::redis_keyslot(k.as_bytes());
        let expected = slot(&keys.epoch());
        for key in [keys.cdc(), keys.item("a.b"), keys.hash(""), keys.staging(3)] {
            assert_eq!(slot(&key), expected, "{key}");
        }
        assert_eq!(keys.route(), ClusterHash::Custom(expected));
    }

    #[test]
    fn ids_that_spell_store_keys_are_refused() {
        for bad in [
            "cdc",
            "tombstones",
            "store:epoch",
            "merkle:hash:x",
            "store:anything",
        ] {
            assert!(
                matches!(check(bad), Err(NodeError::ReservedKey { .. })),
                "{bad}"
            );
        }
        assert!(matches!(check("a..b"), Err(NodeError::InvalidKey(_))));
        assert!(matches!(
            check(&"a.".repeat(100)),
            Err(NodeError::InvalidKey(_))
        ));
        for good in ["cdc.x", "a.cdc", "merkle", "uk.nhs.patient.1"] {
            assert!(check(good).is_ok(), "{good}");
        }
    }
}
