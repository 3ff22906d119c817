//! The value of one field of `{prefix}tombstones` (PROTOCOL.md "Keys"):
//! `{"version":v,"deleted_at":ms}`, unknown fields ignored. Written by our node store,
//! read back by it and by every peer that replicates from it.

use crate::Tombstone;
use serde::{Deserialize, Serialize};

/// A tombstone value that does not have the documented shape.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("tombstone is not {{\"version\",\"deleted_at\"}} JSON: {reason}")]
pub struct TombstoneJsonError {
    /// What the parser said.
    pub reason: String,
}

#[derive(Serialize, Deserialize)]
struct Wire {
    version: u64,
    deleted_at: i64,
}

/// `{"version":v,"deleted_at":ms}`.
pub fn encode_tombstone_json(tombstone: &Tombstone) -> String {
    let wire = Wire {
        version: tombstone.version,
        deleted_at: tombstone.deleted_at,
    };
    serde_json::to_string(&wire).expect("serialising two integers cannot fail")
}

/// Parses a tombstone value.
pub fn decode_tombstone_json(bytes: &[u8]) -> Result<Tombstone, TombstoneJsonError> {
    let wire: Wire = serde_json::from_slice(bytes).map_err(|e| TombstoneJsonError {
        reason: e.to_string(),
    })?;
    Ok(Tombstone {
        version: wire.version,
        deleted_at: wire.deleted_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_the_documented_form_and_ignores_unknown_fields() {
        let t = Tombstone {
            version: 3,
            deleted_at: 1_700_000_000_000,
        };
        let text = encode_tombstone_json(&t);
        assert_eq!(text, r#"{"version":3,"deleted_at":1700000000000}"#);
        assert_eq!(decode_tombstone_json(text.as_bytes()).unwrap(), t);
        assert_eq!(
            decode_tombstone_json(br#"{"deleted_at":1,"version":2,"x":[1]}"#).unwrap(),
            Tombstone {
                version: 2,
                deleted_at: 1
            }
        );
        for bad in [&b"nope"[..], b"{}", br#"{"version":-1,"deleted_at":1}"#] {
            assert!(decode_tombstone_json(bad).is_err());
        }
    }
}
