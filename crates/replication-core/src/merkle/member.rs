//! Children sorted-set members: `{segment}:{hex hash}`, split on the LAST colon.

use super::Hash;

/// A children-set member that is not `{segment}:{64 hex chars}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Merkle children member {member:?}: {reason}")]
pub struct MemberError {
    /// The member (lossily decoded, truncated to 128 chars).
    pub member: String,
    /// What was wrong.
    pub reason: &'static str,
}

/// Encodes a member: `segment:hexhash`.
pub fn encode_member(segment: &str, hash: &Hash) -> String {
    let mut out = String::with_capacity(segment.len() + 65);
    out.push_str(segment);
    out.push(':');
    out.push_str(&hex::encode(hash));
    out
}

/// Decodes a member; the segment may itself contain `:`.
pub fn decode_member(member: &[u8]) -> Result<(String, Hash), MemberError> {
    let err = |reason| MemberError {
        member: String::from_utf8_lossy(&member[..member.len().min(128)]).into_owned(),
        reason,
    };
    let text = std::str::from_utf8(member).map_err(|_| err("not UTF-8"))?;
    let (segment, hex_hash) = text
        .rsplit_once(':')
        .ok_or_else(|| err("no ':' separator"))?;
    let hash = crate::item::parse_hash_hex(hex_hash)
        .ok_or_else(|| err("hash is not 64 hex characters"))?;
    Ok((segment.to_owned(), hash))
}
