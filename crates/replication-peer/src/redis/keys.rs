//! Key names of a peer (PROTOCOL.md "Keys"): everything starts with the peer's prefix.

/// Builds the keys of one peer from its `redis_prefix`.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    pub(crate) fn cdc(&self) -> String {
        format!("{}cdc", self.prefix)
    }

    pub(crate) fn merkle_hash(&self, path: &str) -> String {
        format!("{}merkle:hash:{path}", self.prefix)
    }

    pub(crate) fn merkle_children(&self, path: &str) -> String {
        format!("{}merkle:children:{path}", self.prefix)
    }

    pub(crate) fn item(&self, object_id: &str) -> String {
        format!("{}{object_id}", self.prefix)
    }

    pub(crate) fn tombstones(&self) -> String {
        format!("{}tombstones", self.prefix)
    }
}
