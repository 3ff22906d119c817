//! The Redis key layout of docs/PROTOCOL.md "Keys", the one place that spells it: every
//! reader (the peer backend, the sync-engine adapter) and every writer (the node store) of
//! a node's keys, and the tests that look behind their back, build key names here.
//!
//! Items live at `{prefix}{object_id}`, beside the store's own keys, so an object id that
//! spells one of those keys would overwrite it (sync-engine has the same layout and the
//! same hazard): [`reserved_by`] names the store key an id collides with.

/// The CDC stream (`{prefix}cdc`).
pub const CDC: &str = "cdc";
/// The tombstones hash (`{prefix}tombstones`): object id -> tombstone JSON.
pub const TOMBSTONES: &str = "tombstones";
/// Hash keys of the Merkle nodes (`{prefix}merkle:hash:{path}`; the root has the empty
/// path).
pub const MERKLE_HASH: &str = "merkle:hash:";
/// Children sets of the Merkle nodes (`{prefix}merkle:children:{path}`).
pub const MERKLE_CHILDREN: &str = "merkle:children:";
/// The node store's write token, replaced by every commit (`{prefix}store:epoch`).
pub const WRITE_TOKEN: &str = "store:epoch";
/// The version floor every local write's version is above (`{prefix}store:version_floor`).
pub const VERSION_FLOOR: &str = "store:version_floor";
/// The key a refused node store writes to (a no-op `SET ... XX`) to learn whether the server
/// takes writes again (`{prefix}store:probe`; it never exists).
pub const PROBE: &str = "store:probe";
/// Where a commit stages item bodies (`{prefix}store:staging:{n}`; never visible outside
/// the commit).
pub const STAGING: &str = "store:staging:";

/// Store keys (without prefix) that no object id may spell.
pub const RESERVED_EXACT: [&str; 3] = [CDC, TOMBSTONES, WRITE_TOKEN];
/// Store key families (without prefix) no object id may start with.
pub const RESERVED_PREFIXES: [&str; 2] = ["merkle:", "store:"];

/// The store key (or key family) object id `id` would collide with, if any.
pub fn reserved_by(id: &str) -> Option<&'static str> {
    RESERVED_EXACT
        .iter()
        .find(|r| id == **r)
        .or_else(|| RESERVED_PREFIXES.iter().find(|r| id.starts_with(**r)))
        .copied()
}

/// Key names under one node's prefix (which includes its own trailing separator:
/// `"node-b:"` gives `node-b:cdc`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireKeys {
    prefix: String,
}

impl WireKeys {
    /// The keys under `prefix`.
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `{prefix}{object_id}`.
    pub fn item(&self, object_id: &str) -> String {
        self.join(&[object_id])
    }

    /// `{prefix}cdc`.
    pub fn cdc(&self) -> String {
        self.join(&[CDC])
    }

    /// `{prefix}tombstones`.
    pub fn tombstones(&self) -> String {
        self.join(&[TOMBSTONES])
    }

    /// `{prefix}merkle:hash:{path}`.
    pub fn merkle_hash(&self, path: &str) -> String {
        self.join(&[MERKLE_HASH, path])
    }

    /// `{prefix}merkle:children:{path}`.
    pub fn merkle_children(&self, path: &str) -> String {
        self.join(&[MERKLE_CHILDREN, path])
    }

    /// `{prefix}store:epoch`.
    pub fn write_token(&self) -> String {
        self.join(&[WRITE_TOKEN])
    }

    /// `{prefix}store:version_floor`.
    pub fn version_floor(&self) -> String {
        self.join(&[VERSION_FLOOR])
    }

    /// `{prefix}store:probe`.
    pub fn probe(&self) -> String {
        self.join(&[PROBE])
    }

    /// `{prefix}store:staging:{n}`.
    pub fn staging(&self, n: usize) -> String {
        self.join(&[STAGING, &n.to_string()])
    }

    /// The object id a key of this prefix names, when it is not one of the store's own keys
    /// (`None` for keys of another prefix and for `cdc`, `merkle:*`, ...).
    pub fn object_id<'k>(&self, key: &'k str) -> Option<&'k str> {
        let id = key.strip_prefix(self.prefix.as_str())?;
        reserved_by(id).is_none().then_some(id)
    }

    fn join(&self, parts: &[&str]) -> String {
        let len = self.prefix.len() + parts.iter().map(|p| p.len()).sum::<usize>();
        let mut out = String::with_capacity(len);
        out.push_str(&self.prefix);
        for part in parts {
            out.push_str(part);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_protocol() {
        let keys = WireKeys::new("node-b:");
        assert_eq!(keys.item("a.b"), "node-b:a.b");
        assert_eq!(keys.cdc(), "node-b:cdc");
        assert_eq!(keys.tombstones(), "node-b:tombstones");
        assert_eq!(keys.merkle_children(""), "node-b:merkle:children:");
        assert_eq!(keys.merkle_hash("a.b"), "node-b:merkle:hash:a.b");
        assert_eq!(keys.write_token(), "node-b:store:epoch");
        assert_eq!(keys.version_floor(), "node-b:store:version_floor");
        assert_eq!(keys.probe(), "node-b:store:probe");
        assert_eq!(keys.staging(7), "node-b:store:staging:7");
        assert_eq!(WireKeys::new("").cdc(), "cdc");
    }

    #[test]
    fn ids_that_spell_store_keys_are_reserved() {
        for (id, by) in [
            ("cdc", "cdc"),
            ("tombstones", "tombstones"),
            ("store:epoch", "store:epoch"),
            ("merkle:hash:x", "merkle:"),
            ("store:anything", "store:"),
        ] {
            assert_eq!(reserved_by(id), Some(by), "{id}");
        }
        for id in ["cdc.x", "a.cdc", "merkle", "uk.nhs.patient.1"] {
            assert_eq!(reserved_by(id), None, "{id}");
        }
        let keys = WireKeys::new("p:");
        assert_eq!(keys.object_id("p:a.b"), Some("a.b"));
        assert_eq!(keys.object_id("p:merkle:hash:"), None);
        assert_eq!(keys.object_id("q:a.b"), None);
    }
}
