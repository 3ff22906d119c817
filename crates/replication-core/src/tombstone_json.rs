//! The value of one field of `{prefix}tombstones` (docs/PROTOCOL.md "Keys"):
//! `{"version":v,"deleted_at":ms,"recorded_at":ms}`, unknown fields ignored. Written by our
//! node store, read back by it and by every peer that replicates from it. `recorded_at` is
//! when the writing store recorded the tombstone, by its own clock: only that store's
//! tombstone collection uses it; other readers ignore it.

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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recorded_at: Option<i64>,
}

/// `{"version":v,"deleted_at":ms,"recorded_at":ms}`: the delete's stamp and when this
/// store recorded it.
pub fn encode_tombstone_json(tombstone: &Tombstone, recorded_at: i64) -> String {
    let wire = Wire {
        version: tombstone.version,
        deleted_at: tombstone.deleted_at,
        recorded_at: Some(recorded_at),
    };
    serde_json::to_string(&wire).expect("serialising three integers cannot fail")
}

/// `{"version":v,"deleted_at":ms}`: the stamp a DEL entry carries (no `recorded_at`: that
/// time is the recording store's own).
pub(crate) fn encode_delete_meta(tombstone: &Tombstone) -> String {
    let wire = Wire {
        version: tombstone.version,
        deleted_at: tombstone.deleted_at,
        recorded_at: None,
    };
    serde_json::to_string(&wire).expect("serialising two integers cannot fail")
}

/// Parses a tombstone value.
pub fn decode_tombstone_json(bytes: &[u8]) -> Result<Tombstone, TombstoneJsonError> {
    decode_recorded_tombstone_json(bytes).map(|(tombstone, _)| tombstone)
}

/// Parses a tombstone value with the time its store recorded it; values written before
/// stores kept that time count as recorded when the delete happened (`deleted_at`).
pub fn decode_recorded_tombstone_json(
    bytes: &[u8],
) -> Result<(Tombstone, i64), TombstoneJsonError> {
    let wire: Wire = serde_json::from_slice(bytes).map_err(|e| TombstoneJsonError {
        reason: e.to_string(),
    })?;
    let tombstone = Tombstone {
        version: wire.version,
        deleted_at: wire.deleted_at,
    };
    Ok((tombstone, wire.recorded_at.unwrap_or(wire.deleted_at)))
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
        let text = encode_tombstone_json(&t, 1_700_000_000_500);
        assert_eq!(
            text,
            r#"{"version":3,"deleted_at":1700000000000,"recorded_at":1700000000500}"#
        );
        assert_eq!(decode_tombstone_json(text.as_bytes()).unwrap(), t);
        assert_eq!(
            decode_recorded_tombstone_json(text.as_bytes()).unwrap(),
            (t.clone(), 1_700_000_000_500)
        );
        // Written before stores kept the time: counts as recorded when deleted.
        assert_eq!(
            decode_recorded_tombstone_json(br#"{"version":3,"deleted_at":1700000000000}"#).unwrap(),
            (t, 1_700_000_000_000)
        );
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
