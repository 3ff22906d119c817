//! The tombstone value kept in `{prefix}tombstones` (field = object id):
//! `{"version":v,"deleted_at":ms}`. Every store that keeps tombstones writes this form and
//! every reader parses it here (unknown fields are ignored).

use crate::Tombstone;
use serde::{Deserialize, Serialize};

/// A tombstone value that is not `{"version","deleted_at"}` JSON.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("tombstone is not {{\"version\",\"deleted_at\"}} JSON: {reason}")]
pub struct TombstoneJsonError {
    /// What the JSON parser said.
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
            decode_tombstone_json(br#"{"version":1,"deleted_at":2,"x":true}"#).unwrap(),
            Tombstone {
                version: 1,
                deleted_at: 2
            }
        );
        let err = decode_tombstone_json(b"nope").unwrap_err();
        assert!(err.to_string().contains("deleted_at"), "{err}");
    }
}
